//! An experiment grid spread over processes: the cells of [`super::Grid`] run as separate
//! `experiment CONFIG --cell ID` processes — `--jobs N` at a time on this machine (one GPU each
//! where there are GPUs), or as a Slurm job array (`--slurm`) — and `--merge` writes the outputs
//! a sequential run writes, from the cells' recorded outcomes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{Grid, PortExperiment};
use crate::error::{Error, Result};
use crate::report;

/// `[slurm]`: the resources of each array task (one cell) in the script `--slurm` writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Wall-time limit per cell, Slurm's `HH:MM:SS` or `D-HH:MM:SS`.
    pub time: String,
    pub cpus_per_task: usize,
    /// GPUs per cell (0 for CPU-only cells).
    pub gpus_per_task: usize,
    /// Memory per cell, Slurm's spelling (`16G`).
    pub mem: String,
    /// At most this many cells at once (0: no limit), Slurm's `%` on the array.
    pub max_running: usize,
    /// Further `#SBATCH` lines, written as given (e.g. `--qos=high`).
    pub extra: Vec<String>,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        SlurmSettings {
            partition: None,
            account: None,
            time: "24:00:00".into(),
            cpus_per_task: 4,
            gpus_per_task: 1,
            mem: "16G".into(),
            max_running: 0,
            extra: Vec::new(),
        }
    }
}

impl SlurmSettings {
    pub fn validate(&self) -> Result<()> {
        crate::config::at_least("slurm.cpus_per_task", self.cpus_per_task, 1)?;
        let clock = |t: &str| {
            let (days, rest) = t.split_once('-').unwrap_or(("0", t));
            days.parse::<u32>().is_ok()
                && rest.split(':').count() <= 3
                && rest
                    .split(':')
                    .all(|p| !p.is_empty() && p.parse::<u32>().is_ok())
        };
        if !clock(&self.time) {
            return Err(Error::invalid(
                "slurm.time",
                format!("Slurm's HH:MM:SS or D-HH:MM:SS, got {:?}", self.time),
            ));
        }
        let plain = |v: &str| !v.is_empty() && !v.contains(['\n', '\'', '"', '$', '`']);
        if !plain(&self.mem)
            || self.extra.iter().any(|e| !plain(e))
            || [&self.partition, &self.account]
                .into_iter()
                .flatten()
                .any(|v| !plain(v))
        {
            return Err(Error::invalid(
                "slurm",
                "values without newlines, quotes, `$` or backticks",
            ));
        }
        Ok(())
    }
}

/// Absolute form of `path` (relative to the current folder), so scripts run from anywhere.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::file(path, format!("no absolute path: {e}")))
}

/// Writes `dir/slurm/cells.sbatch` (a job array, one task per cell: `--cell
/// $SLURM_ARRAY_TASK_ID`), `dir/slurm/merge.sbatch` and `dir/slurm/submit.sh`, which submits the
/// array and the merge to run after every cell succeeded. Returns the folder.
pub fn write_slurm(
    config_file: &Path,
    config: &PortExperiment,
    dir: &Path,
    grid: &Grid,
) -> Result<PathBuf> {
    let slurm = config.slurm.clone().unwrap_or_default();
    slurm.validate()?;
    let (exe, config_file, dir) = (
        std::env::current_exe()
            .map_err(|e| Error::invalid("experiment", format!("this executable's path: {e}")))?,
        absolute(config_file)?,
        absolute(dir)?,
    );
    // The scripts quote these paths in single quotes.
    for path in [&exe, &config_file, &dir] {
        if path.to_string_lossy().contains('\'') {
            return Err(Error::file(
                path,
                "a path without single quotes for the Slurm scripts",
            ));
        }
    }
    let folder = dir.join("slurm");
    let cells = grid.cell_ids().len();
    let mut header = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={}-cells", config.name),
        format!(
            "#SBATCH --array=0-{}{}",
            cells - 1,
            if slurm.max_running > 0 {
                format!("%{}", slurm.max_running)
            } else {
                String::new()
            }
        ),
        "#SBATCH --ntasks=1".into(),
        format!("#SBATCH --cpus-per-task={}", slurm.cpus_per_task),
        format!("#SBATCH --mem={}", slurm.mem),
        format!("#SBATCH --time={}", slurm.time),
        format!("#SBATCH --output={}/cell-%a.out", folder.display()),
    ];
    if slurm.gpus_per_task > 0 {
        header.push(format!("#SBATCH --gpus-per-task={}", slurm.gpus_per_task));
    }
    let mut common = Vec::new();
    if let Some(p) = &slurm.partition {
        common.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(a) = &slurm.account {
        common.push(format!("#SBATCH --account={a}"));
    }
    common.extend(slurm.extra.iter().map(|e| format!("#SBATCH {e}")));
    header.extend(common.iter().cloned());
    let command = |flags: &str| {
        format!(
            "set -euo pipefail\nexec '{}' experiment '{}' --out '{}' {flags}\n",
            exe.display(),
            config_file.display(),
            dir.display()
        )
    };
    let cells_script = format!(
        "{}\n# One cell of the grid per array task; `experiment --list` names them by position.\n{}",
        header.join("\n"),
        command("--cell \"$SLURM_ARRAY_TASK_ID\" --quiet")
    );
    let mut merge_header = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={}-merge", config.name),
        "#SBATCH --ntasks=1".into(),
        "#SBATCH --cpus-per-task=1".into(),
        "#SBATCH --mem=4G".into(),
        "#SBATCH --time=00:30:00".into(),
        format!("#SBATCH --output={}/merge.out", folder.display()),
    ];
    merge_header.extend(common);
    let merge_script = format!("{}\n{}", merge_header.join("\n"), command("--merge"));
    let submit = format!(
        "#!/bin/bash\n# Submits the {cells} cells of {} as a job array, then the merge once all of them succeeded.\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\narray=$(sbatch --parsable cells.sbatch)\nsbatch --dependency=afterok:\"${{array%%;*}}\" merge.sbatch\n",
        config.name
    );
    for (name, text) in [
        ("cells.sbatch", &cells_script),
        ("merge.sbatch", &merge_script),
        ("submit.sh", &submit),
    ] {
        let path = folder.join(name);
        report::atomic_write(&path, text.as_bytes())?;
        set_executable(&path)?;
    }
    Ok(folder)
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::file(path, format!("cannot make executable: {e}")))
}

/// Runs every unfinished cell as its own `experiment CONFIG --cell ID` process, `jobs` at a
/// time; with `gpus` > 0 each process sees one GPU (`CUDA_VISIBLE_DEVICES`, round robin over
/// the job slots). Each cell's stderr goes to `dir/logs/<id>.err`; errors name every cell that
/// failed with the last line it printed.
pub fn run_jobs(
    config_file: &Path,
    config: &PortExperiment,
    dir: &Path,
    grid: &Grid,
    jobs: usize,
    gpus: usize,
    show: bool,
) -> Result<()> {
    crate::config::at_least("--jobs", jobs, 1)?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::invalid("experiment", format!("this executable's path: {e}")))?;
    let ids = grid.cell_ids();
    let pending: Vec<usize> = (0..ids.len())
        .filter(|&i| grid.finished(config, dir, i).is_none())
        .collect();
    let logs = dir.join("logs");
    report::create_run_dir(&logs)?;
    let bar = report::progress(ids.len(), "cells", show);
    bar.inc((ids.len() - pending.len()) as u64);
    let mut running: Vec<(usize, usize, Child)> = Vec::new(); // (slot, cell, process)
    let mut queue = pending.into_iter();
    let mut failures = Vec::new();
    loop {
        while running.len() < jobs {
            let Some(cell) = queue.next() else { break };
            let slot = (0..jobs)
                .find(|s| running.iter().all(|(used, _, _)| used != s))
                .expect("a free slot while fewer than `jobs` run");
            // Each cell's messages go to a file (a pipe read only at the end could fill up).
            let log = logs.join(format!("{}.err", ids[cell]));
            let stderr = std::fs::File::create(&log)
                .map_err(|e| Error::file(&log, format!("cannot create: {e}")))?;
            let mut command = Command::new(&exe);
            command
                .arg("experiment")
                .arg(config_file)
                .arg("--out")
                .arg(dir)
                .args(["--cell", &ids[cell], "--quiet"])
                .stdout(Stdio::null())
                .stderr(stderr);
            if gpus > 0 {
                command.env("CUDA_VISIBLE_DEVICES", (slot % gpus).to_string());
            }
            let child = command.spawn().map_err(|e| {
                Error::invalid("--jobs", format!("cannot start a cell process: {e}"))
            })?;
            running.push((slot, cell, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (slot, cell, mut child) in running {
            match child.try_wait() {
                Ok(None) => still.push((slot, cell, child)),
                Ok(Some(status)) => {
                    bar.inc(1);
                    if !status.success() {
                        let log = logs.join(format!("{}.err", ids[cell]));
                        let text = std::fs::read_to_string(&log).unwrap_or_default();
                        let last = text.lines().last().unwrap_or("no message").to_string();
                        failures.push(format!("{} ({last})", ids[cell]));
                    }
                }
                Err(e) => failures.push(format!("{} ({e})", ids[cell])),
            }
        }
        running = still;
    }
    bar.finish_and_clear();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(
            "experiment",
            format!("every cell to finish; failed: {}", failures.join("; ")),
        ))
    }
}
