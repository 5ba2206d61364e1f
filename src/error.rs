//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::event::ExpectedVersion;

/// `Result` with [`Error`] as the error type.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in annals.
///
/// Bad input and damaged files name what and where; the library never panics on them.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    Io {
        /// What annals was doing, such as `"fdatasync"` or `"create segment"`.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The error the operating system returned.
        source: io::Error,
    },
    /// A file holds bytes that cannot be what annals wrote: a checksum mismatch, a length that
    /// points outside its frame, a missing position. Nothing from the damaged region is returned.
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset in `file` of the damaged frame, record or header.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The store directory is open already, in this process or another one.
    Locked {
        /// The store directory.
        dir: PathBuf,
    },
    /// An argument breaks a rule of the API (empty stream name, event too large, ...).
    InvalidInput(String),
    /// The stream's last version is not what the append expected; nothing was written.
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's last version, `None` for a stream with no events.
        actual: Option<u64>,
    },
    /// Some, but not all, events of an append carry ids that the stream already holds;
    /// nothing was written.
    DuplicateEvent {
        /// The stream appended to.
        stream: String,
        /// The first id of the append that the stream already holds.
        id: u128,
    },
    /// The store was opened read-only ([`Store::open_read_only`](crate::Store::open_read_only)),
    /// and this call would change its log.
    ReadOnly {
        /// The store directory.
        dir: PathBuf,
    },
    /// An earlier write or `fdatasync` failed, so the state of the log on disk is unknown.
    /// The store refuses writes until it is closed and opened again, which recovers the log.
    Poisoned {
        /// The failure that poisoned the store.
        cause: String,
    },
    /// The transform of [`Store::try_copy_to`](crate::Store::try_copy_to) failed on the event
    /// at `position`: everything before it is copied and recorded, and running the copy
    /// again starts there.
    CopyStopped {
        /// The source position of the event.
        position: u64,
        /// What the transform said.
        reason: String,
    },
    /// An upcaster ([`Options::upcaster`](crate::Options::upcaster)) panicked on this event or
    /// returned an event that cannot be (the stored event is unchanged).
    Upcast {
        /// The event's position.
        position: u64,
        /// The event's stream.
        stream: String,
        /// The event's type when the upcaster ran.
        event_type: String,
        /// What went wrong.
        reason: String,
    },
    /// An event's payload could not be made from a value as JSON, or read as JSON into one
    /// (feature `serde`: [`EventData::json`](crate::EventData),
    /// [`RecordedEvent::json`](crate::RecordedEvent)).
    Json {
        /// The event: its type, and where it lies for an event read from the store.
        event: String,
        /// What serde_json said.
        reason: String,
    },
    /// [`Store::erase_stream`](crate::Store::erase_stream) is erasing this stream: appends to
    /// it fail until the erasure returns (then they start a new stream at version 0). Nothing
    /// was written.
    Erasing {
        /// The stream appended to.
        stream: String,
    },
}

impl Error {
    /// An [`Error::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Corrupt`] at `offset` of `file`.
    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: impl ToString) -> Self {
        Error::Corrupt {
            file: file.into(),
            offset,
            reason: reason.to_string(),
        }
    }
}

impl Error {
    /// [`Error::InvalidInput`] for a directory without segment files, opened where a store
    /// must already be (read-only, or to verify).
    pub(crate) fn not_a_store(dir: &std::path::Path) -> Self {
        Error::InvalidInput(format!(
            "{} is not an annals store: it holds no segment file",
            dir.display()
        ))
    }

    /// An equal error for another caller: the same variant and fields (an I/O error keeps its
    /// kind and message). Used when one failed write fails every append of its batch.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corrupt {
                file,
                offset,
                reason,
            } => Error::corrupt(file.clone(), *offset, reason.clone()),
            Error::Locked { dir } => Error::Locked { dir: dir.clone() },
            Error::ReadOnly { dir } => Error::ReadOnly { dir: dir.clone() },
            Error::InvalidInput(msg) => Error::InvalidInput(msg.clone()),
            Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => Error::WrongExpectedVersion {
                stream: stream.clone(),
                expected: *expected,
                actual: *actual,
            },
            Error::DuplicateEvent { stream, id } => Error::DuplicateEvent {
                stream: stream.clone(),
                id: *id,
            },
            Error::Poisoned { cause } => Error::Poisoned {
                cause: cause.clone(),
            },
            Error::Erasing { stream } => Error::Erasing {
                stream: stream.clone(),
            },
            Error::CopyStopped { position, reason } => Error::CopyStopped {
                position: *position,
                reason: reason.clone(),
            },
            Error::Json { event, reason } => Error::Json {
                event: event.clone(),
                reason: reason.clone(),
            },
            Error::Upcast {
                position,
                stream,
                event_type,
                reason,
            } => Error::Upcast {
                position: *position,
                stream: stream.clone(),
                event_type: event_type.clone(),
                reason: reason.clone(),
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => {
                write!(f, "{op} failed on {}: {source}", path.display())
            }
            Error::Corrupt {
                file,
                offset,
                reason,
            } => write!(
                f,
                "corrupt data in {} at offset {offset}: {reason}",
                file.display()
            ),
            Error::Locked { dir } => write!(
                f,
                "store {} is already open (in this process or another one)",
                dir.display()
            ),
            Error::ReadOnly { dir } => write!(
                f,
                "store {} is open read-only: it cannot be appended to",
                dir.display()
            ),
            Error::InvalidInput(msg) => write!(f, "invalid input: {msg}"),
            Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => {
                let actual = match actual {
                    Some(v) => format!("last version {v}"),
                    None => "no events".to_string(),
                };
                write!(
                    f,
                    "wrong expected version for stream {stream:?}: expected {expected}, stream has {actual}"
                )
            }
            Error::DuplicateEvent { stream, id } => write!(
                f,
                "stream {stream:?} already holds event id {id:#034x}, but not every event of this append"
            ),
            Error::Poisoned { cause } => write!(
                f,
                "store refuses writes after an I/O failure ({cause}); close and reopen it to recover"
            ),
            Error::Erasing { stream } => write!(
                f,
                "stream {stream:?} is being erased; append again once the erasure returns"
            ),
            Error::CopyStopped { position, reason } => write!(
                f,
                "the copy stopped at source position {position}: {reason}; what came before is \
                 copied, and running it again starts there"
            ),
            Error::Json { event, reason } => write!(f, "JSON of {event}: {reason}"),
            Error::Upcast {
                position,
                stream,
                event_type,
                reason,
            } => write!(
                f,
                "upcasting the event at position {position} (stream {stream:?}, type \
                 {event_type:?}) failed: {reason}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
