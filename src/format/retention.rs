//! The `RETENTION` file: every stream's retention rules (and soft deletes, which are a
//! `truncate_before`), replaced whole on each change (temporary file, sync, rename,
//! directory sync).
//!
//! Header, [`RETENTION_HEADER_LEN`] bytes: magic `ANNALSRT` (8), format version (4, at
//! [`RETENTION_VERSION_AT`]), number of entries (4, at [`RETENTION_COUNT_AT`]), CRC-32 of
//! every byte after the header (4, at [`RETENTION_CRC_AT`]), CRC-32 of the header's first 20
//! bytes (4, at [`RETENTION_HEADER_CRC_AT`]). Then the entries, each: stream name length (1,
//! at [`ENTRY_NAME_LEN_AT`]), `truncate_before` (8, at [`ENTRY_TRUNCATE_AT`]), `max_count`
//! (8, at [`ENTRY_MAX_COUNT_AT`]), `max_age` in microseconds (8, at [`ENTRY_MAX_AGE_AT`]),
//! then the name's bytes ([`ENTRY_FIXED_LEN`] fixed bytes before them). [`NO_LIMIT`] in a
//! limit field means none.

use byteorder::{ByteOrder, LittleEndian as LE};

/// Magic bytes of the retention file.
pub const RETENTION_MAGIC: [u8; 8] = *b"ANNALSRT";
/// Format version this build writes and reads.
pub const RETENTION_VERSION: u32 = 1;
/// Offset of the format version.
pub const RETENTION_VERSION_AT: usize = 8;
/// Offset of the number of entries.
pub const RETENTION_COUNT_AT: usize = 12;
/// Offset of the CRC of the entries.
pub const RETENTION_CRC_AT: usize = 16;
/// Offset of the CRC of the header's bytes before it.
pub const RETENTION_HEADER_CRC_AT: usize = 20;
/// Bytes in the header.
pub const RETENTION_HEADER_LEN: usize = 24;
/// Offset in an entry of the name's length.
pub const ENTRY_NAME_LEN_AT: usize = 0;
/// Offset in an entry of `truncate_before`.
pub const ENTRY_TRUNCATE_AT: usize = 1;
/// Offset in an entry of `max_count`.
pub const ENTRY_MAX_COUNT_AT: usize = 9;
/// Offset in an entry of `max_age` (microseconds).
pub const ENTRY_MAX_AGE_AT: usize = 17;
/// Bytes of an entry before the name.
pub const ENTRY_FIXED_LEN: usize = 25;
/// A limit field that sets no limit.
pub const NO_LIMIT: u64 = u64::MAX;

const _: () = assert!(RETENTION_MAGIC.len() == RETENTION_VERSION_AT);
const _: () = assert!(RETENTION_HEADER_CRC_AT + 4 == RETENTION_HEADER_LEN);
const _: () = assert!(ENTRY_MAX_AGE_AT + 8 == ENTRY_FIXED_LEN);

/// One stream's rules as stored: name, `truncate_before`, `max_count`, `max_age` (µs).
pub type RetentionEntry = (String, u64, u64, u64);

/// The bytes of a retention file holding `entries` (names of 1 to 255 bytes).
pub fn encode_retention(entries: &[RetentionEntry]) -> Vec<u8> {
    let mut b = vec![0u8; RETENTION_HEADER_LEN];
    for (name, truncate, count, age) in entries {
        let mut e = [0u8; ENTRY_FIXED_LEN];
        e[ENTRY_NAME_LEN_AT] = name.len() as u8;
        LE::write_u64(&mut e[ENTRY_TRUNCATE_AT..], *truncate);
        LE::write_u64(&mut e[ENTRY_MAX_COUNT_AT..], *count);
        LE::write_u64(&mut e[ENTRY_MAX_AGE_AT..], *age);
        b.extend_from_slice(&e);
        b.extend_from_slice(name.as_bytes());
    }
    b[..RETENTION_VERSION_AT].copy_from_slice(&RETENTION_MAGIC);
    LE::write_u32(&mut b[RETENTION_VERSION_AT..], RETENTION_VERSION);
    LE::write_u32(&mut b[RETENTION_COUNT_AT..], entries.len() as u32);
    let crc = crc32fast::hash(&b[RETENTION_HEADER_LEN..]);
    LE::write_u32(&mut b[RETENTION_CRC_AT..], crc);
    let header_crc = crc32fast::hash(&b[..RETENTION_HEADER_CRC_AT]);
    LE::write_u32(&mut b[RETENTION_HEADER_CRC_AT..], header_crc);
    b
}

/// The entries of a retention file, or the offset and nature of its damage.
pub fn decode_retention(b: &[u8]) -> Result<Vec<RetentionEntry>, (u64, &'static str)> {
    if b.len() < RETENTION_HEADER_LEN || b[..RETENTION_VERSION_AT] != RETENTION_MAGIC {
        return Err((0, "not a retention file"));
    }
    if crc32fast::hash(&b[..RETENTION_HEADER_CRC_AT]) != LE::read_u32(&b[RETENTION_HEADER_CRC_AT..])
    {
        return Err((
            RETENTION_HEADER_CRC_AT as u64,
            "retention file header checksum mismatch",
        ));
    }
    if LE::read_u32(&b[RETENTION_VERSION_AT..]) != RETENTION_VERSION {
        return Err((
            RETENTION_VERSION_AT as u64,
            "retention file of an unknown format version",
        ));
    }
    if crc32fast::hash(&b[RETENTION_HEADER_LEN..]) != LE::read_u32(&b[RETENTION_CRC_AT..]) {
        return Err((
            RETENTION_HEADER_LEN as u64,
            "retention entries checksum mismatch",
        ));
    }
    let count = LE::read_u32(&b[RETENTION_COUNT_AT..]) as usize;
    let mut entries = Vec::with_capacity(count.min(b.len() / ENTRY_FIXED_LEN));
    let mut at = RETENTION_HEADER_LEN;
    for _ in 0..count {
        let fixed = b
            .get(at..at + ENTRY_FIXED_LEN)
            .ok_or((at as u64, "retention entry cut short"))?;
        let len = fixed[ENTRY_NAME_LEN_AT] as usize;
        let name = b
            .get(at + ENTRY_FIXED_LEN..at + ENTRY_FIXED_LEN + len)
            .ok_or((at as u64, "retention entry name cut short"))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| (at as u64, "retention entry name is not UTF-8"))?;
        entries.push((
            name.to_string(),
            LE::read_u64(&fixed[ENTRY_TRUNCATE_AT..]),
            LE::read_u64(&fixed[ENTRY_MAX_COUNT_AT..]),
            LE::read_u64(&fixed[ENTRY_MAX_AGE_AT..]),
        ));
        at += ENTRY_FIXED_LEN + len;
    }
    if at != b.len() {
        return Err((at as u64, "bytes after the last retention entry"));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_every_flipped_byte_is_caught() {
        let entries = vec![
            ("order-1".to_string(), 5, NO_LIMIT, NO_LIMIT),
            ("sensor-7".to_string(), 0, 1000, 86_400_000_000),
        ];
        let b = encode_retention(&entries);
        assert_eq!(decode_retention(&b).unwrap(), entries);
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x40;
            assert!(decode_retention(&d).is_err(), "flip at {i} not caught");
        }
        assert!(decode_retention(&b[..b.len() - 1]).is_err());
        assert_eq!(decode_retention(&encode_retention(&[])).unwrap(), vec![]);
    }

    /// Recomputes both checksums, so that damage reaches the parsing of the entries.
    fn reseal(b: &mut [u8]) {
        let crc = crc32fast::hash(&b[RETENTION_HEADER_LEN..]);
        LE::write_u32(&mut b[RETENTION_CRC_AT..], crc);
        let crc = crc32fast::hash(&b[..RETENTION_HEADER_CRC_AT]);
        LE::write_u32(&mut b[RETENTION_HEADER_CRC_AT..], crc);
    }

    proptest::proptest! {
        #[test]
        fn entries_round_trip_and_any_counts_or_lengths_are_refused_not_panics(
            entries in proptest::collection::vec(
                ("[a-z0-9-]{1,40}", proptest::prelude::any::<u64>(), proptest::prelude::any::<u64>(), proptest::prelude::any::<u64>()),
                0..12,
            ),
            count in proptest::prelude::any::<u32>(),
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let b = encode_retention(&entries);
            proptest::prop_assert_eq!(decode_retention(&b).unwrap(), entries);
            let mut d = b.clone();
            LE::write_u32(&mut d[RETENTION_COUNT_AT..], count);
            for (at, byte) in edits {
                if d.len() > RETENTION_HEADER_LEN {
                    let at = RETENTION_HEADER_LEN + at % (d.len() - RETENTION_HEADER_LEN);
                    d[at] = byte;
                }
            }
            d.truncate(RETENTION_HEADER_LEN + cut % (d.len() - RETENTION_HEADER_LEN + 1));
            reseal(&mut d);
            let _ = decode_retention(&d);
        }
    }
}
