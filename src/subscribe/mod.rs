//! Following the log: [`Subscription`]s that catch up and then wait for new commits, and the
//! durable consumer checkpoints they resume from.
//!
//! May import `format`, `fs`, `log`, `index` and `read`.

pub(crate) mod checkpoint;
mod subscription;

pub use subscription::Subscription;
