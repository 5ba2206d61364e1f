//! A model test: random sequences of appends (expected versions, ids, duplicates), stream and
//! log reads, close/reopen and torn tails, checked against a plain in-memory model
//! (`tests/common/model.rs`).

mod common;

use common::model::{run, Expect, Op};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        4 => Just(Expect::Any),
        1 => Just(Expect::NoStream),
        1 => Just(Expect::StreamExists),
        2 => (-1i8..=1).prop_map(Expect::Near),
    ];
    prop_oneof![
        8 => (0u8..3, 1u8..4, prop::option::of(0u8..6), expect).prop_map(|(stream, count, id_base, expected)| Op::Append { stream, count, id_base, expected }),
        2 => (0u8..4, 0u8..40).prop_map(|(stream, from)| Op::ReadStream { stream, from }),
        1 => (0u8..4, prop::option::of(0u8..40)).prop_map(|(stream, from)| Op::ReadStreamBackward { stream, from }),
        1 => (0u16..200).prop_map(|from| Op::ReadAll { from }),
        1 => Just(Op::Reopen),
        1 => (1u8..200).prop_map(|bytes| Op::TornTail { bytes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_store_behaves_like_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
