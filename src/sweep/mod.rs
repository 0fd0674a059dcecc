//! Numerical checks of the paper's theorems as sweeps driven by TOML configs in `experiments/`.
//!
//! A config names its sweep in the top-level `sweep` key (`sweep = "theorem1"`); everything else
//! is the typed config of that sweep, with defaults for every field left out and unknown fields
//! refused. Each sweep writes a run folder: CSV (header documented in `docs/outputs.md`), plots as
//! PNG and SVG, a markdown bound-vs-observed report and a JSON manifest.

mod empirical;
mod estimate;
#[cfg(feature = "torch")]
pub mod network;
pub(crate) mod shards;
pub mod theorem1;
pub mod theorem2;
pub mod theorem6;
pub mod theorem7;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{self, Validate, parse_toml};
use crate::error::{Error, Result};
pub use estimate::{AttackSpread, Calibration, Extent};

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
        let text = config::read_text(path)?;
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

    /// The config's `name`, used for the default run folder.
    pub fn name(&self) -> &str {
        match self {
            SweepConfig::Theorem1(c) => &c.name,
            SweepConfig::Theorem2(c) => &c.name,
            SweepConfig::Theorem6(c) => &c.name,
            SweepConfig::Theorem7(c) => &c.name,
        }
    }

    /// Runs the sweep, writing its outputs under `run_dir`; or the `part` of its rows a shard
    /// computes, or the merge of every shard's rows ([`shards`]).
    pub fn run(
        &self,
        run_dir: &Path,
        progress: bool,
        part: crate::config::Part,
    ) -> Result<SweepOutcome> {
        match self {
            SweepConfig::Theorem1(c) => theorem1::run_part(c, run_dir, progress, part),
            SweepConfig::Theorem2(c) => theorem2::run_part(c, run_dir, progress, part),
            SweepConfig::Theorem6(c) => theorem6::run_part(c, run_dir, progress, part),
            SweepConfig::Theorem7(c) => theorem7::run_part(c, run_dir, progress, part),
        }
    }
}

impl Validate for SweepConfig {
    fn validate(&self) -> Result<()> {
        match self {
            SweepConfig::Theorem1(c) => c.validate(),
            SweepConfig::Theorem2(c) => c.validate(),
            SweepConfig::Theorem6(c) => c.validate(),
            SweepConfig::Theorem7(c) => c.validate(),
        }
    }
}

/// The manifest of a sweep run with `config` and `seed` on the CPU; the clock starts now.
pub(crate) fn manifest(
    config: &impl serde::Serialize,
    seed: u64,
) -> Result<crate::report::Manifest> {
    crate::report::Manifest::new("sweep", config, crate::report::cpu_device())?.seed(seed)
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
