//! Theorem 6: `cwd(D, p·D + (1 − p)·D~) ≤ (1 − p)·cwd(D, D~)` and the robustness gap it bounds,
//! `|Rob(h, D) − Rob(h, D^)| ≤ (1 − p)·cwd(D, D~)`, on empirical measures with exact weighted
//! OT, over a grid of mixture weights `p`.

use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::empirical::{EmpiricalData, robustness};
use super::theorem1::{Perturbation, ProxyFamily, proxy_distribution};
use super::{SweepOutcome, expect_sweep, shards};
use crate::config::{Part, Validate, at_least, at_most, non_negative_finite};
use crate::error::Result;
use crate::report::{self, Axes, BLUE, GREEN, Labels, ORANGE, Series};
use crate::theory::mixture::mixture_bound;

/// `experiments/theorem6_mixture.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theorem6Config {
    /// Must be `"theorem6"`.
    pub sweep: String,
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: EmpiricalData,
    #[serde(default)]
    pub proxy: ProxySpec,
    /// Number of mixture weights `p`, equally spaced in [0, 1].
    #[serde(default = "default_weights")]
    pub weights: usize,
}

fn default_name() -> String {
    "theorem6_mixture".into()
}

fn default_weights() -> usize {
    21
}

/// `[proxy]`: the proxy distribution is the real model perturbed by `kind` at `strength`
/// (see the Theorem 1 sweep's `[proxies]` for the meaning of the shifts).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySpec {
    pub kind: Perturbation,
    pub strength: f64,
    pub mean_shift: f64,
    pub cov_shift: f64,
}

impl Default for ProxySpec {
    fn default() -> Self {
        ProxySpec {
            kind: Perturbation::Both,
            strength: 0.3,
            mean_shift: 10.0,
            cov_shift: 1.0,
        }
    }
}

impl Validate for Theorem6Config {
    /// Checks every field; errors name it.
    fn validate(&self) -> Result<()> {
        expect_sweep(&self.sweep, "theorem6")?;
        self.data.validate()?;
        non_negative_finite("proxy.strength", self.proxy.strength)?;
        non_negative_finite("proxy.mean_shift", self.proxy.mean_shift)?;
        non_negative_finite("proxy.cov_shift", self.proxy.cov_shift)?;
        at_least("weights", self.weights, 2)?;
        at_most("weights", self.weights, 100_000)
    }
}

/// One row of `theorem6.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MixtureRow {
    pub p: f64,
    pub cwd_mixture: f64,
    pub cwd_proxy: f64,
    pub bound: f64,
    pub delta_rob: f64,
    pub holds: bool,
}

/// Runs the sweep; writes `theorem6.csv`, `theorem6.png`/`.svg`, `report.md`, `manifest.json`.
pub fn run(config: &Theorem6Config, run_dir: &Path, show_progress: bool) -> Result<SweepOutcome> {
    run_part(config, run_dir, show_progress, Part::All)
}

/// [`run`] in parts ([`shards`]): every shard draws the same data from the seed and computes its
/// own rows; the merge writes the outputs of one run.
pub fn run_part(
    config: &Theorem6Config,
    run_dir: &Path,
    show_progress: bool,
    part: Part,
) -> Result<SweepOutcome> {
    config.validate()?;
    let mut manifest = super::manifest(config, config.seed)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let (dist, h) = config.data.model(&mut rng)?;
    let family = ProxyFamily {
        mean_shift: config.proxy.mean_shift,
        cov_shift: config.proxy.cov_shift,
        ..ProxyFamily::default()
    };
    let proxy_dist = proxy_distribution(
        &dist,
        Some(&h),
        &family,
        config.proxy.kind,
        config.proxy.strength,
        &mut rng,
    )?;
    let (real, proxy) = (
        config.data.sample(&dist, &mut rng)?,
        config.data.sample(&proxy_dist, &mut rng)?,
    );
    let norm = config.data.norm;
    let (rob_real, rob_proxy) = (robustness(&h, &real, norm), robustness(&h, &proxy, norm));
    let bar = report::progress(
        shards::rows_in(part, config.weights),
        "theorem 6 mixtures",
        show_progress,
    );
    let rows = shards::rows(run_dir, part, "mixture", config.weights, &bar, |k| {
        let p = k as f64 / (config.weights - 1) as f64;
        let m = mixture_bound(&real, &proxy, p, norm)?;
        // Rob is an expectation, so on the mixture it is p·Rob(Ŝ) + (1 − p)·Rob(Ŝ~).
        let delta_rob = (rob_real - (p * rob_real + (1.0 - p) * rob_proxy)).abs();
        let slack = 1e-9 * (1.0 + m.bound);
        Ok(MixtureRow {
            p,
            cwd_mixture: m.cwd_mixture,
            cwd_proxy: m.cwd_proxy,
            bound: m.bound,
            delta_rob,
            holds: m.cwd_mixture <= m.bound + slack && delta_rob <= m.bound + slack,
        })
    })?;
    bar.finish_and_clear();
    if let Part::Shard(..) = part {
        let violations = rows.iter().filter(|r| !r.holds).count();
        return Ok(shards::shard_outcome(
            run_dir,
            "Theorem 6",
            rows.len(),
            config.weights,
            violations,
        ));
    }
    report::create_run_dir(run_dir)?;
    report::write_csv(&run_dir.join("theorem6.csv"), &rows)?;
    let series = |f: fn(&MixtureRow) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.p, f(r))).collect()
    };
    let (bound, observed, gap) = (
        series(|r| r.bound),
        series(|r| r.cwd_mixture),
        series(|r| r.delta_rob),
    );
    report::plot(
        &run_dir.join("theorem6"),
        &Labels {
            title: "Theorem 6: mixing real data into the proxy",
            x: "p (share of real data)",
            y: "distance",
        },
        &[
            Series {
                name: "(1 - p) · cwd(D, D~) (bound)",
                points: &bound,
                color: GREEN,
                line: true,
            },
            Series {
                name: "cwd(D, p·D + (1 - p)·D~), exact OT",
                points: &observed,
                color: BLUE,
                line: false,
            },
            Series {
                name: "|Rob(h, D) - Rob(h, mixture)|",
                points: &gap,
                color: ORANGE,
                line: false,
            },
        ],
        Axes {
            log: false,
            diagonal: false,
        },
    )?;
    let violations = rows.iter().filter(|r| !r.holds).count();
    let mut md = format!(
        "# Theorem 6: cwd to a mixture ({})\n\n{} classes in d = {}, {} points per class from the real and from the proxy model ({:?}, strength {}); metric {}; LDA classifier; seed {}.\n\nRob(h, D) = {rob_real:.5}, Rob(h, D~) = {rob_proxy:.5}, cwd(D, D~) = {:.5}. Violations: {violations}.\n\n| p | cwd(D, mixture) | (1 − p)·cwd(D, D~) | ratio | abs ΔRob |\n|---|---|---|---|---|\n",
        config.name,
        config.data.model.classes,
        config.data.model.dim,
        config.data.samples_per_class,
        config.proxy.kind,
        config.proxy.strength,
        norm.name(),
        config.seed,
        rows[0].cwd_proxy
    );
    for r in &rows {
        let ratio = if r.bound > 0.0 {
            r.cwd_mixture / r.bound
        } else {
            0.0
        };
        md.push_str(&format!(
            "| {:.3} | {:.5} | {:.5} | {:.4} | {:.5} |\n",
            r.p, r.cwd_mixture, r.bound, ratio, r.delta_rob
        ));
    }
    report::atomic_write(&run_dir.join("report.md"), md.as_bytes())?;
    manifest.write(
        run_dir,
        &["theorem6.csv", "theorem6.png", "theorem6.svg", "report.md"],
    )?;
    Ok(SweepOutcome {
        run_dir: run_dir.to_owned(),
        checks: rows.len(),
        violations,
        summary: format!(
            "Theorem 6: {} mixture weights, {violations} violations; cwd(D, D~) = {:.4}",
            rows.len(),
            rows[0].cwd_proxy
        ),
    })
}
