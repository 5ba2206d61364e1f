//! `annals serve DIR`: a web page to browse a store — the overview, streams, one stream's
//! events, one event in full, search by type and time, a live tail, and plots drawn on the
//! server as SVG. It opens the store read-only (it runs beside the writing application) and
//! listens on localhost unless told otherwise with `--allow-remote`: the store may hold
//! personal data.

mod catalog;
mod html;
mod plots;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use annals::Store;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::CliResult;
use catalog::Catalog;
use views::View;

struct App {
    store: Store,
    catalog: Mutex<Catalog>,
    /// When the store was last refreshed and the catalog brought up to date: at most once a
    /// second, whatever the number of requests (a page and its four plots, a tail reloading).
    updated: Mutex<Option<Instant>>,
}

type Shared = State<Arc<App>>;

impl IntoResponse for View {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response()
    }
}

/// Runs `view` off the async runtime (it reads files) on the store and the catalog, brought
/// up to date if a second has passed. A failed update is reported on stderr and the pages go
/// on with what the catalog holds.
async fn run(
    app: Arc<App>,
    view: impl FnOnce(&Store, &Catalog) -> Result<View, View> + Send + 'static,
) -> View {
    let task = tokio::task::spawn_blocking(move || {
        let mut catalog = app.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        let mut updated = app.updated.lock().unwrap_or_else(PoisonError::into_inner);
        if updated.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            if let Err(e) = catalog.update(&app.store) {
                eprintln!("annals serve: bringing the catalog up to date: {e}");
            }
            *updated = Some(Instant::now());
        }
        drop(updated);
        view(&app.store, &catalog).unwrap_or_else(|e| e)
    });
    task.await
        .unwrap_or_else(|e| View::error(500, &format!("the page failed: {e}")))
}

async fn overview(State(app): Shared) -> View {
    run(app, views::overview).await
}

async fn streams(State(app): Shared, Query(q): Query<HashMap<String, String>>) -> View {
    run(app, move |s, c| views::streams(s, c, &q)).await
}

async fn stream(State(app): Shared, Query(q): Query<HashMap<String, String>>) -> View {
    run(app, move |s, _| views::stream(s, &q)).await
}

async fn event(State(app): Shared, UrlPath(position): UrlPath<String>) -> View {
    run(app, move |s, _| views::event(s, &position)).await
}

async fn search(State(app): Shared, Query(q): Query<HashMap<String, String>>) -> View {
    run(app, move |s, c| views::search(s, c, &q)).await
}

async fn tail(State(app): Shared) -> View {
    run(app, |s, _| views::tail(s)).await
}

async fn plot(State(app): Shared, UrlPath(name): UrlPath<String>) -> View {
    run(app, move |s, c| views::plot(s, c, &name)).await
}

async fn not_found() -> View {
    View::error(404, "no such page")
}

/// Unless serving beyond this machine was asked for, answers only requests addressed to a
/// loopback name (a page elsewhere that points its own domain at 127.0.0.1 — DNS rebinding
/// — gets nothing), and marks every response: no sniffing, no scripts, nothing from elsewhere.
async fn guard(State(allow_any_host): State<bool>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if !allow_any_host && !["localhost", "127.0.0.1", "[::1]"].contains(&name) {
        return View::error(403, "this server answers requests for localhost only").into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"),
    );
    response
}

/// The router of every page.
fn router(app: Arc<App>, allow_any_host: bool) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/streams", get(streams))
        .route("/stream", get(stream))
        .route("/event/{position}", get(event))
        .route("/search", get(search))
        .route("/tail", get(tail))
        .route("/plot/{name}", get(plot))
        .fallback(not_found)
        .with_state(app)
        .layer(middleware::from_fn_with_state(allow_any_host, guard))
}

pub fn serve(dir: &Path, listen: &str, allow_remote: bool) -> CliResult<ExitCode> {
    let addr: SocketAddr = listen.parse().map_err(|e| {
        format!("--listen {listen:?}: not an address and port like 127.0.0.1:7070 ({e})")
    })?;
    if !addr.ip().is_loopback() {
        if !allow_remote {
            return Err(format!(
                "{addr} is reachable from other machines and the store may hold personal data: \
                 pass --allow-remote to serve it there anyway"
            ));
        }
        eprintln!(
            "warning: serving {} on {addr}: whoever reaches it can read every event",
            dir.display()
        );
    }
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    // One pass over the log for what no index answers (stream names, counts per type and
    // minute); on a large store it takes a while, so say so.
    let started = Instant::now();
    eprintln!(
        "reading {} events to list streams and count types…",
        store.next_position()
    );
    let mut catalog = Catalog::default();
    catalog.update(&store)?;
    eprintln!(
        "{} streams, {} event types, in {:.1?}",
        catalog.streams.len(),
        catalog.types.len(),
        started.elapsed()
    );
    let app = Arc::new(App {
        store,
        catalog: Mutex::new(catalog),
        updated: Mutex::new(Some(Instant::now())),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("listen on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on http://{bound}/ (Ctrl-C to stop)");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(app, allow_remote))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| format!("serve: {e}"))
    })?;
    Ok(ExitCode::SUCCESS)
}
