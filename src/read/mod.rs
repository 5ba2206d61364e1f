//! Reading the committed log: every event in position order ([`ReadAll`]) and one stream
//! through its index, forward and backward ([`ReadStream`], [`ReadStreamBackward`]); a replay
//! fed to several threads by key ([`replay_partitioned`]).
//!
//! May import `format`, `fs`, `log` and `index`.

mod by_index;
mod partitioned;
mod read_all;
mod stream;
mod time;
mod view;

pub use by_index::ReadIndexed;
pub(crate) use partitioned::replay_partitioned;
pub use read_all::ReadAll;
pub use stream::{ReadStream, ReadStreamBackward};
pub(crate) use time::position_at;
pub(crate) use view::LogView;
