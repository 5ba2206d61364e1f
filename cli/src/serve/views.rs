//! The pages. Each reads through the store's indexes (a stream, a type, a time) or the
//! catalog, or reads from a position; none scans the log.

use std::collections::HashMap;
use std::fmt::Write;

use annals::{RecordedEvent, Store};

use super::catalog::Catalog;
use super::html::{bytes_view, esc, event_link, page, page_with, preview, stream_link, table, url};
use super::plots;
use crate::line::{format_time, parse_time};

/// A page and its HTTP status.
pub struct View {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl View {
    fn ok(body: String) -> Self {
        View {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body,
        }
    }

    fn svg(body: String) -> Self {
        View {
            status: 200,
            content_type: "image/svg+xml",
            body,
        }
    }

    /// An error page: `status` 400 (a bad request), 403 (refused) or 404 (nothing there),
    /// 500 otherwise.
    pub fn error(status: u16, message: &str) -> Self {
        let title = match status {
            400 => "Bad request",
            403 => "Forbidden",
            404 => "Not found",
            _ => "Error",
        };
        View {
            status,
            content_type: "text/html; charset=utf-8",
            body: page(
                title,
                &format!(
                    "<p>{}</p><p><a href=\"/\">Back to the overview</a></p>",
                    esc(message)
                ),
            ),
        }
    }
}

type Query = HashMap<String, String>;

fn time(micros: u64) -> String {
    format_time(micros).unwrap_or_else(|| micros.to_string())
}

fn number(query: &Query, key: &str) -> Result<Option<u64>, View> {
    match query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| View::error(400, &format!("{key}={v:?} is not a number"))),
    }
}

fn failed(e: impl std::fmt::Display) -> View {
    View::error(500, &e.to_string())
}

/// Rows of events for a list: position, stream, version, type, time, payload preview.
fn event_rows<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Vec<Vec<String>> {
    events
        .into_iter()
        .map(|ev| {
            vec![
                event_link(ev.position()),
                stream_link(ev.stream()),
                ev.version().to_string(),
                esc(ev.event_type()),
                esc(&time(ev.timestamp())),
                format!("<code>{}</code>", preview(ev.payload())),
            ]
        })
        .collect()
}

const EVENT_HEADERS: [&str; 6] = ["position", "stream", "version", "type", "time", "payload"];

/// The segment files and the bytes each takes on disk (they are sparse: their length is
/// their capacity), in order.
pub fn segments(store: &Store) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(store.path())
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let size = std::os::unix::fs::MetadataExt::blocks(&e.metadata().ok()?) * 512;
                    name.ends_with(".log").then_some((name, size))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Each consumer checkpoint and how far behind the end of the log it is.
fn lags(store: &Store) -> Result<Vec<(String, u64)>, View> {
    let next = store.next_position();
    let mut rows: Vec<(String, u64)> = store
        .checkpoints()
        .map_err(failed)?
        .into_iter()
        .map(|(name, position)| (name, next.saturating_sub(position)))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(rows)
}

pub fn overview(store: &Store, catalog: &Catalog) -> Result<View, View> {
    let next = store.next_position();
    let (on_disk, _, files) = crate::inspect::disk_usage(store.path()).map_err(failed)?;
    let first = store.read_all(0).next().transpose().map_err(failed)?;
    let last = match next {
        0 => None,
        n => store.read_all(n - 1).next().transpose().map_err(failed)?,
    };
    let when = |ev: &Option<RecordedEvent>| {
        ev.as_ref()
            .map_or("—".to_string(), |e| esc(&time(e.timestamp())))
    };
    let facts = vec![
        vec![
            "events".into(),
            format!("<span class=\"num\">{next}</span>"),
        ],
        vec![
            "streams".into(),
            format!("<span class=\"num\">{}</span>", catalog.streams.len()),
        ],
        vec![
            "event types".into(),
            format!("<span class=\"num\">{}</span>", catalog.types.len()),
        ],
        vec![
            "segments".into(),
            format!("<span class=\"num\">{}</span>", segments(store).len()),
        ],
        vec![
            "size on disk".into(),
            format!("<span class=\"num\">{on_disk}</span> bytes in {files} files"),
        ],
        vec!["first event".into(), when(&first)],
        vec!["last event".into(), when(&last)],
        vec![
            "directory".into(),
            format!("<code>{}</code>", esc(&store.path().display().to_string())),
        ],
    ];
    let checkpoints: Vec<Vec<String>> = lags(store)?
        .into_iter()
        .map(|(name, behind)| vec![esc(&name), format!("<span class=\"num\">{behind}</span>")])
        .collect();
    let mut body = table(&["", ""], &facts);
    body.push_str("<h2>Consumers</h2>");
    if checkpoints.is_empty() {
        body.push_str("<p class=\"muted\">No consumer checkpoints.</p>");
    } else {
        body.push_str(&table(&["checkpoint", "events behind"], &checkpoints));
    }
    body.push_str(
        "<h2>Plots</h2><div class=\"plots\"><img src=\"/plot/appends.svg\" alt=\"appends per minute\">\
         <img src=\"/plot/types.svg\" alt=\"events per type\"><img src=\"/plot/segments.svg\" alt=\"bytes per segment\">\
         <img src=\"/plot/lag.svg\" alt=\"checkpoint lag\"></div>",
    );
    Ok(View::ok(page("Overview", &body)))
}

pub fn streams(store: &Store, catalog: &Catalog, query: &Query) -> Result<View, View> {
    let category = query
        .get("category")
        .map(String::as_str)
        .unwrap_or_default();
    let prefix = match (
        category,
        query.get("prefix").map(String::as_str).unwrap_or_default(),
    ) {
        ("", p) => p.to_string(),
        (c, _) => format!("{c}-"),
    };
    let after = query.get("after").map(String::as_str).unwrap_or_default();
    let page_size = 100;
    let found = catalog.streams_after(&prefix, after, page_size);
    // A stream erased since the catalog counted it is not shown.
    let rows: Vec<Vec<String>> = found
        .iter()
        .filter(|(name, _)| store.stream_version(name).is_some())
        .map(|(name, info)| {
            vec![
                stream_link(name),
                format!("<span class=\"num\">{}</span>", info.events),
                format!("<span class=\"num\">{}</span>", info.last_version),
            ]
        })
        .collect();
    let mut body = format!(
        "<form action=\"/streams\"><input name=\"prefix\" placeholder=\"name prefix\" value=\"{}\"> \
         <input name=\"category\" placeholder=\"category\" value=\"{}\"> <button>Find</button></form>",
        esc(&prefix),
        esc(category)
    );
    if rows.is_empty() {
        body.push_str("<p class=\"muted\">No stream.</p>");
    } else {
        body.push_str(&table(&["stream", "events", "last version"], &rows));
    }
    if let (true, Some((last, _))) = (found.len() == page_size, found.last()) {
        let _ = write!(
            body,
            "<p><a href=\"/streams?prefix={}&amp;after={}\">Next streams</a></p>",
            url(&prefix),
            url(last)
        );
    }
    Ok(View::ok(page("Streams", &body)))
}

pub fn stream(store: &Store, query: &Query) -> Result<View, View> {
    let Some(name) = query.get("name").map(String::as_str) else {
        return Err(View::error(400, "which stream? /stream?name=…"));
    };
    let Some(last_version) = store.try_stream_version(name).map_err(failed)? else {
        return Err(View::error(
            404,
            &format!("no stream {name:?} in this store"),
        ));
    };
    let backward = query.get("dir").is_some_and(|d| d == "back");
    let limit = 50;
    let events: Vec<RecordedEvent> = if backward {
        let from = number(query, "from")?.unwrap_or(last_version);
        store
            .read_stream_backward(name, Some(from))
            .take(limit)
            .collect::<annals::Result<_>>()
    } else {
        let from = number(query, "from")?.unwrap_or(0);
        store
            .read_stream(name, from)
            .take(limit)
            .collect::<annals::Result<_>>()
    }
    .map_err(failed)?;
    let base = format!("/stream?name={}", url(name));
    let mut body = format!(
        "<p>Last version {last_version}. <a href=\"{base}\">Oldest first</a> · <a href=\"{base}&amp;dir=back\">Newest first</a></p>"
    );
    body.push_str(&table(&EVENT_HEADERS, &event_rows(&events)));
    let more = match events.last() {
        Some(last) if events.len() == limit && backward => last
            .version()
            .checked_sub(1)
            .map(|v| format!("&amp;from={v}&amp;dir=back")),
        Some(last) if events.len() == limit && last.version() < last_version => {
            Some(format!("&amp;from={}", last.version() + 1))
        }
        _ => None,
    };
    if let Some(more) = more {
        let _ = write!(body, "<p><a href=\"{base}{more}\">More</a></p>");
    }
    Ok(View::ok(page(&format!("Stream {name}"), &body)))
}

pub fn event(store: &Store, position: &str) -> Result<View, View> {
    let position: u64 = position
        .parse()
        .map_err(|_| View::error(400, &format!("{position:?} is not a position")))?;
    let ev = store
        .read_all(position)
        .next()
        .transpose()
        .map_err(failed)?;
    let Some(ev) = ev.filter(|e| e.position() == position) else {
        return Err(View::error(
            404,
            &format!("no event at position {position}"),
        ));
    };
    let facts = vec![
        vec!["position".into(), position.to_string()],
        vec!["stream".into(), stream_link(ev.stream())],
        vec!["version".into(), ev.version().to_string()],
        vec![
            "type".into(),
            format!(
                "<a href=\"/search?type={}\">{}</a>",
                url(ev.event_type()),
                esc(ev.event_type())
            ),
        ],
        vec![
            "time".into(),
            format!("{} ({} µs)", esc(&time(ev.timestamp())), ev.timestamp()),
        ],
        vec![
            "id".into(),
            ev.id()
                .map_or("—".into(), |id| format!("<code>{id:032x}</code>")),
        ],
    ];
    let mut body = table(&["", ""], &facts);
    let _ = write!(
        body,
        "<h2>Payload ({} bytes)</h2>{}<h2>Metadata ({} bytes)</h2>{}<p>{}{}</p>",
        ev.payload().len(),
        bytes_view(ev.payload()),
        ev.metadata().len(),
        bytes_view(ev.metadata()),
        position.checked_sub(1).map_or(String::new(), |p| format!(
            "<a href=\"/event/{p}\">Previous</a> · "
        )),
        format_args!("<a href=\"/event/{}\">Next</a>", position + 1)
    );
    Ok(View::ok(page(&format!("Event {position}"), &body)))
}

pub fn search(store: &Store, catalog: &Catalog, query: &Query) -> Result<View, View> {
    let event_type = query.get("type").map(String::as_str).unwrap_or_default();
    let parse = |key: &str| -> Result<Option<u64>, View> {
        match query.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_time(v).map(Some).map_err(|e| View::error(400, &e)),
        }
    };
    let (since, until) = (parse("since")?, parse("until")?);
    let since_position = match since {
        Some(since) => store.position_at(since).map_err(failed)?,
        None => 0,
    };
    let from = number(query, "from")?.unwrap_or(0).max(since_position);
    let limit = 50;
    let before_until = |ev: &annals::Result<RecordedEvent>| match (ev, until) {
        (Ok(ev), Some(until)) => ev.timestamp() < until,
        _ => true,
    };
    let events: Vec<RecordedEvent> = if event_type.is_empty() {
        store
            .read_all(from)
            .take_while(before_until)
            .take(limit)
            .collect::<annals::Result<_>>()
    } else {
        store
            .read_by_type(event_type, from)
            .take_while(before_until)
            .take(limit)
            .collect::<annals::Result<_>>()
    }
    .map_err(failed)?;
    let options: String = catalog
        .types
        .keys()
        .map(|t| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                esc(t),
                if t == event_type { " selected" } else { "" },
                esc(t)
            )
        })
        .collect();
    let value = |key: &str| esc(query.get(key).map(String::as_str).unwrap_or_default());
    let mut body = format!(
        "<form action=\"/search\"><select name=\"type\"><option value=\"\">any type</option>{options}</select> \
         since <input name=\"since\" placeholder=\"2026-12-01T09:00:00Z\" value=\"{}\"> \
         until <input name=\"until\" placeholder=\"2026-12-02T00:00:00Z\" value=\"{}\"> <button>Search</button></form>",
        value("since"),
        value("until")
    );
    if events.is_empty() {
        body.push_str("<p class=\"muted\">No event.</p>");
    } else {
        body.push_str(&table(&EVENT_HEADERS, &event_rows(&events)));
    }
    if let (true, Some(last)) = (events.len() == limit, events.last()) {
        let _ = write!(
            body,
            "<p><a href=\"/search?type={}&amp;since={}&amp;until={}&amp;from={}\">More</a></p>",
            url(event_type),
            url(query.get("since").map(String::as_str).unwrap_or_default()),
            url(query.get("until").map(String::as_str).unwrap_or_default()),
            last.position() + 1
        );
    }
    Ok(View::ok(page("Search", &body)))
}

pub fn tail(store: &Store) -> Result<View, View> {
    let next = store.next_position();
    let mut events: Vec<RecordedEvent> = store
        .read_all(next.saturating_sub(50))
        .collect::<annals::Result<_>>()
        .map_err(failed)?;
    events.reverse();
    let body = format!(
        "<p class=\"muted\">The newest events, newest first; this page reloads every 2 seconds.</p>{}",
        table(&EVENT_HEADERS, &event_rows(&events))
    );
    Ok(View::ok(page_with(
        "Live tail",
        &body,
        "<meta http-equiv=\"refresh\" content=\"2\">",
    )))
}

pub fn plot(store: &Store, catalog: &Catalog, name: &str) -> Result<View, View> {
    let svg = match name {
        "appends.svg" => {
            let points: Vec<(u64, u64)> =
                catalog.per_minute.iter().map(|(&m, &n)| (m, n)).collect();
            plots::series("Appends per minute", &points)
        }
        "types.svg" => {
            let mut rows: Vec<(String, u64)> =
                catalog.types.iter().map(|(t, &n)| (t.clone(), n)).collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            rows.truncate(20);
            plots::bars("Events per type", "events", &rows)
        }
        "segments.svg" => plots::bars("Bytes per segment", "bytes", &segments(store)),
        "lag.svg" => plots::bars("Checkpoint lag", "events behind", &lags(store)?),
        _ => return Err(View::error(404, &format!("no plot {name:?}"))),
    };
    Ok(View::svg(svg))
}
