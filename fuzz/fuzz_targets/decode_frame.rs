//! Frame, record and segment-header decoding from arbitrary bytes: `Ok` or `Err`, never a
//! panic, never an allocation sized by an unchecked length field.
#![no_main]

use annals::format::{decode_record, read_frame, SegmentHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = SegmentHeader::decode(data);
    let _ = decode_record(data, true);
    let mut offset = 0;
    while let Ok(frame) = read_frame(&data[offset..]) {
        for record in frame.records() {
            if let Ok(view) = record {
                // Every slice of a decoded record lies inside the frame.
                assert!(view.payload.len() <= frame.bytes.len());
            }
        }
        offset += frame.bytes.len();
    }
});
