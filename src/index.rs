//! What the writer knows of each stream: its last version and the location of its last event
//! (the head of the stream's back-pointer chain).

use std::collections::HashMap;

/// The head of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHead {
    /// Version of the stream's last event.
    pub last_version: u64,
    /// Location (see [`crate::format::location`]) of the stream's last event.
    pub last_location: u64,
}

/// The head of every stream in the store.
#[derive(Debug, Default)]
pub struct StreamIndex {
    heads: HashMap<Box<str>, StreamHead>,
}

impl StreamIndex {
    /// The head of `stream`, `None` if it has no events.
    pub fn head(&self, stream: &str) -> Option<StreamHead> {
        self.heads.get(stream).copied()
    }

    /// Records that `stream`'s last event is now `head`.
    pub fn set_head(&mut self, stream: &str, head: StreamHead) {
        match self.heads.get_mut(stream) {
            Some(h) => *h = head,
            None => {
                self.heads.insert(stream.into(), head);
            }
        }
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.heads.len()
    }
}
