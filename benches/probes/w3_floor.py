#!/usr/bin/env python3
"""W3's disk floor: what one 293 KB write + fdatasync costs on this machine, by where it lands.

BENCHMARKS.md's raw baseline overwrites a preallocated, zero-filled, cached file. An
append-only log writes each byte into space it never wrote before; this probe measures every
way of doing that (buffered into a sparse or fallocated file, O_DIRECT, O_DIRECT with a thread
zero-filling ahead of the writer) next to the baseline, in one run, no event encoding at all.

    sudo python3 benches/probes/w3_floor.py [DIR]      # DIR on the disk under test; ~1 minute

Each case: 600 appends of 293 KB (W3's frame: 1,000 events of 200 bytes); mean, p50 and p90.
The page cache is dropped before the uncached cases (needs root; skipped otherwise).
"""
import mmap
import os
import sys
import threading
import time

DIR = sys.argv[1] if len(sys.argv) > 1 else "target/w3-floor"
SIZE = 293_032  # W3's frame in the append bench
ALIGNED = (SIZE + 4095) // 4096 * 4096
COUNT = 600
FILE = 512 << 20
CHUNK = 1 << 20


def aligned(n, byte):
    buf = mmap.mmap(-1, n)  # page-aligned, as O_DIRECT needs
    buf.write(byte * n)
    return buf


DATA, ZEROS = aligned(ALIGNED, b"\x5a"), aligned(CHUNK, b"\0")


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
        return True
    except OSError:
        return False


def case(name, prepare, direct=False, fill_ahead=False, overwrite=False, drop=False):
    path = os.path.join(DIR, "probe")
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    prepare(fd)
    os.fsync(fd)
    os.close(fd)
    if drop and not drop_caches():
        print(f"{name:44s} skipped (dropping the page cache needs root)")
        return
    fd = os.open(path, os.O_RDWR | (os.O_DIRECT if direct else 0))
    buf, step = (DATA, ALIGNED) if direct else (DATA[:SIZE], SIZE)
    state = {"written": 0, "filled": 0, "stop": False}

    def filler():  # keeps 8-16 MiB of written zeros ahead of the appender
        while not state["stop"] and state["filled"] < FILE:
            if state["filled"] - state["written"] > 16 << 20:
                time.sleep(0.0002)
                continue
            os.pwrite(fd, ZEROS, state["filled"])
            os.fdatasync(fd)
            state["filled"] += CHUNK

    thread = None
    if fill_ahead:
        while state["filled"] < 8 << 20:
            os.pwrite(fd, ZEROS, state["filled"])
            state["filled"] += CHUNK
        os.fdatasync(fd)
        thread = threading.Thread(target=filler)
        thread.start()
    latencies, offset = [], 0
    for _ in range(COUNT):
        if overwrite and offset + step > 256 << 20:
            offset = 0
        started = time.perf_counter()
        os.pwrite(fd, buf, offset)
        os.fdatasync(fd)
        latencies.append(time.perf_counter() - started)
        offset += step
        state["written"] = offset
    state["stop"] = True
    if thread:
        thread.join()
    os.close(fd)
    os.unlink(path)
    latencies.sort()
    mean = sum(latencies) / COUNT
    print(
        f"{name:44s} mean {mean * 1e6:5.0f} us  p50 {latencies[COUNT // 2] * 1e6:5.0f} us"
        f"  p90 {latencies[COUNT * 9 // 10] * 1e6:5.0f} us"
    )


def sparse(fd):
    os.ftruncate(fd, FILE)


def fallocated(fd):
    os.posix_fallocate(fd, 0, FILE)


def zero_filled(fd):
    for i in range(256 << 20 >> 20):
        os.pwrite(fd, ZEROS, i * CHUNK)
    os.ftruncate(fd, FILE)


if __name__ == "__main__":
    os.makedirs(DIR, exist_ok=True)
    for _ in range(2):
        case("baseline: overwrite zero-filled, cached", zero_filled, overwrite=True)
        case("append, buffered, sparse (annals today)", sparse)
        case("append, buffered, fallocated", fallocated)
        case("append, buffered, zero-filled, uncached", zero_filled, drop=True)
        case("append, O_DIRECT, sparse", sparse, direct=True)
        case("append, O_DIRECT, zero-filled", zero_filled, direct=True)
        case("append, O_DIRECT, zero-filling thread ahead", sparse, direct=True, fill_ahead=True)
        case("append, buffered, zero-filling thread ahead", sparse, fill_ahead=True)
