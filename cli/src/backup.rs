//! `annals backup DIR DEST`: an online, verified copy.

use std::path::Path;
use std::process::ExitCode;

use annals::Store;

use crate::{progress, CliResult};

pub fn backup(dir: &Path, dest: &Path) -> CliResult<ExitCode> {
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let bar = progress::bar(store.next_position(), "events");
    let report = store
        .backup_with_progress(dest, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    println!(
        "backed up {} events ({} segments, {} bytes, {} side files, index snapshot {}, {} \
         checkpoints) to {} in {:.2?}",
        report.position,
        report.segments,
        report.bytes,
        report.side_files,
        if report.index_snapshot {
            "copied"
        } else {
            "not copied"
        },
        report.checkpoints,
        report.dest.display(),
        report.duration
    );
    Ok(ExitCode::SUCCESS)
}
