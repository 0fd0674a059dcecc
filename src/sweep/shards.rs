//! Sweeps split into shards (`sweep … --shard I/N` in several processes or Slurm array tasks,
//! then `sweep … --merge`). Each sweep computes its rows from the config and the row's index
//! alone, so a shard computes rows I, I + N, … and records each under `OUT/shards/`, and the
//! merge writes exactly the outputs of one whole run from the records.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::SweepOutcome;
use crate::config::Part;
use crate::error::{Error, Result};
use crate::report;

/// The number of the `count` rows that `part` computes (all at a merge, which reads them).
pub(crate) fn rows_in(part: Part, count: usize) -> usize {
    match part {
        Part::Merge => count,
        _ => (0..count).filter(|&k| part.computes(k)).count(),
    }
}

/// Rows `0..count` of a sweep named `label`, row k being `compute(k)`: all of them
/// (`Part::All`); those of a shard (`Part::Shard(i, n)`: k ≡ i mod n), each recorded as
/// `shards/<label>-<k>.json`; or, at `Part::Merge`, every one read back from its record (an
/// error lists the missing ones). In order of k; `bar` advances once per row.
pub(crate) fn rows<T: Serialize + DeserializeOwned>(
    run_dir: &Path,
    part: Part,
    label: &str,
    count: usize,
    bar: &indicatif::ProgressBar,
    mut compute: impl FnMut(usize) -> Result<T>,
) -> Result<Vec<T>> {
    if part == Part::Merge {
        let rows = read_rows(run_dir, label, count)?;
        bar.inc(count as u64);
        return Ok(rows);
    }
    let mut rows = Vec::new();
    for k in (0..count).filter(|&k| part.computes(k)) {
        let row = compute(k)?;
        if let Part::Shard(..) = part {
            record(run_dir, &row_file(label, k), &row)?;
        }
        rows.push(row);
        bar.inc(1);
    }
    Ok(rows)
}

/// Every row `0..count` of `label` recorded by the shards, in order; an error lists the missing.
pub(crate) fn read_rows<T: DeserializeOwned>(
    run_dir: &Path,
    label: &str,
    count: usize,
) -> Result<Vec<T>> {
    let read: Vec<Option<T>> = (0..count)
        .map(|k| read(run_dir, &row_file(label, k)))
        .collect();
    let missing: Vec<String> = read
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_none())
        .map(|(k, _)| k.to_string())
        .collect();
    if missing.is_empty() {
        Ok(read.into_iter().flatten().collect())
    } else {
        Err(missing_records(
            run_dir,
            &format!("{label} {}", missing.join(", ")),
        ))
    }
}

fn row_file(label: &str, k: usize) -> String {
    format!("{label}-{k}.json")
}

/// Writes `value` as `shards/<name>` under `run_dir`.
pub(crate) fn record<T: Serialize>(run_dir: &Path, name: &str, value: &T) -> Result<()> {
    report::create_run_dir(&shards(run_dir))?;
    report::write_json(&shards(run_dir).join(name), value)
}

/// `shards/<name>` under `run_dir`, read back; `None` when absent or unreadable.
pub(crate) fn read<T: DeserializeOwned>(run_dir: &Path, name: &str) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(shards(run_dir).join(name)).ok()?).ok()
}

/// The merge's refusal while records are `missing`.
pub(crate) fn missing_records(run_dir: &Path, missing: &str) -> Error {
    Error::invalid(
        "--merge",
        format!(
            "every shard's records under {}; missing: {missing}",
            shards(run_dir).display()
        ),
    )
}

/// What a shard reports: how many of the sweep's rows it recorded, and where.
pub(crate) fn shard_outcome(
    run_dir: &Path,
    sweep: &str,
    recorded: usize,
    total: usize,
    violations: usize,
) -> SweepOutcome {
    SweepOutcome {
        run_dir: run_dir.to_owned(),
        checks: recorded,
        violations,
        summary: format!(
            "{sweep} shard: {recorded} of {total} rows recorded under {}; `--merge` when every shard is done",
            shards(run_dir).display()
        ),
    }
}

fn shards(run_dir: &Path) -> PathBuf {
    run_dir.join("shards")
}
