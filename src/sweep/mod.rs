//! Numerical checks of the paper's theorems as sweeps driven by TOML configs in `experiments/`.
//!
//! A config names its sweep in the top-level `sweep` key (`sweep = "theorem1"`); everything else
//! is the typed config of that sweep, with defaults for every field left out and unknown fields
//! refused. Each sweep writes a run folder: CSV (header documented in `docs/outputs.md`), plots as
//! PNG and SVG, a markdown bound-vs-observed report and a JSON manifest.

pub mod theorem1;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A parsed and validated sweep config.
#[derive(Clone, Debug)]
pub enum SweepConfig {
    /// Theorem 1 on Gaussian class conditionals (Appendix A.5, Figure 4).
    Theorem1(theorem1::Theorem1Config),
}

/// What a finished sweep reports to the caller.
#[derive(Debug, serde::Serialize)]
pub struct SweepOutcome {
    pub run_dir: PathBuf,
    pub checks: usize,
    pub violations: usize,
    pub summary: String,
}

#[derive(Deserialize)]
struct SweepKind {
    sweep: Option<String>,
}

impl SweepConfig {
    /// Reads and validates a config file; errors name the file, the line and the field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read config: {e}")))?;
        let kind: SweepKind = parse_toml(path, &text)?;
        let config = match kind.sweep.as_deref() {
            Some("theorem1") => SweepConfig::Theorem1(parse_toml(path, &text)?),
            Some(other) => {
                return Err(Error::file(path, format!("field `sweep`: unknown sweep `{other}`, expected one of: theorem1")));
            }
            None => return Err(Error::file(path, "missing field `sweep` (expected one of: theorem1)")),
        };
        config.validate().map_err(|e| e.in_file(path))?;
        Ok(config)
    }

    /// Range checks of every field.
    pub fn validate(&self) -> Result<()> {
        match self {
            SweepConfig::Theorem1(c) => c.validate(),
        }
    }

    /// The config's `name`, used for the default run folder.
    pub fn name(&self) -> &str {
        match self {
            SweepConfig::Theorem1(c) => &c.name,
        }
    }

    /// Runs the sweep, writing its outputs under `run_dir`.
    pub fn run(&self, run_dir: &Path, progress: bool) -> Result<SweepOutcome> {
        match self {
            SweepConfig::Theorem1(c) => theorem1::run(c, run_dir, progress),
        }
    }
}

/// Parses TOML into `T`, turning the parser's multi-line diagnostic into one line with the line
/// number: `FILE: line L: MESSAGE`.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim().replace('\n', " ");
        match line {
            Some(l) => Error::file(path, format!("line {l}: {message}")),
            None => Error::file(path, message),
        }
    })
}
