//! `annals relay` and `annals mirror`: the log to NATS JetStream, and back into a store on
//! another machine (`annals-nats`).

use std::path::Path;
use std::process::ExitCode;

use annals::Store;
use annals_nats::{Mirror, MirrorOptions, Relay, RelayOptions};

use crate::CliResult;

/// Where and how to relay.
pub struct RelayArgs {
    pub server: String,
    pub options: RelayOptions,
    pub once: bool,
}

fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))
}

async fn connect(server: &str) -> CliResult<async_nats::Client> {
    async_nats::connect(server)
        .await
        .map_err(|e| format!("connect to {server}: {e}"))
}

/// Until Ctrl-C (or SIGTERM's default, which ends the process: the checkpoint is then the
/// last one saved, and a restart publishes nothing twice).
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        // No handler could be installed: run until killed.
        std::future::pending::<()>().await;
    }
}

pub fn relay(dir: &Path, args: RelayArgs) -> CliResult<ExitCode> {
    // Read-only: it runs beside the application that writes the store.
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let report = runtime()?.block_on(async {
        let relay = Relay::new(store, connect(&args.server).await?, args.options);
        relay.ensure_stream().await.map_err(|e| e.to_string())?;
        if !args.once {
            eprintln!("relaying to {}; Ctrl-C to stop", args.server);
        }
        let run = if args.once {
            relay.catch_up().await
        } else {
            relay.run_until(interrupted()).await
        };
        run.map_err(|e| e.to_string())
    })?;
    println!(
        "published {} events ({} bytes of payload); checkpoint at position {}; {} retries{}",
        report.published,
        report.bytes,
        report.checkpoint,
        report.retries,
        report
            .last_error
            .map(|e| format!(" (last: {e})"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn mirror(dir: &Path, server: &str, options: MirrorOptions, once: bool) -> CliResult<ExitCode> {
    let store = Store::open(dir).map_err(|e| e.to_string())?;
    let report = runtime()?.block_on(async {
        let mirror = Mirror::new(store, connect(server).await?, options);
        if !once {
            eprintln!("mirroring from {server}; Ctrl-C to stop");
        }
        let run = if once {
            mirror.catch_up().await
        } else {
            mirror.run_until(interrupted()).await
        };
        run.map_err(|e| e.to_string())
    })?;
    println!(
        "appended {} events ({} delivered again, skipped); at JetStream sequence {}",
        report.appended, report.skipped, report.sequence
    );
    Ok(ExitCode::SUCCESS)
}
