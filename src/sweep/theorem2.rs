//! Theorem 2: `cwd(D, D~) ≥ 4·ARC(D, D~)`, with equality on concentric uniform spheres.
//!
//! Two families, one CSV each:
//! - concentric spheres (ℓ2 and ℓ∞) over a grid of dimensions and radius ratios: closed-form
//!   `cwd = |r − r~|` and `ARC = cwd/4` against the empirical ARC of the best radial-threshold
//!   discriminator on held-out samples (the paper's empirical route, trapezoid rule);
//! - Gaussian pairs `N(0, S)` against `N(δ, S~)` at log-spaced shifts: `4·ARC` of the best
//!   ℓ2-robust linear discriminator against the closed-form W2 (≥ W1 = cwd for one class).

use std::path::Path;

use faer::Mat;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::{SweepOutcome, expect_sweep, shards};
use crate::config::{Part, Validate, at_least, at_most, fits_in_memory, positive_finite};
use crate::error::{Error, Result};
use crate::report::{self, Axes, BLUE, Labels, ORANGE, Series};
use crate::theory::discrimination::gaussian_linear_arc;
use crate::theory::gaussian::{Gaussian, standard_normal_matrix, wasserstein2};
use crate::theory::norm::Norm;
use crate::theory::sphere::{ConcentricSpheres, check_sizes};

/// `experiments/theorem2_arc.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theorem2Config {
    /// Must be `"theorem2"`.
    pub sweep: String,
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub spheres: SphereGrid,
    #[serde(default)]
    pub gaussians: GaussianPairs,
}

fn default_name() -> String {
    "theorem2_arc".into()
}

/// `[spheres]`: real radius `radius`, proxy radius `ratio · radius` for every ratio, dimension
/// and norm; `samples` training and held-out points per sphere; `grid` ε steps; a pair passes if
/// the empirical ARC is within `tolerance` (relative) of `cwd/4`. `classes` (a radius pair
/// `[r_y, r~_y]` per class, probabilities `class_probs`, uniform when empty) makes the labeled
/// case: `cwd = Σ_y Pr[y]·|r_y − r~_y|` and `ARC = Σ_y Pr[y]·ARC_y`, the classes' spheres
/// being told apart by the discriminator (well-separated centres).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SphereGrid {
    pub dims: Vec<usize>,
    pub radius: f64,
    pub ratios: Vec<f64>,
    pub norms: Vec<Norm>,
    pub samples: usize,
    pub grid: usize,
    pub tolerance: f64,
    pub classes: Vec<[f64; 2]>,
    pub class_probs: Vec<f64>,
}

impl Default for SphereGrid {
    fn default() -> Self {
        SphereGrid {
            dims: vec![2, 16, 128],
            radius: 1.0,
            ratios: vec![0.5, 0.8, 0.95, 1.05, 1.25, 1.5, 2.0, 3.0],
            norms: vec![Norm::L2, Norm::Linf],
            samples: 2000,
            grid: 1000,
            tolerance: 0.02,
            classes: vec![[1.0, 1.2], [2.0, 1.5], [0.5, 0.9]],
            class_probs: vec![],
        }
    }
}

/// `[gaussians]`: `count` pairs in dimension `dim`; the proxy mean is shifted by a random
/// direction of length in `[min_shift, max_shift]` (log-spaced) and both covariances are random
/// (`A Aᵀ/d + 0.1 I`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GaussianPairs {
    pub count: usize,
    pub dim: usize,
    pub min_shift: f64,
    pub max_shift: f64,
    pub grid: usize,
}

impl Default for GaussianPairs {
    fn default() -> Self {
        GaussianPairs {
            count: 30,
            dim: 8,
            min_shift: 0.05,
            max_shift: 10.0,
            grid: 1000,
        }
    }
}

impl Validate for Theorem2Config {
    /// Checks every field; errors name it.
    fn validate(&self) -> Result<()> {
        expect_sweep(&self.sweep, "theorem2")?;
        let s = &self.spheres;
        if s.dims.is_empty() || s.dims.contains(&0) {
            return Err(Error::invalid(
                "spheres.dims",
                "a non-empty list of dimensions ≥ 1",
            ));
        }
        positive_finite("spheres.radius", s.radius)?;
        if s.ratios.is_empty()
            || s.ratios
                .iter()
                .any(|r| !(*r > 0.0 && r.is_finite() && *r != 1.0))
        {
            return Err(Error::invalid(
                "spheres.ratios",
                "a non-empty list of finite ratios > 0 and ≠ 1",
            ));
        }
        if s.norms.is_empty() || s.norms.contains(&Norm::L1) {
            return Err(Error::invalid(
                "spheres.norms",
                "a non-empty list of \"l2\" and \"linf\"",
            ));
        }
        at_least("spheres.samples", s.samples, 1)?;
        for &dim in &s.dims {
            check_sizes(
                ["spheres.dims", "spheres.grid", "spheres.samples"],
                dim,
                s.grid,
                s.samples,
            )?;
        }
        at_most("spheres.classes", s.classes.len(), 1_000)?;
        positive_finite("spheres.tolerance", s.tolerance)?;
        if s.classes
            .iter()
            .flatten()
            .any(|r| !(*r > 0.0 && r.is_finite()))
            || s.classes.iter().any(|[a, b]| a == b)
        {
            return Err(Error::invalid(
                "spheres.classes",
                "radius pairs [r, r~] with finite radii > 0 and r ≠ r~",
            ));
        }
        if !s.class_probs.is_empty() {
            let total: f64 = s.class_probs.iter().sum();
            if s.class_probs.len() != s.classes.len()
                || s.class_probs.iter().any(|p| p.is_nan() || *p < 0.0)
                || (total - 1.0).abs() > 1e-9
            {
                return Err(Error::invalid(
                    "spheres.class_probs",
                    format!(
                        "{} non-negative probabilities summing to 1 (one per class), or none",
                        s.classes.len()
                    ),
                ));
            }
        }
        let g = &self.gaussians;
        at_most("gaussians.count", g.count, 100_000)?;
        at_least("gaussians.dim", g.dim, 1)?;
        fits_in_memory("gaussians.dim", "dim × dim (a covariance)", &[g.dim, g.dim])?;
        at_least("gaussians.grid", g.grid, 1)?;
        at_most("gaussians.grid", g.grid, 10_000_000)?;
        positive_finite("gaussians.min_shift", g.min_shift)?;
        positive_finite("gaussians.max_shift", g.max_shift)?;
        if g.max_shift < g.min_shift {
            return Err(Error::invalid(
                "gaussians.max_shift",
                format!(
                    "a value ≥ gaussians.min_shift ({}), got {}",
                    g.min_shift, g.max_shift
                ),
            ));
        }
        Ok(())
    }
}

/// One row of `theorem2_spheres.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SphereRow {
    pub dim: usize,
    pub norm: String,
    pub r: f64,
    pub r_tilde: f64,
    pub cwd: f64,
    pub arc_closed_form: f64,
    pub arc_empirical: f64,
    pub relative_error: f64,
    pub within_tolerance: bool,
}

/// One row of `theorem2_labeled.csv`: the labeled multi-class sphere distribution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabeledRow {
    pub dim: usize,
    pub norm: String,
    pub classes: usize,
    pub cwd: f64,
    pub arc_closed_form: f64,
    pub arc_empirical: f64,
    pub relative_error: f64,
    pub within_tolerance: bool,
}

/// One row of `theorem2_gaussians.csv`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GaussianRow {
    pub pair: usize,
    pub shift: f64,
    pub w2: f64,
    pub arc_linear: f64,
    pub four_arc: f64,
    pub holds: bool,
}

/// One computation of the sweep: a sphere pair, a labeled sphere set or a Gaussian pair.
#[derive(Clone, Copy)]
enum Item {
    Spheres { dim: usize, norm: Norm, ratio: f64 },
    Labeled { dim: usize, norm: Norm },
    Gaussians { pair: usize },
}

/// An item's row, as a shard records it.
#[derive(Serialize, Deserialize)]
enum ItemRow {
    Spheres(SphereRow),
    Labeled(LabeledRow),
    Gaussians(GaussianRow),
}

/// Every item of the sweep, in the order of its tables.
fn items(config: &Theorem2Config) -> Vec<Item> {
    let s = &config.spheres;
    let grid = || {
        s.dims
            .iter()
            .flat_map(|&dim| s.norms.iter().map(move |&norm| (dim, norm)))
    };
    let spheres = grid().flat_map(|(dim, norm)| {
        s.ratios
            .iter()
            .map(move |&ratio| Item::Spheres { dim, norm, ratio })
    });
    let labeled = grid()
        .filter(|_| !s.classes.is_empty())
        .map(|(dim, norm)| Item::Labeled { dim, norm });
    let gaussians = (0..config.gaussians.count).map(|pair| Item::Gaussians { pair });
    spheres.chain(labeled).chain(gaussians).collect()
}

/// Runs both families and writes `theorem2_spheres.csv`, `theorem2_labeled.csv`,
/// `theorem2_gaussians.csv`, `theorem2.png`/`.svg`, `report.md` and `manifest.json`.
pub fn run(config: &Theorem2Config, run_dir: &Path, show_progress: bool) -> Result<SweepOutcome> {
    run_part(config, run_dir, show_progress, Part::All)
}

/// [`run`] in parts ([`shards`]): item k draws from its own generator, seeded by the sweep's seed
/// and k, so a shard's rows are those of the whole run; the merge writes the outputs of one run.
pub fn run_part(
    config: &Theorem2Config,
    run_dir: &Path,
    show_progress: bool,
    part: Part,
) -> Result<SweepOutcome> {
    config.validate()?;
    let mut manifest = super::manifest(config, config.seed)?;
    let s = &config.spheres;
    let items = items(config);
    let bar = report::progress(
        shards::rows_in(part, items.len()),
        "theorem 2",
        show_progress,
    );
    let rows = shards::rows(run_dir, part, "item", items.len(), &bar, |k| {
        let mut rng = StdRng::seed_from_u64(
            config
                .seed
                .wrapping_add((k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        Ok(match items[k] {
            Item::Spheres { dim, norm, ratio } => {
                ItemRow::Spheres(sphere_row(s, dim, norm, ratio, &mut rng)?)
            }
            Item::Labeled { dim, norm } => ItemRow::Labeled(labeled_row(s, dim, norm, &mut rng)?),
            Item::Gaussians { pair } => {
                ItemRow::Gaussians(gaussian_row(&config.gaussians, pair, &mut rng)?)
            }
        })
    })?;
    bar.finish_and_clear();
    let (mut spheres, mut labeled, mut gaussians) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        match row {
            ItemRow::Spheres(r) => spheres.push(r),
            ItemRow::Labeled(r) => labeled.push(r),
            ItemRow::Gaussians(r) => gaussians.push(r),
        }
    }
    let sphere_failures = spheres.iter().filter(|r| !r.within_tolerance).count()
        + labeled.iter().filter(|r| !r.within_tolerance).count();
    let gaussian_failures = gaussians.iter().filter(|r| !r.holds).count();
    if let Part::Shard(..) = part {
        return Ok(shards::shard_outcome(
            run_dir,
            "Theorem 2",
            spheres.len() + labeled.len() + gaussians.len(),
            items.len(),
            sphere_failures + gaussian_failures,
        ));
    }

    report::create_run_dir(run_dir)?;
    report::write_csv(&run_dir.join("theorem2_spheres.csv"), &spheres)?;
    report::write_csv(&run_dir.join("theorem2_labeled.csv"), &labeled)?;
    report::write_csv(&run_dir.join("theorem2_gaussians.csv"), &gaussians)?;
    let on_spheres: Vec<(f64, f64)> = spheres
        .iter()
        .map(|r| (r.cwd, 4.0 * r.arc_empirical))
        .chain(labeled.iter().map(|r| (r.cwd, 4.0 * r.arc_empirical)))
        .collect();
    let on_gaussians: Vec<(f64, f64)> = gaussians.iter().map(|r| (r.w2, r.four_arc)).collect();
    report::plot(
        &run_dir.join("theorem2"),
        &Labels {
            title: "Theorem 2: cwd ≥ 4·ARC",
            x: "cwd (spheres: |r - r~|; Gaussians: closed-form W2)",
            y: "4 · ARC (empirical)",
        },
        &[
            Series {
                name: "concentric spheres (equality)",
                points: &on_spheres,
                color: BLUE,
                line: false,
            },
            Series {
                name: "Gaussian pairs, best linear discriminator",
                points: &on_gaussians,
                color: ORANGE,
                line: false,
            },
        ],
        Axes {
            log: true,
            diagonal: true,
        },
    )?;
    report::atomic_write(
        &run_dir.join("report.md"),
        markdown(config, &spheres, &labeled, &gaussians).as_bytes(),
    )?;
    manifest.write(
        run_dir,
        &[
            "theorem2_spheres.csv",
            "theorem2_labeled.csv",
            "theorem2_gaussians.csv",
            "theorem2.png",
            "theorem2.svg",
            "report.md",
        ],
    )?;
    let worst = spheres
        .iter()
        .map(|r| r.relative_error)
        .chain(labeled.iter().map(|r| r.relative_error))
        .fold(0.0, f64::max);
    Ok(SweepOutcome {
        run_dir: run_dir.to_owned(),
        checks: spheres.len() + labeled.len() + gaussians.len(),
        violations: sphere_failures + gaussian_failures,
        summary: format!(
            "Theorem 2: {} sphere pairs and {} labeled sphere sets (worst |ARC − cwd/4|/(cwd/4) = {worst:.4}, {sphere_failures} outside {:.0}%), {} Gaussian pairs ({gaussian_failures} with 4·ARC > W2)",
            spheres.len(),
            labeled.len(),
            100.0 * s.tolerance,
            gaussians.len()
        ),
    })
}

/// The labeled case for every dimension and norm: per-class empirical ARC, weighted by class.
/// The sphere pair of radii `s.radius` and `ratio · s.radius` in `dim` dimensions under `norm`:
/// closed-form cwd and ARC beside the empirical ARC of the best radial-threshold discriminator.
fn sphere_row(
    s: &SphereGrid,
    dim: usize,
    norm: Norm,
    ratio: f64,
    rng: &mut StdRng,
) -> Result<SphereRow> {
    let pair = ConcentricSpheres::new(dim, s.radius, ratio * s.radius, norm)?;
    let arc = pair.empirical_arc(s.samples, s.grid, rng)?.arc;
    let relative_error = (arc - pair.arc()).abs() / pair.arc();
    Ok(SphereRow {
        dim,
        norm: norm.name().into(),
        r: pair.r,
        r_tilde: pair.r_tilde,
        cwd: pair.conditional_wasserstein(),
        arc_closed_form: pair.arc(),
        arc_empirical: arc,
        relative_error,
        within_tolerance: relative_error <= s.tolerance,
    })
}

/// The labeled multi-class sphere distribution of `s.classes` in `dim` dimensions under `norm`:
/// cwd and ARC are the class-probability-weighted sums over the classes' sphere pairs.
fn labeled_row(s: &SphereGrid, dim: usize, norm: Norm, rng: &mut StdRng) -> Result<LabeledRow> {
    let k = s.classes.len();
    let probs = if s.class_probs.is_empty() {
        vec![1.0 / k as f64; k]
    } else {
        s.class_probs.clone()
    };
    let (mut cwd, mut arc) = (0.0, 0.0);
    for (&[r, r_tilde], p) in s.classes.iter().zip(&probs) {
        let pair = ConcentricSpheres::new(dim, r, r_tilde, norm)?;
        cwd += p * pair.conditional_wasserstein();
        arc += p * pair.empirical_arc(s.samples, s.grid, rng)?.arc;
    }
    let relative_error = (arc - cwd / 4.0).abs() / (cwd / 4.0);
    Ok(LabeledRow {
        dim,
        norm: norm.name().into(),
        classes: k,
        cwd,
        arc_closed_form: cwd / 4.0,
        arc_empirical: arc,
        relative_error,
        within_tolerance: relative_error <= s.tolerance,
    })
}

/// Gaussian pair number `pair` of `g.count`: N(0, S) against N(δ, S~) with ‖δ‖ at the pair's
/// log-spaced shift, random covariances; 4·ARC of the best ℓ2-robust linear discriminator beside
/// the closed-form W2.
fn gaussian_row(g: &GaussianPairs, pair: usize, rng: &mut StdRng) -> Result<GaussianRow> {
    let d = g.dim;
    let random_cov = |rng: &mut StdRng| {
        let a = standard_normal_matrix(d, d, rng);
        let s = faer::Scale(1.0 / d as f64) * (&a * a.transpose());
        Mat::from_fn(d, d, |i, j| {
            0.5 * (s[(i, j)] + s[(j, i)]) + if i == j { 0.1 } else { 0.0 }
        })
    };
    let t = if g.count == 1 {
        0.0
    } else {
        pair as f64 / (g.count - 1) as f64
    };
    let shift = (g.min_shift.ln() + t * (g.max_shift.ln() - g.min_shift.ln())).exp();
    let direction = standard_normal_matrix(1, d, rng);
    let length = Norm::L2.of(&direction.row(0).iter().copied().collect::<Vec<_>>());
    let mean: Vec<f64> = direction
        .row(0)
        .iter()
        .map(|v| shift * v / length)
        .collect();
    let real = Gaussian::new(vec![0.0; d], random_cov(rng))?;
    let proxy = Gaussian::new(mean, random_cov(rng))?;
    let w2 = wasserstein2(&real, &proxy)?;
    let arc = gaussian_linear_arc(&real, &proxy, g.grid)?.arc;
    Ok(GaussianRow {
        pair,
        shift,
        w2,
        arc_linear: arc,
        four_arc: 4.0 * arc,
        holds: 4.0 * arc <= w2,
    })
}

fn markdown(
    config: &Theorem2Config,
    spheres: &[SphereRow],
    labeled: &[LabeledRow],
    gaussians: &[GaussianRow],
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Theorem 2: cwd ≥ 4·ARC, equality on concentric spheres ({})\n",
        config.name
    );
    let _ = writeln!(
        s,
        "Spheres: {} held-out samples per sphere, {} ε steps, tolerance {:.1}%. Gaussians: d = {}, best ℓ2-robust linear discriminator (mean-difference and Fisher directions), {} ε steps. Seed {}.\n",
        config.spheres.samples,
        config.spheres.grid,
        100.0 * config.spheres.tolerance,
        config.gaussians.dim,
        config.gaussians.grid,
        config.seed
    );
    let spheres_table = report::markdown_table(
        &[
            "d",
            "norm",
            "r",
            "r~",
            "cwd",
            "ARC closed form",
            "ARC empirical",
            "rel. error",
            "ok",
        ],
        spheres.iter().map(|r| {
            vec![
                r.dim.to_string(),
                r.norm.to_string(),
                format!("{:.3}", r.r),
                format!("{:.3}", r.r_tilde),
                format!("{:.4}", r.cwd),
                format!("{:.5}", r.arc_closed_form),
                format!("{:.5}", r.arc_empirical),
                format!("{:.4}", r.relative_error),
                r.within_tolerance.to_string(),
            ]
        }),
    );
    let labeled_table = report::markdown_table(
        &[
            "d",
            "norm",
            "classes",
            "cwd",
            "ARC closed form",
            "ARC empirical",
            "rel. error",
            "ok",
        ],
        labeled.iter().map(|r| {
            vec![
                r.dim.to_string(),
                r.norm.to_string(),
                r.classes.to_string(),
                format!("{:.4}", r.cwd),
                format!("{:.5}", r.arc_closed_form),
                format!("{:.5}", r.arc_empirical),
                format!("{:.4}", r.relative_error),
                r.within_tolerance.to_string(),
            ]
        }),
    );
    let gaussians_table = report::markdown_table(
        &["pair", "shift", "W2", "4·ARC", "4·ARC / W2", "holds"],
        gaussians.iter().map(|r| {
            vec![
                r.pair.to_string(),
                format!("{:.3}", r.shift),
                format!("{:.4}", r.w2),
                format!("{:.4}", r.four_arc),
                format!("{:.3}", r.four_arc / r.w2),
                r.holds.to_string(),
            ]
        }),
    );
    let _ = write!(
        s,
        "## Concentric spheres\n\n{spheres_table}\n## Labeled spheres (a radius pair per class)\n\n{labeled_table}\n## Gaussian pairs\n\n{gaussians_table}"
    );
    s
}
