//! Theorem 7 (tightness of Theorem 1): moving every point a fraction α toward its nearest
//! adversarial example gives `Rob(h, D) − Rob(h, D_α) = cwd(D, D_α) = α·Rob(h, D)`, checked
//! exactly on empirical measures over a grid of α.

use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::empirical::{EmpiricalData, robustness};
use super::{SweepOutcome, expect_sweep, shards};
use crate::config::{Part, Validate, at_least, at_most, fits_in_memory};
use crate::error::Result;
use crate::report::{self, Axes, BLUE, Labels, ORANGE, Series};
use crate::theory::transport::empirical_conditional_wasserstein;

/// `experiments/theorem7_tightness.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theorem7Config {
    /// Must be `"theorem7"`.
    pub sweep: String,
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: EmpiricalData,
    /// Number of fractions α, equally spaced in [0, 1].
    #[serde(default = "default_alphas")]
    pub alphas: usize,
    /// Allowed round-off, relative to `1 + Rob(h, D)`.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

fn default_name() -> String {
    "theorem7_tightness".into()
}

fn default_alphas() -> usize {
    21
}

fn default_tolerance() -> f64 {
    1e-9
}

impl Validate for Theorem7Config {
    /// Checks every field; errors name it.
    fn validate(&self) -> Result<()> {
        expect_sweep(&self.sweep, "theorem7")?;
        self.data.validate()?;
        crate::config::positive_finite("tolerance", self.tolerance)?;
        at_least("alphas", self.alphas, 2)?;
        at_most("alphas", self.alphas, 100_000)?;
        // The exact transport between a class's samples and their moved copies holds a square
        // cost matrix per class.
        fits_in_memory(
            "data.samples_per_class",
            "samples per class × samples per class (a transport cost matrix)",
            &[self.data.samples_per_class, self.data.samples_per_class],
        )
    }
}

/// One row of `theorem7.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TightnessRow {
    pub alpha: f64,
    pub rob_real: f64,
    pub rob_moved: f64,
    pub rob_drop: f64,
    pub cwd: f64,
    pub alpha_rob: f64,
    pub holds: bool,
}

/// Runs the sweep; writes `theorem7.csv`, `theorem7.png`/`.svg`, `report.md`, `manifest.json`.
pub fn run(config: &Theorem7Config, run_dir: &Path, show_progress: bool) -> Result<SweepOutcome> {
    run_part(config, run_dir, show_progress, Part::All)
}

/// [`run`] in parts ([`shards`]): every shard draws the same data from the seed and computes its
/// own rows; the merge writes the outputs of one run.
pub fn run_part(
    config: &Theorem7Config,
    run_dir: &Path,
    show_progress: bool,
    part: Part,
) -> Result<SweepOutcome> {
    config.validate()?;
    let mut manifest = super::manifest(config, config.seed)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let (dist, h) = config.data.model(&mut rng)?;
    let real = config.data.sample(&dist, &mut rng)?;
    let norm = config.data.norm;
    let rob = robustness(&h, &real, norm);
    let bar = report::progress(
        shards::rows_in(part, config.alphas),
        "theorem 7 fractions",
        show_progress,
    );
    let rows = shards::rows(run_dir, part, "fraction", config.alphas, &bar, |k| {
        let alpha = k as f64 / (config.alphas - 1) as f64;
        let moved =
            real.with_points(h.toward_adversarial(real.points(), real.labels(), alpha, norm)?)?;
        let rob_moved = robustness(&h, &moved, norm);
        let cwd = empirical_conditional_wasserstein(&real, &moved, 1, norm)?.cwd;
        let slack = config.tolerance * (1.0 + rob);
        let holds =
            ((rob - rob_moved) - alpha * rob).abs() <= slack && (cwd - alpha * rob).abs() <= slack;
        Ok(TightnessRow {
            alpha,
            rob_real: rob,
            rob_moved,
            rob_drop: rob - rob_moved,
            cwd,
            alpha_rob: alpha * rob,
            holds,
        })
    })?;
    bar.finish_and_clear();
    if let Part::Shard(..) = part {
        let violations = rows.iter().filter(|r| !r.holds).count();
        return Ok(shards::shard_outcome(
            run_dir,
            "Theorem 7",
            rows.len(),
            config.alphas,
            violations,
        ));
    }
    report::create_run_dir(run_dir)?;
    report::write_csv(&run_dir.join("theorem7.csv"), &rows)?;
    let drop: Vec<(f64, f64)> = rows.iter().map(|r| (r.alpha_rob, r.rob_drop)).collect();
    let cwd: Vec<(f64, f64)> = rows.iter().map(|r| (r.alpha_rob, r.cwd)).collect();
    report::plot(
        &run_dir.join("theorem7"),
        &Labels {
            title: "Theorem 7: Theorem 1 is tight along D_α",
            x: "α · Rob(h, D)",
            y: "observed",
        },
        &[
            Series {
                name: "Rob(h, D) - Rob(h, D_α)",
                points: &drop,
                color: BLUE,
                line: false,
            },
            Series {
                name: "cwd(D, D_α), exact OT",
                points: &cwd,
                color: ORANGE,
                line: true,
            },
        ],
        Axes {
            log: false,
            diagonal: true,
        },
    )?;
    let violations = rows.iter().filter(|r| !r.holds).count();
    let worst = rows
        .iter()
        .map(|r| {
            (r.rob_drop - r.alpha_rob)
                .abs()
                .max((r.cwd - r.alpha_rob).abs())
        })
        .fold(0.0, f64::max);
    let mut md = format!(
        "# Theorem 7: tightness ({})\n\n{} classes in d = {}, {} points per class, LDA classifier, metric {}; seed {}.\n\nRob(h, D) = {rob:.6}. Largest deviation from α·Rob(h, D): {worst:.3e} (tolerance {:.1e} × (1 + Rob)). Violations: {violations}.\n\n| α | Rob(h, D_α) | Rob drop | cwd(D, D_α) | α·Rob(h, D) |\n|---|---|---|---|---|\n",
        config.name,
        config.data.model.classes,
        config.data.model.dim,
        config.data.samples_per_class,
        norm.name(),
        config.seed,
        config.tolerance
    );
    for r in &rows {
        md.push_str(&format!(
            "| {:.3} | {:.6} | {:.6} | {:.6} | {:.6} |\n",
            r.alpha, r.rob_moved, r.rob_drop, r.cwd, r.alpha_rob
        ));
    }
    report::atomic_write(&run_dir.join("report.md"), md.as_bytes())?;
    manifest.write(
        run_dir,
        &["theorem7.csv", "theorem7.png", "theorem7.svg", "report.md"],
    )?;
    Ok(SweepOutcome {
        run_dir: run_dir.to_owned(),
        checks: rows.len(),
        violations,
        summary: format!(
            "Theorem 7: {} fractions α, {violations} violations; largest deviation {worst:.2e}",
            rows.len()
        ),
    })
}
