//! The engines under comparison.

pub mod annals_engine;
pub mod fjall_engine;
pub mod okaywal_engine;
pub mod redb_engine;
pub mod sqlite;

use crate::engine::Peer;

/// annals first, then the peers of BENCHMARKS.md.
pub fn all() -> Vec<Peer> {
    vec![
        annals_engine::PEER,
        sqlite::PEER,
        redb_engine::PEER,
        fjall_engine::PEER,
        okaywal_engine::PEER,
    ]
}
