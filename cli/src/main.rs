//! `annals`: look inside an annals event store, check it, back it up, move its events in and
//! out as JSON Lines, compact it, erase streams, and relay it to NATS JetStream and back. Every command that only reads opens the
//! store read-only, so it runs beside the application that writes it.
//!
//! Exit codes: 0 success; 1 `verify` found damage; 2 an error (one line on stderr).

mod backup;
mod dump;
mod import;
mod inspect;
mod line;
mod maintain;
mod nats;
mod progress;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Look inside an annals event store, check it, back it up, and move its events in and out
/// as JSON Lines.
#[derive(Parser)]
#[command(name = "annals", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Segments, events, streams, bytes, first and last event, checkpoints, and what opening found.
    Stat {
        /// The store directory.
        dir: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read every byte of every file and list every damage; exit 1 if there is any.
    Verify {
        /// The store directory.
        dir: PathBuf,
    },
    /// Print events as JSON Lines on stdout, one event a line.
    Dump {
        /// The store directory.
        dir: PathBuf,
        #[command(flatten)]
        filter: Filter,
    },
    /// Append events from JSON Lines (as `dump` writes them); re-running it is harmless.
    Import {
        /// The store directory (created if missing).
        dir: PathBuf,
        /// The file to read; standard input without it.
        file: Option<PathBuf>,
    },
    /// Follow new events as they are appended, as JSON Lines.
    Tail {
        /// The store directory.
        dir: PathBuf,
        /// Start at this position (default: the checkpoint's position, 0 for a new
        /// checkpoint, or else the end of the log).
        #[arg(long)]
        from: Option<u64>,
        /// Start from this consumer checkpoint and save the cursor to it as events are printed.
        #[arg(long, value_name = "NAME")]
        checkpoint: Option<String>,
        /// Stop after this many events.
        #[arg(long)]
        limit: Option<u64>,
        /// How often to look for new events, in milliseconds.
        #[arg(long, default_value_t = 200)]
        poll_ms: u64,
    },
    /// Copy the store to DEST (missing or empty) while it is in use; checksums verified.
    Backup {
        /// The store directory.
        dir: PathBuf,
        /// Where the copy goes.
        dest: PathBuf,
    },
    /// List consumer checkpoints and how far behind the end of the log each one is.
    Checkpoints {
        /// The store directory.
        dir: PathBuf,
    },
    /// Rewrite sealed segments without soft-deleted and expired events, reclaiming their
    /// space (opens the store for writing: stop the application first).
    Compact {
        /// The store directory.
        dir: PathBuf,
    },
    /// Remove every trace of a stream from every file (GDPR erasure; opens the store for
    /// writing: stop the application first). Asks to type the stream's name on a terminal.
    Erase {
        /// The store directory.
        dir: PathBuf,
        /// The stream to erase.
        stream: String,
        /// Erase without asking (required when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Publish the store's events to a NATS JetStream stream, from a durable checkpoint,
    /// each once and in order (opens the store read-only: it runs beside the application).
    Relay {
        /// The store directory.
        dir: PathBuf,
        /// The NATS server.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        server: String,
        /// Subjects are `PREFIX.<stream>`.
        #[arg(long, default_value = "annals")]
        prefix: String,
        /// The JetStream stream (created if missing).
        #[arg(long, default_value = "ANNALS")]
        stream: String,
        /// The consumer checkpoint in the store that remembers how far it got.
        #[arg(long, default_value = "nats-relay")]
        checkpoint: String,
        /// Only events of this type (repeatable).
        #[arg(long = "type", value_name = "TYPE")]
        event_types: Vec<String>,
        /// Only streams named `CATEGORY-…`.
        #[arg(long)]
        category: Option<String>,
        /// Publish what is there now and exit, instead of following new events.
        #[arg(long)]
        once: bool,
    },
    /// Append the events of a JetStream stream that `relay` fills to this store (created if
    /// missing): a read replica on another machine.
    Mirror {
        /// The store directory.
        dir: PathBuf,
        /// The NATS server.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        server: String,
        /// The JetStream stream.
        #[arg(long, default_value = "ANNALS")]
        stream: String,
        /// The checkpoint of this store that remembers the last JetStream sequence applied.
        #[arg(long, default_value = "nats-mirror")]
        checkpoint: String,
        /// Append what is there now and exit, instead of following.
        #[arg(long)]
        once: bool,
    },
    /// Browse the store in a web browser: overview, streams, events, search, live tail and
    /// plots (opens it read-only; localhost only unless --allow-remote).
    Serve {
        /// The store directory.
        dir: PathBuf,
        /// The address and port to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: String,
        /// Listen on an address other machines can reach (the store may hold personal data).
        #[arg(long)]
        allow_remote: bool,
    },
}

/// Which events `dump` prints.
#[derive(Args, Debug, Default)]
pub struct Filter {
    /// Only this stream (read through its index).
    #[arg(long)]
    stream: Option<String>,
    /// Only streams named `CATEGORY-…`.
    #[arg(long)]
    category: Option<String>,
    /// Only events of this type.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// From this position on.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Below this position.
    #[arg(long)]
    to: Option<u64>,
    /// Only events stamped at or after this time (RFC 3339, e.g. 2026-12-01T09:00:00Z).
    #[arg(long, value_parser = line::parse_time)]
    since: Option<u64>,
    /// Only events stamped before this time (RFC 3339).
    #[arg(long, value_parser = line::parse_time)]
    until: Option<u64>,
    /// At most this many events.
    #[arg(long)]
    limit: Option<u64>,
}

/// What a command can fail with: a message for one line on stderr.
pub type CliResult<T> = Result<T, String>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stat { dir, json } => inspect::stat(&dir, json),
        Command::Verify { dir } => inspect::verify(&dir),
        Command::Dump { dir, filter } => dump::dump(&dir, &filter),
        Command::Import { dir, file } => import::import(&dir, file.as_deref()),
        Command::Tail {
            dir,
            from,
            checkpoint,
            limit,
            poll_ms,
        } => dump::tail(&dir, from, checkpoint.as_deref(), limit, poll_ms),
        Command::Backup { dir, dest } => backup::backup(&dir, &dest),
        Command::Checkpoints { dir } => inspect::checkpoints(&dir),
        Command::Compact { dir } => maintain::compact(&dir),
        Command::Erase { dir, stream, yes } => maintain::erase(&dir, &stream, yes),
        Command::Serve {
            dir,
            listen,
            allow_remote,
        } => serve::serve(&dir, &listen, allow_remote),
        Command::Relay {
            dir,
            server,
            prefix,
            stream,
            checkpoint,
            event_types,
            category,
            once,
        } => {
            let options = annals_nats::RelayOptions {
                prefix,
                stream,
                checkpoint,
                event_types: (!event_types.is_empty()).then_some(event_types),
                category,
                ..Default::default()
            };
            nats::relay(
                &dir,
                nats::RelayArgs {
                    server,
                    options,
                    once,
                },
            )
        }
        Command::Mirror {
            dir,
            server,
            stream,
            checkpoint,
            once,
        } => {
            let options = annals_nats::MirrorOptions {
                stream,
                checkpoint,
                ..Default::default()
            };
            nats::mirror(&dir, &server, options, once)
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("annals: {message}");
            ExitCode::from(2)
        }
    }
}
