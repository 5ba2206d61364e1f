//! W1–W5 of BENCHMARKS.md, run against one engine at a time.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::data::{event, Interleaved, Rng};
use crate::engine::{err, Engine, Expected, Peer, Res};

/// How big each workload is.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub w1_appends: u64,
    pub w2_per_thread: u64,
    pub w3_batches: u64,
    pub events: u64,
    pub stream_reads: u64,
}

pub const THREADS: u64 = 64;
pub const BATCH: u64 = 1000;

/// What one engine did on one workload.
#[derive(Debug, Clone)]
pub struct Row {
    pub workload: &'static str,
    pub engine: &'static str,
    /// Events written or read.
    pub events: u64,
    pub elapsed: Duration,
    /// One per operation (append or stream read), sorted.
    pub latencies: Vec<Duration>,
    /// Why the engine could not run the workload.
    pub unsupported: Option<&'static str>,
}

impl Row {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile(&self, p: usize) -> Option<Duration> {
        let n = self.latencies.len();
        (n > 0).then(|| self.latencies[(n * p / 100).min(n - 1)])
    }

    fn new(
        workload: &'static str,
        engine: &'static str,
        events: u64,
        elapsed: Duration,
        mut latencies: Vec<Duration>,
    ) -> Row {
        latencies.sort_unstable();
        Row {
            workload,
            engine,
            events,
            elapsed,
            latencies,
            unsupported: None,
        }
    }

    pub fn unsupported(workload: &'static str, engine: &'static str, why: &'static str) -> Row {
        Row {
            workload,
            engine,
            events: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
            unsupported: Some(why),
        }
    }
}

fn open(peer: &Peer, dir: &Path, bulk: bool) -> Res<Box<dyn Engine>> {
    (peer.open)(dir, bulk)
}

/// W1: one thread, one event per durable append.
pub fn w1(peer: &Peer, dir: &Path, sizes: Sizes) -> Res<Row> {
    let engine = open(peer, dir, false)?;
    let mut rng = Rng::new(1);
    let mut latencies = Vec::new();
    let started = Instant::now();
    for n in 0..sizes.w1_appends {
        let ev = event(&mut rng, "student-1", u128::from(n) + 1);
        let t = Instant::now();
        engine.append("student-1", Expected::Any, &[ev])?;
        latencies.push(t.elapsed());
    }
    Ok(Row::new(
        "W1 append-1x1",
        peer.name,
        sizes.w1_appends,
        started.elapsed(),
        latencies,
    ))
}

/// W2: 64 threads, one event per durable append, each to its own stream with an exact
/// expected version.
pub fn w2(peer: &Peer, dir: &Path, sizes: Sizes) -> Res<Row> {
    let engine = open(peer, dir, false)?;
    let latencies = Mutex::new(Vec::new());
    let failure = Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (engine, latencies, failure) = (&engine, &latencies, &failure);
            s.spawn(move || {
                let mut rng = Rng::new(t + 1);
                let stream = format!("student-{t}");
                let mut mine = Vec::new();
                for v in 0..sizes.w2_per_thread {
                    let ev = event(&mut rng, &stream, u128::from(t) << 64 | u128::from(v));
                    let expected = Expected::Exact(v.checked_sub(1));
                    let t0 = Instant::now();
                    if let Err(e) = engine.append(&stream, expected, &[ev]) {
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        return;
                    }
                    mine.push(t0.elapsed());
                }
                latencies
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(mine);
            });
        }
    });
    let elapsed = started.elapsed();
    if let Some(e) = failure.into_inner().map_err(err)? {
        return Err(e);
    }
    let latencies = latencies.into_inner().map_err(err)?;
    Ok(Row::new(
        "W2 append-64x1",
        peer.name,
        THREADS * sizes.w2_per_thread,
        elapsed,
        latencies,
    ))
}

/// W3: one thread, 1,000 events per durable append.
pub fn w3(peer: &Peer, dir: &Path, sizes: Sizes) -> Res<Row> {
    let engine = open(peer, dir, false)?;
    let mut rng = Rng::new(3);
    let mut latencies = Vec::new();
    let mut elapsed = Duration::ZERO;
    for b in 0..sizes.w3_batches {
        let events: Vec<_> = (0..BATCH)
            .map(|i| event(&mut rng, "student-1", u128::from(b * BATCH + i) + 1))
            .collect();
        let t = Instant::now();
        engine.append("student-1", Expected::Any, &events)?;
        let took = t.elapsed();
        latencies.push(took);
        elapsed += took;
    }
    Ok(Row::new(
        "W3 append-batch",
        peer.name,
        sizes.w3_batches * BATCH,
        elapsed,
        latencies,
    ))
}

/// W4 and W5 on one data set: `events` events interleaved over `events / 100` streams,
/// loaded, the engine reopened; then a replay of everything (W4) and reads of whole random
/// streams (W5).
pub fn w4_w5(peer: &Peer, dir: &Path, sizes: Sizes) -> Res<(Row, Row)> {
    let streams = (sizes.events / 100).max(1);
    {
        let engine = open(peer, dir, true)?;
        let mut data = Interleaved::new(streams);
        let mut left = sizes.events;
        while left > 0 {
            let n = left.min(BATCH);
            engine.load(&data.chunk(n))?;
            left -= n;
        }
    }
    let engine = open(peer, dir, false)?;
    let started = Instant::now();
    let replayed = engine.replay()?;
    let elapsed = started.elapsed();
    if replayed != sizes.events {
        return Err(format!(
            "{} replayed {replayed} events of {}",
            peer.name, sizes.events
        ));
    }
    let w4 = Row::new("W4 replay", peer.name, replayed, elapsed, Vec::new());

    let mut rng = Rng::new(5);
    let mut latencies = Vec::new();
    let mut read = 0;
    let started = Instant::now();
    for _ in 0..sizes.stream_reads {
        let stream = format!("student-{}", rng.below(streams));
        let t = Instant::now();
        match engine.read_stream(&stream) {
            None => {
                return Ok((
                    w4,
                    Row::unsupported(
                        "W5 stream-read",
                        peer.name,
                        "no index: cannot find a stream's events",
                    ),
                ))
            }
            Some(n) => read += n? as u64,
        }
        latencies.push(t.elapsed());
    }
    let w5 = Row::new(
        "W5 stream-read",
        peer.name,
        read,
        started.elapsed(),
        latencies,
    );
    Ok((w4, w5))
}
