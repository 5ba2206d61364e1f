//! [`CHECKPOINT_LEN`] bytes: magic `ANNALCKP` (8), the saved position (8, at
//! [`CHECKPOINT_POSITION_AT`]), CRC-32 of the first 16 bytes (4, at [`CHECKPOINT_CRC_AT`]).
//! Written as `.{name}.tmp` (a name no checkpoint can have, as checkpoint names never start
//! with a dot), synced, renamed over `{name}`, directory synced: a crash leaves the old value
//! or the new one.

use byteorder::{ByteOrder, LittleEndian as LE};

/// Magic bytes of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"ANNALCKP";
/// Offset of the saved position.
pub const CHECKPOINT_POSITION_AT: usize = 8;
/// Offset of the CRC of everything before it.
pub const CHECKPOINT_CRC_AT: usize = 16;
/// Bytes in a checkpoint file.
pub const CHECKPOINT_LEN: usize = 20;

const _: () = assert!(CHECKPOINT_MAGIC.len() == CHECKPOINT_POSITION_AT);
const _: () = assert!(CHECKPOINT_CRC_AT + 4 == CHECKPOINT_LEN);

/// The bytes of a checkpoint file holding `position`.
pub fn encode_checkpoint(position: u64) -> [u8; CHECKPOINT_LEN] {
    let mut b = [0u8; CHECKPOINT_LEN];
    b[..CHECKPOINT_POSITION_AT].copy_from_slice(&CHECKPOINT_MAGIC);
    LE::write_u64(&mut b[CHECKPOINT_POSITION_AT..], position);
    let crc = crc32fast::hash(&b[..CHECKPOINT_CRC_AT]);
    LE::write_u32(&mut b[CHECKPOINT_CRC_AT..], crc);
    b
}

/// The position a checkpoint file holds, or the offset and nature of its damage.
pub fn decode_checkpoint(b: &[u8]) -> Result<u64, (u64, &'static str)> {
    if b.len() != CHECKPOINT_LEN || b[..CHECKPOINT_POSITION_AT] != CHECKPOINT_MAGIC {
        return Err((0, "not a checkpoint file"));
    }
    if crc32fast::hash(&b[..CHECKPOINT_CRC_AT]) != LE::read_u32(&b[CHECKPOINT_CRC_AT..]) {
        return Err((CHECKPOINT_CRC_AT as u64, "checkpoint checksum mismatch"));
    }
    Ok(LE::read_u64(&b[CHECKPOINT_POSITION_AT..]))
}
