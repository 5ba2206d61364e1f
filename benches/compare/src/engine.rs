//! What every engine under comparison offers the workloads.

/// One event of BENCHMARKS.md: type "QuestionAnswered", 200 random bytes, an id.
#[derive(Debug, Clone)]
pub struct Ev {
    pub stream: String,
    /// Version in its stream (used by bulk loads; appends compute their own).
    pub version: u64,
    pub id: u128,
    pub payload: Vec<u8>,
}

pub const EVENT_TYPE: &str = "QuestionAnswered";

/// The check an append makes against its stream's last version.
#[derive(Debug, Clone, Copy)]
pub enum Expected {
    Any,
    /// The stream's last version must be this (`None`: the stream must not exist).
    Exact(Option<u64>),
}

pub type Res<T> = Result<T, String>;

/// An engine holding an event log, opened on a directory.
pub trait Engine: Send + Sync {
    /// Durably appends `events` to `stream` (one commit), after checking `expected`.
    fn append(&self, stream: &str, expected: Expected, events: &[Ev]) -> Res<()>;
    /// Loads events of many streams (versions given) to build a data set; durable at return.
    fn load(&self, events: &[Ev]) -> Res<()>;
    /// Reads every event in position order; returns how many.
    fn replay(&self) -> Res<u64>;
    /// Reads one whole stream in version order; returns how many events. `None` if the engine
    /// has no way to find a stream's events.
    fn read_stream(&self, stream: &str) -> Option<Res<usize>>;
}

/// How to open an engine, and what to write in the report about it.
pub struct Peer {
    pub name: &'static str,
    /// Schema and durability settings, printed with the results.
    pub settings: &'static str,
    /// Opens the engine; with `bulk`, for `Engine::load` (engines may relax per-append
    /// durability there, as long as the load is durable when it returns).
    pub open: fn(&std::path::Path, bool) -> Res<Box<dyn Engine>>,
}

/// The value bytes peers store for an event: version, id, type, stream, payload.
pub fn encode(ev: &Ev, version: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(48 + ev.stream.len() + ev.payload.len());
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&ev.id.to_le_bytes());
    v.push(EVENT_TYPE.len() as u8);
    v.extend_from_slice(EVENT_TYPE.as_bytes());
    v.push(ev.stream.len() as u8);
    v.extend_from_slice(ev.stream.as_bytes());
    v.extend_from_slice(&ev.payload);
    v
}

/// Checks the stream's last version against `expected`.
pub fn check(stream: &str, expected: Expected, last: Option<u64>) -> Res<()> {
    match expected {
        Expected::Exact(v) if v != last => Err(format!(
            "wrong expected version for {stream}: expected {v:?}, found {last:?}"
        )),
        _ => Ok(()),
    }
}

/// Maps any displayable error to the harness's error type.
pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}
