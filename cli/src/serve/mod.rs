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
use std::sync::{Arc, Mutex};

use annals::Store;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::CliResult;
use catalog::Catalog;
use views::View;

struct App {
    store: Store,
    catalog: Mutex<Catalog>,
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

/// Runs `view` on the store and the catalog brought up to date (the events appended since
/// the last request only).
fn with_catalog(app: &App, view: impl FnOnce(&Store, &Catalog) -> Result<View, View>) -> View {
    let Ok(mut catalog) = app.catalog.lock() else {
        return View::error(500, "the catalog is unusable after a failed request");
    };
    if let Err(e) = catalog.update(&app.store) {
        return View::error(500, &e);
    }
    view(&app.store, &catalog).unwrap_or_else(|e| e)
}

async fn overview(State(app): Shared) -> View {
    with_catalog(&app, views::overview)
}

async fn streams(State(app): Shared, Query(q): Query<HashMap<String, String>>) -> View {
    with_catalog(&app, |_, c| views::streams(c, &q))
}

async fn stream(
    State(app): Shared,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> View {
    with_catalog(&app, |s, _| views::stream(s, &name, &q))
}

async fn event(State(app): Shared, UrlPath(position): UrlPath<String>) -> View {
    with_catalog(&app, |s, _| views::event(s, &position))
}

async fn search(State(app): Shared, Query(q): Query<HashMap<String, String>>) -> View {
    with_catalog(&app, |s, c| views::search(s, c, &q))
}

async fn tail(State(app): Shared) -> View {
    with_catalog(&app, |s, _| views::tail(s))
}

async fn plot(State(app): Shared, UrlPath(name): UrlPath<String>) -> View {
    with_catalog(&app, |s, c| views::plot(s, c, &name))
}

async fn not_found() -> View {
    View::error(404, "no such page")
}

/// The router of every page.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/streams", get(streams))
        .route("/stream/{name}", get(stream))
        .route("/event/{position}", get(event))
        .route("/search", get(search))
        .route("/tail", get(tail))
        .route("/plot/{name}", get(plot))
        .fallback(not_found)
        .with_state(app)
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
    let mut catalog = Catalog::default();
    catalog.update(&store)?;
    let app = Arc::new(App {
        store,
        catalog: Mutex::new(catalog),
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
        axum::serve(listener, router(app))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| format!("serve: {e}"))
    })?;
    Ok(ExitCode::SUCCESS)
}
