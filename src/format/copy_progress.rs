//! `COPY-PROGRESS`: in the destination of [`Store::copy_to`](crate::Store::copy_to), how far
//! the copy got, so that running it again copies only what is new. [`COPY_PROGRESS_LEN`]
//! bytes, replaced whole (temporary file, sync, rename, directory sync) after each batch is
//! durable in the destination:
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 8 | magic `ANNALCPY` ([`COPY_MAGIC`]) | |
//! | 8 | 4 | CRC-32 of bytes 12..32 ([`COPY_CRC_AT`]) | a damaged file is refused, not believed |
//! | 12 | 4 | format version ([`COPY_VERSION`], [`COPY_VERSION_AT`]) | |
//! | 16 | 8 | the source position copied up to ([`COPY_SOURCE_AT`]) | where the next run starts |
//! | 24 | 8 | the destination's next position then ([`COPY_DEST_AT`]) | what lies past it is a prefix of an interrupted batch |

use byteorder::{ByteOrder, LittleEndian as LE};

use super::damage::Damage;

/// Magic bytes of the copy progress file.
pub const COPY_MAGIC: [u8; 8] = *b"ANNALCPY";
/// Its format version.
pub const COPY_VERSION: u32 = 1;
/// Bytes in the file.
pub const COPY_PROGRESS_LEN: usize = 32;
/// Offset of the CRC.
pub const COPY_CRC_AT: usize = 8;
/// Offset of the format version.
pub const COPY_VERSION_AT: usize = 12;
/// Offset of the source position.
pub const COPY_SOURCE_AT: usize = 16;
/// Offset of the destination position.
pub const COPY_DEST_AT: usize = 24;

const _: () = assert!(COPY_DEST_AT + 8 == COPY_PROGRESS_LEN);

/// How far a copy got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyProgress {
    /// Every source event below this position was copied.
    pub source: u64,
    /// The destination's next position when that was recorded.
    pub dest: u64,
}

/// The file's bytes.
pub fn encode_copy_progress(p: &CopyProgress) -> [u8; COPY_PROGRESS_LEN] {
    let mut b = [0u8; COPY_PROGRESS_LEN];
    b[..COPY_CRC_AT].copy_from_slice(&COPY_MAGIC);
    LE::write_u32(&mut b[COPY_VERSION_AT..], COPY_VERSION);
    LE::write_u64(&mut b[COPY_SOURCE_AT..], p.source);
    LE::write_u64(&mut b[COPY_DEST_AT..], p.dest);
    let crc = crc32fast::hash(&b[COPY_VERSION_AT..]);
    LE::write_u32(&mut b[COPY_CRC_AT..], crc);
    b
}

/// Decodes and checks the file's bytes.
pub fn decode_copy_progress(b: &[u8]) -> Result<CopyProgress, Damage> {
    if b.len() != COPY_PROGRESS_LEN {
        return Err(Damage::Mismatch {
            what: "copy progress file length",
            found: b.len() as u64,
            expected: COPY_PROGRESS_LEN as u64,
        });
    }
    if b[..COPY_CRC_AT] != COPY_MAGIC {
        return Err(Damage::Magic {
            what: "copy progress file",
        });
    }
    let stored = LE::read_u32(&b[COPY_CRC_AT..]);
    let computed = crc32fast::hash(&b[COPY_VERSION_AT..]);
    if stored != computed {
        return Err(Damage::Checksum {
            what: "copy progress file",
            stored,
            computed,
        });
    }
    let found = LE::read_u32(&b[COPY_VERSION_AT..]);
    if found != COPY_VERSION {
        return Err(Damage::Version {
            what: "copy progress file",
            found,
            reads: COPY_VERSION,
        });
    }
    Ok(CopyProgress {
        source: LE::read_u64(&b[COPY_SOURCE_AT..]),
        dest: LE::read_u64(&b[COPY_DEST_AT..]),
    })
}
