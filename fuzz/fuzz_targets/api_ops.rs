//! Random sequences of API operations (appends with expected versions and ids, reads,
//! close/reopen, torn tails) checked against a simple in-memory model: the model in
//! `tests/common/model.rs`, driven by bytes instead of proptest.
#![no_main]

#[path = "../../tests/common/model.rs"]
mod model;

use libfuzzer_sys::fuzz_target;
use model::{Expect, Op};

/// Three bytes an operation.
fn decode(data: &[u8]) -> Vec<Op> {
    data.chunks_exact(3)
        .take(80)
        .map(|b| {
            let (a, c) = (b[1], b[2]);
            match b[0] % 14 {
                0..=7 => Op::Append {
                    stream: a % 3,
                    count: 1 + (a >> 2) % 3,
                    id_base: (c & 1 == 1).then_some((c >> 1) % 6),
                    expected: match (c >> 4) % 7 {
                        0 | 1 => Expect::Any,
                        2 => Expect::NoStream,
                        3 => Expect::StreamExists,
                        n => Expect::Near(n as i8 - 5),
                    },
                },
                8 | 9 => Op::ReadStream { stream: a % 3, from: c % 40 },
                10 => Op::ReadStreamBackward { stream: a % 3, from: (c < 200).then_some(c % 40) },
                11 => Op::ReadAll { from: u16::from(c) },
                12 => Op::Reopen,
                _ => Op::TornTail { bytes: c.max(1) },
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    model::run(decode(data));
});
