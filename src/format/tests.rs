//! Round trips and damage detection across the layouts.

use super::*;
use byteorder::{ByteOrder, LittleEndian as LE};

fn sample(position: u64, id: Option<u128>) -> RecordView<'static> {
    RecordView {
        position,
        version: 7,
        timestamp: 1_700_000_000_000_000,
        prev: location(3, 4096),
        id,
        stream: "order-42",
        event_type: "OrderPlaced",
        metadata: b"meta",
        payload: b"{\"total\":12}",
    }
}

fn frame_of(records: &[RecordView<'_>]) -> Vec<u8> {
    let mut buf = Vec::new();
    let start = begin_frame(&mut buf);
    for r in records {
        encode_record(&mut buf, r);
    }
    finish_frame(
        &mut buf,
        start,
        records[0].position,
        records[0].position.saturating_sub(1),
        records.len() as u32,
        0xABCD,
    );
    buf
}

#[test]
fn segment_header_round_trips_and_detects_damage() {
    let h = SegmentHeader {
        base_position: 1234,
        seq: 5,
    };
    let mut b = h.encode();
    assert_eq!(SegmentHeader::decode(&b), Ok((h, false)));
    b[20] ^= 1;
    assert!(matches!(
        SegmentHeader::decode(&b),
        Err(Damage::Checksum {
            what: "segment header",
            ..
        })
    ));
    assert!(SegmentHeader::decode(&b[..10]).is_err());
}

#[test]
fn frame_round_trips_every_field() {
    let records = [sample(10, Some(u128::MAX - 3)), sample(11, None)];
    let buf = frame_of(&records);
    let frame = read_frame(&buf).unwrap();
    assert_eq!(frame.header.first_position, 10);
    assert_eq!(frame.header.durable, 9);
    assert_eq!(frame.header.prev_crc, 0xABCD);
    assert_eq!(frame.end_position(), 12);
    let decoded: Vec<_> = frame.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(decoded, records);
}

#[test]
fn every_flipped_bit_is_detected() {
    let buf = frame_of(&[sample(0, Some(1)), sample(1, None)]);
    for i in 0..buf.len() {
        for bit in 0..8 {
            let mut bad = buf.clone();
            bad[i] ^= 1 << bit;
            let ok = read_frame(&bad).and_then(|f| {
                f.records()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(FrameFault::Invalid)
            });
            assert!(ok.is_err(), "flip of bit {bit} of byte {i} went unnoticed");
        }
    }
}

#[test]
fn truncated_frames_are_incomplete_and_zeros_are_the_end() {
    let buf = frame_of(&[sample(0, None)]);
    for cut in 1..buf.len() {
        assert!(matches!(
            read_frame(&buf[..cut]),
            Err(FrameFault::Incomplete { .. })
        ));
    }
    assert_eq!(read_frame(&[0; 100]).unwrap_err(), FrameFault::End);
    assert_eq!(read_frame(&[0; 5]).unwrap_err(), FrameFault::End);
}

#[test]
fn record_crc_is_checked_when_asked() {
    let mut buf = Vec::new();
    encode_record(&mut buf, &sample(0, None));
    assert!(decode_record(&buf, true).is_ok());
    let last = buf.len() - 1;
    buf[last] ^= 0x40;
    assert!(decode_record(&buf, false).is_ok());
    assert!(matches!(
        decode_record(&buf, true),
        Err(Damage::Checksum { what: "record", .. })
    ));
}

#[test]
fn record_lengths_that_lie_are_rejected() {
    let mut buf = Vec::new();
    encode_record(&mut buf, &sample(0, None));
    // Claim a payload longer than the record.
    LE::write_u32(&mut buf[48..52], u32::MAX);
    assert!(decode_record(&buf, false).is_err());
}

#[test]
fn locations_split_back() {
    let loc = location(77, 123_456);
    assert_eq!(split_location(loc), (77, 123_456));
}
