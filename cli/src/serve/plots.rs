//! The plots, drawn on the server as SVG: bars with labels, and a time series. Written here
//! rather than with a plotting crate: a bar chart is a few rectangles, and plotters' text
//! layout needs a font backend (system fontconfig or a bundled font file) the command line
//! should not carry.

use std::fmt::Write;

use super::html::esc;

const WIDTH: f64 = 720.0;
const ROW: f64 = 22.0;

/// Horizontal bars, one per `(label, value)`, largest first as given.
pub fn bars(title: &str, unit: &str, rows: &[(String, u64)]) -> String {
    let height = 40.0 + ROW * rows.len().max(1) as f64 + 10.0;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let (label_w, bar_w) = (220.0, WIDTH - 220.0 - 110.0);
    let mut svg = header(title, height);
    if rows.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"10\" y=\"60\" fill=\"#6b7385\">nothing yet</text>"
        );
    }
    for (i, (label, value)) in rows.iter().enumerate() {
        let y = 40.0 + ROW * i as f64;
        let w = (*value as f64 / max * bar_w).max(1.0);
        let shown: String = label.chars().take(30).collect();
        let _ = write!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\" font-size=\"12\">{}</text>\
             <rect x=\"{label_w:.0}\" y=\"{:.0}\" width=\"{w:.1}\" height=\"{:.0}\" fill=\"#3b6fd8\"><title>{}: {value} {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.0}\" font-size=\"12\">{value} {}</text>",
            label_w - 6.0,
            y + 15.0,
            esc(&shown),
            y + 3.0,
            ROW - 6.0,
            esc(label),
            esc(unit),
            label_w + w + 4.0,
            y + 15.0,
            esc(unit)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A time series of counts per minute (`(minutes since the epoch, count)`, in order), as
/// columns; at most 240 columns (minutes are merged to fit).
pub fn series(title: &str, per_minute: &[(u64, u64)]) -> String {
    let height = 260.0;
    let mut svg = header(title, height);
    let (Some(first), Some(last)) = (per_minute.first(), per_minute.last()) else {
        svg.push_str("<text x=\"10\" y=\"60\" fill=\"#6b7385\">nothing yet</text></svg>");
        return svg;
    };
    let span = last.0 - first.0 + 1;
    let per_column = span.div_ceil(240);
    let columns = span.div_ceil(per_column);
    let mut counts = vec![0u64; columns as usize];
    for &(minute, n) in per_minute {
        let c = ((minute - first.0) / per_column) as usize;
        if let Some(slot) = counts.get_mut(c) {
            *slot += n;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let (left, top, plot_w, plot_h) = (70.0, 40.0, WIDTH - 90.0, height - 80.0);
    let col_w = plot_w / columns as f64;
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{:.0}\" x2=\"{:.0}\" y2=\"{:.0}\" stroke=\"#1d2330\"/>\
         <text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\" font-size=\"12\">{max}</text>\
         <text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\" font-size=\"12\">0</text>",
        top + plot_h,
        left + plot_w,
        top + plot_h,
        left - 6.0,
        top + 10.0,
        left - 6.0,
        top + plot_h
    );
    for (i, &n) in counts.iter().enumerate() {
        let h = n as f64 / max as f64 * plot_h;
        let minute = first.0 + i as u64 * per_column;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{h:.1}\" fill=\"#3b6fd8\"><title>{} : {n}</title></rect>",
            left + i as f64 * col_w,
            top + plot_h - h,
            (col_w - 0.5).max(0.5),
            esc(&crate::line::format_time(minute.saturating_mul(60_000_000)).unwrap_or_default())
        );
    }
    let per = if per_column == 1 {
        "minute".to_string()
    } else {
        format!("{per_column} minutes")
    };
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{:.0}\" font-size=\"12\">{}</text>\
         <text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\" font-size=\"12\">{}</text>\
         <text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#6b7385\">events per {per}</text>",
        top + plot_h + 18.0,
        esc(&crate::line::format_time(first.0.saturating_mul(60_000_000)).unwrap_or_default()),
        left + plot_w,
        top + plot_h + 18.0,
        esc(&crate::line::format_time(last.0.saturating_mul(60_000_000)).unwrap_or_default()),
        left + plot_w / 2.0,
        top + plot_h + 34.0
    );
    svg.push_str("</svg>");
    svg
}

fn header(title: &str, height: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH:.0} {height:.0}\" font-family=\"sans-serif\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        esc(title)
    )
}
