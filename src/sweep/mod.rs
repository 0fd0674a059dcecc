//! Numerical checks of the paper's theorems as sweeps driven by TOML configs in `experiments/`.
//!
//! A config names its sweep in the top-level `sweep` key (`sweep = "theorem1"`); everything else
//! is the typed config of that sweep, with defaults for every field left out and unknown fields
//! refused. Each sweep writes a run folder: CSV (header documented in `docs/outputs.md`), plots as
//! PNG and SVG, a markdown bound-vs-observed report and a JSON manifest.

mod empirical;
pub mod theorem1;
pub mod theorem2;
pub mod theorem6;
pub mod theorem7;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A parsed and validated sweep config.
#[derive(Clone, Debug)]
pub enum SweepConfig {
    /// Theorem 1 on Gaussian class conditionals (Appendix A.5, Figure 4).
    Theorem1(theorem1::Theorem1Config),
    /// Theorem 2: ARC against cwd on concentric spheres (equality) and Gaussian pairs.
    Theorem2(theorem2::Theorem2Config),
    /// Theorem 6: cwd to a mixture of real and proxy data.
    Theorem6(theorem6::Theorem6Config),
    /// Theorem 7: tightness of Theorem 1 along the path to the adversarial distribution.
    Theorem7(theorem7::Theorem7Config),
}

/// What a finished sweep reports to the caller.
#[derive(Debug, serde::Serialize)]
pub struct SweepOutcome {
    pub run_dir: PathBuf,
    pub checks: usize,
    pub violations: usize,
    pub summary: String,
}

const SWEEPS: &str = "theorem1, theorem2, theorem6, theorem7";

#[derive(Deserialize)]
struct SweepKind {
    sweep: Option<String>,
}

impl SweepConfig {
    /// Reads and validates a config file; errors name the file, the line and the field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::file(path, format!("cannot read config: {e}")))?;
        let kind: SweepKind = parse_toml(path, &text)?;
        let config = match kind.sweep.as_deref() {
            Some("theorem1") => SweepConfig::Theorem1(parse_toml(path, &text)?),
            Some("theorem2") => SweepConfig::Theorem2(parse_toml(path, &text)?),
            Some("theorem6") => SweepConfig::Theorem6(parse_toml(path, &text)?),
            Some("theorem7") => SweepConfig::Theorem7(parse_toml(path, &text)?),
            Some(other) => {
                return Err(Error::file(
                    path,
                    format!("field `sweep`: unknown sweep `{other}`, expected one of: {SWEEPS}"),
                ));
            }
            None => {
                return Err(Error::file(
                    path,
                    format!("missing field `sweep` (expected one of: {SWEEPS})"),
                ));
            }
        };
        config.validate().map_err(|e| e.in_file(path))?;
        Ok(config)
    }

    /// Range checks of every field.
    pub fn validate(&self) -> Result<()> {
        match self {
            SweepConfig::Theorem1(c) => c.validate(),
            SweepConfig::Theorem2(c) => c.validate(),
            SweepConfig::Theorem6(c) => c.validate(),
            SweepConfig::Theorem7(c) => c.validate(),
        }
    }

    /// The config's `name`, used for the default run folder.
    pub fn name(&self) -> &str {
        match self {
            SweepConfig::Theorem1(c) => &c.name,
            SweepConfig::Theorem2(c) => &c.name,
            SweepConfig::Theorem6(c) => &c.name,
            SweepConfig::Theorem7(c) => &c.name,
        }
    }

    /// Runs the sweep, writing its outputs under `run_dir`.
    pub fn run(&self, run_dir: &Path, progress: bool) -> Result<SweepOutcome> {
        match self {
            SweepConfig::Theorem1(c) => theorem1::run(c, run_dir, progress),
            SweepConfig::Theorem2(c) => theorem2::run(c, run_dir, progress),
            SweepConfig::Theorem6(c) => theorem6::run(c, run_dir, progress),
            SweepConfig::Theorem7(c) => theorem7::run(c, run_dir, progress),
        }
    }
}

/// Parses TOML into `T`, turning the parser's multi-line diagnostic into one line with the line
/// number: `FILE: line L: MESSAGE`.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim().replace('\n', " ");
        match line {
            Some(l) => Error::file(path, format!("line {l}: {message}")),
            None => Error::file(path, message),
        }
    })
}

/// Writes `manifest.json` for a finished sweep.
pub(crate) fn write_manifest<C: serde::Serialize>(
    run_dir: &Path,
    config: &C,
    seed: u64,
    started: (u64, std::time::Instant),
    outputs: &[&str],
) -> Result<()> {
    let manifest = crate::report::Manifest {
        command: "sweep".into(),
        config: serde_json::to_value(config)
            .map_err(|e| Error::invalid("config", e.to_string()))?,
        seed,
        git_revision: crate::report::GIT_REVISION,
        versions: crate::report::Versions::current(),
        device: crate::report::cpu_device(),
        started_unix_s: started.0,
        elapsed_s: started.1.elapsed().as_secs_f64(),
        outputs: outputs
            .iter()
            .map(|s| s.to_string())
            .chain(["manifest.json".to_string()])
            .collect(),
    };
    crate::report::write_json(&run_dir.join("manifest.json"), &manifest)
}

/// Creates the run folder.
pub(crate) fn create_run_dir(run_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(run_dir)
        .map_err(|e| Error::file(run_dir, format!("cannot create run folder: {e}")))
}

/// A progress bar over `len` items, hidden unless `visible`.
pub(crate) fn progress(len: usize, what: &str, visible: bool) -> indicatif::ProgressBar {
    let bar = crate::report::progress_bar(len as u64, what);
    if !visible {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Checks that a config's `sweep` field names the sweep it was parsed as.
pub(crate) fn expect_sweep(sweep: &str, expected: &str) -> Result<()> {
    if sweep == expected {
        Ok(())
    } else {
        Err(Error::invalid(
            "sweep",
            format!("\"{expected}\", got \"{sweep}\""),
        ))
    }
}

/// Checks that `value` is finite and > 0; the error names `field`.
pub(crate) fn positive_finite(field: &str, value: f64) -> Result<()> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("a finite value > 0, got {value}"),
        ))
    }
}

/// Checks that `value` is finite and ≥ 0; the error names `field`.
pub(crate) fn non_negative_finite(field: &str, value: f64) -> Result<()> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("a finite value ≥ 0, got {value}"),
        ))
    }
}

/// Checks that `value` is at least `min`; the error names `field`.
pub(crate) fn at_least(field: &str, value: usize, min: usize) -> Result<()> {
    if value >= min {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("at least {min}, got {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_of_another_sweep_is_refused_naming_both() {
        assert!(expect_sweep("theorem6", "theorem6").is_ok());
        let message = expect_sweep("theorem2", "theorem6")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("sweep") && message.contains("\"theorem6\", got \"theorem2\""),
            "{message}"
        );
    }
}
