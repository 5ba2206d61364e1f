//! The raw-disk baselines: `write` + `fdatasync` of the same sizes into a preallocated,
//! zero-filled file, and reading files sequentially.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use annals::format::{peek_frame_header, SEGMENT_HEADER_LEN};

use crate::engine::{err, Res};

const FILE_BYTES: u64 = 256 << 20;

/// `count` writes of `size` bytes, each followed by `fdatasync`; their latencies.
pub fn write_sync(dir: &Path, size: usize, count: u64) -> Res<Vec<Duration>> {
    let path = dir.join("raw-write");
    let file = File::create(&path).map_err(err)?;
    let zeros = vec![0u8; 1 << 20];
    for i in 0..FILE_BYTES >> 20 {
        file.write_all_at(&zeros, i << 20).map_err(err)?;
    }
    file.sync_all().map_err(err)?;
    let buf = vec![0x5Au8; size];
    let mut offset = 0u64;
    let mut latencies = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if offset + size as u64 > FILE_BYTES {
            offset = 0;
        }
        let t = Instant::now();
        file.write_all_at(&buf, offset).map_err(err)?;
        file.sync_data().map_err(err)?;
        latencies.push(t.elapsed());
        offset += size as u64;
    }
    std::fs::remove_file(&path).map_err(err)?;
    Ok(latencies)
}

/// Reads the data bytes of annals' segment files in `dir` (each file up to the end of its
/// last frame; the rest is preallocated zeros) sequentially into memory; returns the bytes
/// read and the time it took. The files are read once before timing, so the page cache is warm.
pub fn read_segments(dir: &Path) -> Res<(u64, Duration)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let mut ends = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).map_err(err)?;
        let mut end = SEGMENT_HEADER_LEN;
        while let Some(h) = bytes.get(end..).and_then(peek_frame_header) {
            end += h.len as usize;
        }
        ends.push(end);
    }
    let mut buf = vec![0u8; 16 << 20];
    let started = Instant::now();
    let mut total = 0u64;
    for (path, end) in files.iter().zip(ends) {
        let mut f = File::open(path).map_err(err)?.take(end as u64);
        loop {
            let n = f.read(&mut buf).map_err(err)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    Ok((total, started.elapsed()))
}
