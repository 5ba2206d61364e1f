//! Following the log: [`Subscription`]s that catch up and then wait for new commits, the
//! [`PartitionedSubscription`] that hands them to several workers, and the durable consumer
//! checkpoints they resume from.
//!
//! May import `format`, `fs`, `log`, `index` and `read`.

pub(crate) mod checkpoint;
mod partitioned;
#[cfg(feature = "async")]
mod stream;
mod subscription;

pub use partitioned::PartitionedSubscription;
pub use subscription::Subscription;
