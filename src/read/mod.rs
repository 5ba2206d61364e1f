//! Reading the committed log: every event in position order ([`ReadAll`]) and one stream
//! through its index, forward and backward ([`ReadStream`], [`ReadStreamBackward`]).
//!
//! May import `format`, `fs`, `log` and `index`.

mod read_all;
mod stream;
mod view;

pub use read_all::ReadAll;
pub use stream::{ReadStream, ReadStreamBackward};
pub(crate) use view::LogView;
