//! [`Damage`]: what decoding found wrong with bytes that should hold one of the layouts. Typed,
//! so that a caller can tell a checksum mismatch from a short read without parsing text; its
//! `Display` is the sentence [`Error::Corrupt`](crate::Error::Corrupt) carries as its reason.

use std::fmt;
use std::io;

/// What is wrong with the bytes of a layout. `what` names the layout or field concerned
/// ("frame", "record", "segment header", ...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// Fewer bytes than the layout needs.
    Short {
        /// The layout.
        what: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes there are.
        available: u64,
    },
    /// The magic bytes are not the layout's.
    Magic {
        /// The layout.
        what: &'static str,
    },
    /// A stored checksum does not match the bytes it covers.
    Checksum {
        /// The layout.
        what: &'static str,
        /// The checksum stored.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// A format version this build does not read.
    Version {
        /// The layout.
        what: &'static str,
        /// The version found.
        found: u32,
        /// The version this build reads.
        reads: u32,
    },
    /// A length field that cannot be right.
    Length {
        /// The layout.
        what: &'static str,
        /// The length it holds.
        length: u64,
    },
    /// A field whose value breaks a rule of the layout.
    Field {
        /// The layout or field.
        what: &'static str,
        /// The rule it breaks.
        problem: &'static str,
    },
    /// A value other than the one its place requires (a position, a version, a count).
    Mismatch {
        /// The value.
        what: &'static str,
        /// What it holds.
        found: u64,
        /// What its place requires.
        expected: u64,
    },
    /// Bytes after the end of what a layout says it holds.
    Trailing {
        /// The layout.
        what: &'static str,
        /// How many bytes.
        bytes: u64,
    },
    /// An event (or a side file's span of events) that does not continue its stream.
    Discontinuous {
        /// The stream.
        stream: Box<str>,
        /// What does not follow: "version", "back pointer", "checkpoint count".
        what: &'static str,
        /// What it holds.
        found: u64,
        /// What continuing the stream requires.
        expected: u64,
    },
    /// The file could not be read.
    Unreadable {
        /// The file.
        what: &'static str,
        /// Why.
        kind: io::ErrorKind,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Short {
                what,
                needed,
                available,
            } => write!(f, "{what} needs {needed} bytes, {available} remain"),
            Damage::Magic { what } => write!(f, "not an annals {what} (bad magic)"),
            Damage::Checksum {
                what,
                stored,
                computed,
            } => write!(
                f,
                "{what} checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Damage::Version { what, found, reads } => {
                write!(
                    f,
                    "{what} has format version {found}; this build of annals reads version \
                     {reads}"
                )?;
                if found < reads {
                    f.write_str(" (written by an older build; nothing was released in that format)")
                } else {
                    Ok(())
                }
            }
            Damage::Length { what, length } => write!(f, "impossible {what} length {length}"),
            Damage::Field { what, problem } => write!(f, "{what}: {problem}"),
            Damage::Mismatch {
                what,
                found,
                expected,
            } => write!(f, "{what} is {found}, {expected} expected"),
            Damage::Trailing { what, bytes } => write!(f, "{bytes} unused bytes after the {what}"),
            Damage::Discontinuous {
                stream,
                what,
                found,
                expected,
            } => {
                write!(
                    f,
                    "an event of stream {stream:?} does not continue it: its {what} is "
                )?;
                if *what == "back pointer" {
                    write!(f, "{found:#x}, {expected:#x} expected")
                } else {
                    write!(f, "{found}, {expected} expected")
                }
            }
            Damage::Unreadable { what, kind } => write!(f, "cannot read the {what}: {kind}"),
        }
    }
}

impl std::error::Error for Damage {}
