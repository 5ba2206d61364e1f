//! HTML: escaping, the page around every view, and small pieces the views share. No
//! JavaScript: every page is a plain URL, the live tail refreshes itself with a meta tag.

use std::fmt::Write;

/// `text` safe inside HTML text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` safe inside a URL's path segment or query value.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}\
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.4em;align-items:baseline}\
header a{color:#cfe0ff;text-decoration:none}header b{font-size:1.2em}\
main{padding:1em 1.2em;max-width:1200px}table{border-collapse:collapse;background:#fff;margin:.5em 0}\
td,th{border:1px solid #dde1e8;padding:.25em .6em;text-align:left;vertical-align:top;font-size:.92em}\
th{background:#eef1f6}pre{background:#fff;border:1px solid #dde1e8;padding:.8em;overflow:auto}\
.num{text-align:right;font-variant-numeric:tabular-nums}.plots img{background:#fff;border:1px solid #dde1e8;margin:.3em}\
form{margin:.6em 0}input{padding:.2em}.muted{color:#6b7385}";

/// A whole page: title, navigation, body.
pub fn page(title: &str, body: &str) -> String {
    page_with(title, body, "")
}

/// A page with extra `<head>` content (the tail's refresh).
pub fn page_with(title: &str, body: &str, head: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — annals</title>\
         <meta name=\"viewport\" content=\"width=device-width\">{head}<style>{STYLE}</style></head><body>\
         <header><b>annals</b><a href=\"/\">Overview</a><a href=\"/streams\">Streams</a>\
         <a href=\"/search\">Search</a><a href=\"/tail\">Live tail</a></header><main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    )
}

/// A table, with a header row unless every header is empty.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table>");
    if headers.iter().any(|h| !h.is_empty()) {
        out.push_str("<tr>");
        for h in headers {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr>");
    }
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

/// A link to one event.
pub fn event_link(position: u64) -> String {
    format!("<a href=\"/event/{position}\">{position}</a>")
}

/// A link to one stream.
pub fn stream_link(stream: &str) -> String {
    format!(
        "<a href=\"/stream?name={}\">{}</a>",
        url(stream),
        esc(stream)
    )
}

/// A payload or metadata: formatted JSON when it is JSON, text when UTF-8, hex otherwise.
pub fn bytes_view(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "<p class=\"muted\">(empty)</p>".into();
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Ok(pretty) = serde_json::to_string_pretty(&value) {
            return format!("<pre>{}</pre>", esc(&pretty));
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return format!("<pre>{}</pre>", esc(text));
    }
    let mut hex = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(hex, "{:08x} ", i * 16);
        for b in chunk {
            let _ = write!(hex, " {b:02x}");
        }
        hex.push('\n');
    }
    format!("<pre>{hex}</pre>")
}

/// A short preview of a payload for lists.
pub fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
    esc(&text)
}
