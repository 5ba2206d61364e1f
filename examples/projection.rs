//! Rebuilds a read model, "active students per school", from a durable checkpoint: stop it
//! at any moment, start it again, and it continues where its checkpoint says (at least once:
//! events after the last checkpoint are handled again, which this model shrugs off because
//! applying an event twice leaves it as it was).
//!
//! ```text
//! cargo run --release --example projection -- [DIR] [--seed N] [--stop-after N]
//! ```
//!
//! `DIR` defaults to `target/example-stores/projection`. `--seed N` appends N enrolment events
//! first (done automatically when the store is empty); `--stop-after N` stops after handling
//! N events, to show a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use annals::{EventData, ExpectedVersion, Store};

const CHECKPOINT: &str = "active-students";
const SCHOOLS: u64 = 12;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Option<u64> {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1)?.parse().ok()
    };
    let dir = args.first().filter(|a| !a.starts_with("--")).map_or_else(
        || PathBuf::from("target/example-stores/projection"),
        PathBuf::from,
    );
    let store = Store::open(&dir)?;
    let seed = flag("--seed").or((store.next_position() == 0).then_some(20_000));
    if let Some(n) = seed {
        seed_events(&store, n)?;
    }

    // The read model is saved next to the checkpoint; the checkpoint is saved after it.
    let model_path = dir.join("active-students.txt");
    let mut active = load_model(&model_path)?;
    let from = store.checkpoint(CHECKPOINT)?.unwrap_or(0);
    println!(
        "resuming at position {from} of {} with {} active students",
        store.next_position(),
        active.len()
    );

    let stop_after = flag("--stop-after").unwrap_or(u64::MAX);
    let mut sub = store
        .subscribe_all(from)
        .stream_prefix("student-")
        .event_types(["StudentEnrolled", "StudentLeft"]);
    let mut handled = 0;
    while handled < stop_after {
        let Some(event) = sub.try_next()? else { break };
        let student = event.stream().to_string();
        match event.event_type() {
            "StudentEnrolled" => {
                active.insert(
                    student,
                    String::from_utf8_lossy(event.payload()).into_owned(),
                );
            }
            _ => {
                active.remove(&student);
            }
        }
        handled += 1;
        if handled % 5_000 == 0 {
            save(&store, &model_path, &active, sub.position())?;
        }
    }
    save(&store, &model_path, &active, sub.position())?;
    println!(
        "handled {handled} events; checkpoint now at {}",
        sub.position()
    );

    let mut per_school: BTreeMap<&str, usize> = BTreeMap::new();
    for school in active.values() {
        *per_school.entry(school.as_str()).or_default() += 1;
    }
    for (school, count) in per_school {
        println!("{school}: {count} active students");
    }
    Ok(())
}

/// Appends `n` events: students enrol at a school, and some leave again.
fn seed_events(store: &Store, n: u64) -> annals::Result<()> {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..n {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let student = format!("student-{}", rng % 5_000);
        let school = format!("school-{:02}", (rng >> 20) % SCHOOLS);
        let kind = if (rng >> 40).is_multiple_of(4) {
            "StudentLeft"
        } else {
            "StudentEnrolled"
        };
        let event = EventData::new(kind, school.into_bytes());
        store.append(&student, ExpectedVersion::Any, [event])?;
    }
    println!("seeded {n} events");
    Ok(())
}

/// The model as saved: one `student school` line per active student.
fn load_model(path: &Path) -> std::io::Result<HashMap<String, String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(student, school)| (student.to_string(), school.to_string()))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(e),
    }
}

/// Saves the model (atomically: temporary file, rename), then the checkpoint.
fn save(
    store: &Store,
    path: &Path,
    active: &HashMap<String, String>,
    position: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let text: String = active
        .iter()
        .map(|(st, sc)| format!("{st} {sc}\n"))
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    store.save_checkpoint(CHECKPOINT, position)?;
    Ok(())
}
