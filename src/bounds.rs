//! Bound against observed for a trained classifier (Theorem 1 with the paper's networks): its
//! robustness on the real test split beside its robustness on held-out proxy images, and the
//! distances between the two distributions the toolkit can estimate.
//!
//! Observed: clean accuracy, AutoAttack robust accuracy and `Rob(h, ·)` of Definition 1, the
//! mean minimal adversarial distance ([`MinimalDistance`]: the smaller of FAB's and a PGD
//! bisection's upper bounds; a point neither breaks counts as the largest radius searched). Both
//! sides are weighted by the real points' class proportions, so `Rob(h, D~)` is taken under the
//! real label distribution as Definition 2 takes `cwd`, and
//! `ΔRob = Σ_y p_y (mean_real,y − mean_proxy,y)` with variance `Σ_y p_y² (s²_real,y/n_real,y +
//! s²_proxy,y/n_proxy,y)`.
//!
//! Estimated proximity, in [0, 1] pixel space with the ground metric of `norm` (the norm of
//! `Rob`, as Theorem 1's cwd takes it) unless stated:
//! - `ot_w1`: `Σ_y p_y W1(Ŝ_y, Ŝ~_y)` by exact optimal transport between class-conditional
//!   subsamples of equal size, averaged over repeats. The empirical W1 of subsamples is biased
//!   upwards (its expectation exceeds the true W1 by convexity), so this is an upper estimate of
//!   `cwd_W1`, Theorem 1's bound.
//! - `gaussian_w2_pixels`: `Σ_y p_y W2` (Euclidean) between Gaussians fitted to each class (the
//!   closed form of `theory::gaussian`). Gelbrich's bound makes it a lower bound of the W2 of
//!   the two class conditionals, and W1 ≤ W2; it bounds neither side of `cwd_W1`.
//! - `gaussian_w2_features`: the same in the classifier's penultimate-layer feature space (the
//!   space of the classifier-feature FID), in feature units: not comparable with `ΔRob`.
//! - `four_arc`: 4·ARC from an `arc` run's summary (Theorem 2 and the sphere checks place it below
//!   the cwd it estimates).
//!
//! For each, whether `|ΔRob|` is consistent with Theorem 1 (`|ΔRob| − half-width ≤ estimate`),
//! and for a model trained by PORT on the mixture `γ·D + (1 − γ)·D~`, Theorem 6's `(1 − γ)·estimate`
//! beside the observed `(1 − γ)·|ΔRob|` (Rob is linear in the distribution, so that is
//! `|Rob(h, D) − Rob(h, mixture)|`).
//!
//! Outputs: `bounds.json`, `report.md`, `samples.csv` (`set,index,label,clean_correct,
//! autoattack_robust,distance_fab,distance_bisection,distance`) and `manifest.json`.

use std::path::{Path, PathBuf};

use faer::Mat;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::attack::{MinimalDistance, Threat, Version};
use crate::config;
use crate::data::{ImageDataset, read_image_npz};
use crate::error::{Error, Result};
use crate::eval::{EvalSettings, SampleResult, evaluate, fraction};
use crate::proxy::quality::{features_of, fitted_gaussian};
use crate::report;
use crate::stats::Estimate;
use crate::theory::gaussian::wasserstein2;
use crate::theory::norm::Norm;
use crate::theory::transport::{EmpiricalMeasure, wasserstein};
use crate::train::TrainConfig;
use crate::train::classifier::{LoadedClassifier, input_shape, load_features, tensors};

/// What a bounds report measures; `[bounds]` of an experiment, or the `bounds` command's flags.
#[derive(Clone, Debug, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct BoundsSettings {
    /// Points evaluated on each side: the first N real test images and the last N proxy images.
    #[arg(long, default_value_t = 200)]
    pub points: usize,
    /// Norm of the minimal-distance search and of AutoAttack.
    #[arg(long, value_enum, default_value = "l2")]
    pub norm: Norm,
    /// AutoAttack radius (absent: no AutoAttack; in an experiment, its evaluation's threat).
    #[arg(long, allow_negative_numbers = true)]
    pub eps: Option<f64>,
    /// AutoAttack's norm (default: `--norm`).
    #[arg(long, value_enum)]
    pub autoattack_norm: Option<Norm>,
    #[arg(long, value_enum, default_value = "fast")]
    pub autoattack: Version,
    /// The largest radius the minimal-distance search tries.
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    pub max_radius: f64,
    /// Points per class in each exact-OT subsample.
    #[arg(long, default_value_t = 50)]
    pub ot_per_class: usize,
    /// Subsample pairs the OT estimate averages.
    #[arg(long, default_value_t = 3)]
    pub ot_repeats: usize,
    /// Seed of the attacks and of the subsamples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl Default for BoundsSettings {
    fn default() -> Self {
        BoundsSettings {
            points: 200,
            norm: Norm::L2,
            eps: None,
            autoattack_norm: None,
            autoattack: Version::Fast,
            max_radius: 4.0,
            ot_per_class: 50,
            ot_repeats: 3,
            seed: 0,
        }
    }
}

impl BoundsSettings {
    /// Range checks; errors name the field under `section` (`--` for flags).
    pub fn validate(&self, section: &str) -> Result<()> {
        let field = |name: &str| format!("{section}{name}");
        config::at_least(&field("points"), self.points, 2)?;
        if self.norm == Norm::L1 {
            return Err(Error::invalid(field("norm"), "l2 or linf"));
        }
        if self.autoattack_norm == Some(Norm::L1) {
            return Err(Error::invalid(field("autoattack-norm"), "l2 or linf"));
        }
        if let Some(e) = self.eps {
            config::positive_finite(&field("eps"), e)?;
        }
        config::positive_finite(&field("max-radius"), self.max_radius)?;
        config::at_least(&field("ot-per-class"), self.ot_per_class, 1)?;
        config::at_least(&field("ot-repeats"), self.ot_repeats, 1)
    }
}

/// A mean with its 95% interval.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Interval {
    pub mean: f64,
    pub half_width: f64,
}

impl From<Estimate> for Interval {
    fn from(e: Estimate) -> Self {
        Interval {
            mean: e.mean,
            half_width: e.half_width,
        }
    }
}

/// One side's observed robustness.
#[derive(Clone, Debug, Serialize)]
pub struct Observed {
    pub points: usize,
    pub clean_accuracy: f64,
    pub autoattack_robust_accuracy: Option<f64>,
    /// `Rob(h, ·)`: the class-weighted mean minimal distance.
    pub rob: Interval,
    /// Points neither attack broke within `max_radius`.
    pub unbroken: usize,
}

/// One proximity estimate and what it says against Theorem 1 (and Theorem 6).
#[derive(Clone, Debug, Serialize)]
pub struct Proximity {
    pub name: String,
    /// What the estimate is relative to `cwd_W1`.
    pub kind: String,
    pub value: f64,
    /// `|ΔRob| − half-width ≤ value`; `None` where the units differ.
    pub consistent_with_theorem1: Option<bool>,
    /// `(1 − γ)·value` for the PORT mixture the model was trained on.
    pub theorem6_bound: Option<f64>,
}

/// `bounds.json`.
#[derive(Clone, Debug, Serialize)]
pub struct BoundsSummary {
    pub real: Observed,
    pub proxy: Observed,
    /// `Rob(h, D) − Rob(h, D~)` with its 95% interval.
    pub delta_rob: Interval,
    /// The real fraction γ of the mixture the model was trained on (absent: not trained on it).
    pub gamma: Option<f64>,
    /// `(1 − γ)·|ΔRob|`, the observed side of Theorem 6.
    pub theorem6_observed: Option<f64>,
    pub proximity: Vec<Proximity>,
    pub settings: BoundsSettings,
}

impl std::fmt::Display for BoundsSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Rob(h, real) = {:.4} ± {:.4}, Rob(h, proxy) = {:.4} ± {:.4}, ΔRob = {:+.4} ± {:.4}",
            self.real.rob.mean,
            self.real.rob.half_width,
            self.proxy.rob.mean,
            self.proxy.rob.half_width,
            self.delta_rob.mean,
            self.delta_rob.half_width
        )?;
        for p in &self.proximity {
            let verdict = match p.consistent_with_theorem1 {
                Some(true) => "consistent",
                Some(false) => "VIOLATED",
                None => "other units",
            };
            writeln!(f, "{:<22} {:>10.4}  {verdict}", p.name, p.value)?;
        }
        Ok(())
    }
}

/// The `bounds` command: the report for the classifier of `config` (weights `weights`, default
/// its run folder's) against the labelled proxy set `proxy`, with 4·ARC from the `arc` run summary
/// `arc` if given, written under `out`.
pub fn run(
    config: &TrainConfig,
    weights: Option<PathBuf>,
    proxy: &Path,
    arc: Option<&Path>,
    settings: &BoundsSettings,
    out: &Path,
    show: bool,
) -> Result<BoundsSummary> {
    settings.validate("--")?;
    let four_arc = arc.map(read_arc).transpose()?;
    let weights = weights.unwrap_or_else(|| crate::train::classifier::default_weights(config));
    let device = config.device.start(config.threads)?;
    let mut manifest = report::Manifest::new("bounds", config, report::device_name(device))?
        .seed(settings.seed)?
        .with("weights", &weights)?
        .with("proxy", proxy)?
        .with("arc", arc)?
        .with("settings", settings)?;
    let model = crate::train::load_classifier(config, &weights)?;
    let proxy_set = read_image_npz(proxy, model.test.num_classes())?;
    let gamma = config.synthetic.as_ref().map(|s| s.gamma);
    let (summary, samples) = measure(
        config, &weights, &model, &proxy_set, gamma, four_arc, settings, show,
    )?;
    write(out, &summary, &samples)?;
    manifest.write(out, &["bounds.json", "report.md", "samples.csv"])?;
    Ok(summary)
}

/// 4·ARC from an `arc` run's `summary.json`.
fn read_arc(path: &Path) -> Result<f64> {
    let text = config::read_text(path)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not JSON ({e})")))?;
    value
        .get("arc_mean")
        .and_then(serde_json::Value::as_f64)
        .filter(|a| a.is_finite() && *a >= 0.0)
        .map(|a| 4.0 * a)
        .ok_or_else(|| {
            Error::file(
                path,
                "expected an `arc` summary with a finite `arc_mean` ≥ 0",
            )
        })
}

/// Observes both sides and estimates every proximity; returns the summary and the per-point
/// rows (real points first).
#[allow(clippy::too_many_arguments)]
pub fn measure(
    config: &TrainConfig,
    weights: &Path,
    model: &LoadedClassifier,
    proxy: &ImageDataset,
    gamma: Option<f64>,
    four_arc: Option<f64>,
    settings: &BoundsSettings,
    show: bool,
) -> Result<(BoundsSummary, Vec<SampleRow>)> {
    settings.validate("bounds.")?;
    if proxy.shape() != model.test.shape() {
        return Err(Error::invalid(
            "proxy",
            format!(
                "images of {:?} (H, W, C) like the classifier's data, got {:?}",
                model.test.shape(),
                proxy.shape()
            ),
        ));
    }
    let classes = model.test.num_classes();
    let device = model.x.device();
    let (proxy_x, proxy_y) = tensors(proxy, device);
    let m = settings.points.min(proxy.len()).min(model.test.len()) as i64;
    let held_out = (proxy.len() as i64 - m, m);
    let eval = EvalSettings {
        pgd: None,
        autoattack: settings.eps.map(|e| {
            (
                settings.autoattack,
                Threat {
                    norm: settings.autoattack_norm.unwrap_or(settings.norm),
                    epsilon: e,
                },
            )
        }),
        distance: Some(MinimalDistance {
            threat: Threat {
                norm: settings.norm,
                epsilon: 0.0,
            },
            max_radius: settings.max_radius,
            fab_iterations: 100,
            bisection_steps: 10,
            pgd_steps: 20,
        }),
        each_attack: false,
        limit: m as usize,
        batch_size: 500,
        seed: settings.seed,
    };
    let observe = |x: &Tensor, y: &Tensor| -> Result<Vec<SampleResult>> {
        let (_, rows) = evaluate(&model.net, x, y, classes, &eval, show)?;
        Ok(rows)
    };
    let real_rows = observe(&model.x, &model.y)?;
    let proxy_rows = observe(
        &proxy_x.narrow(0, held_out.0, held_out.1),
        &proxy_y.narrow(0, held_out.0, held_out.1),
    )?;
    let probs = class_proportions(&real_rows, classes);
    let (real_strata, proxy_strata) = (
        distance_strata(&real_rows, classes, settings.max_radius),
        distance_strata(&proxy_rows, classes, settings.max_radius),
    );
    let enough = |strata: &[Vec<f64>], side: &str| -> Result<()> {
        match strata
            .iter()
            .zip(&probs)
            .position(|(s, p)| *p > 0.0 && s.len() < 2)
        {
            Some(y) => Err(Error::invalid(
                "points",
                format!(
                    "at least 2 {side} points of every class (class {y} has fewer); raise the number of points"
                ),
            )),
            None => Ok(()),
        }
    };
    enough(&real_strata, "real")?;
    enough(&proxy_strata, "proxy")?;
    let present: Vec<usize> = (0..classes).filter(|y| probs[*y] > 0.0).collect();
    let pick = |strata: &[Vec<f64>]| -> Vec<Vec<f64>> {
        present.iter().map(|y| strata[*y].clone()).collect()
    };
    let weights_of: Vec<f64> = present.iter().map(|y| probs[*y]).collect();
    let rob = |strata: &[Vec<f64>]| -> Result<Interval> {
        Ok(Estimate::stratified(&pick(strata), &weights_of, 0.95)?.into())
    };
    let mut both = pick(&real_strata);
    both.extend(pick(&proxy_strata));
    let mut signed = weights_of.clone();
    signed.extend(weights_of.iter().map(|w| -w));
    let delta_rob: Interval = Estimate::stratified(&both, &signed, 0.95)?.into();

    let observed = |rows: &[SampleResult], rob: Interval| Observed {
        points: rows.len(),
        clean_accuracy: fraction(&rows.iter().map(|r| r.clean_correct).collect::<Vec<_>>()),
        autoattack_robust_accuracy: settings.eps.map(|_| {
            fraction(
                &rows
                    .iter()
                    .map(|r| r.autoattack_robust == Some(true))
                    .collect::<Vec<_>>(),
            )
        }),
        rob,
        unbroken: rows.iter().filter(|r| r.distance.is_none()).count(),
    };
    let real = observed(&real_rows, rob(&real_strata)?);
    let proxy_observed = observed(&proxy_rows, rob(&proxy_strata)?);

    let bar = report::progress(3, "proximity estimates", show);
    let real_points = class_rows(&model.x, model.test.labels(), classes);
    let proxy_points = class_rows(&proxy_x, proxy.labels(), classes);
    let ot = subsample_cwd_w1(
        &real_points,
        &proxy_points,
        &probs,
        settings.ot_per_class,
        settings.ot_repeats,
        settings.seed,
        settings.norm,
    )?;
    bar.inc(1);
    let pixels = fitted_w2(&real_points, &proxy_points, &probs)?;
    bar.inc(1);
    let (_features_vs, features) =
        load_features(config, weights, input_shape(&model.test), classes as i64)?;
    let feature_rows = |x: &Tensor, labels: &[i64]| -> Vec<Tensor> {
        class_rows(&features_of(&features, x), labels, classes)
    };
    let in_features = fitted_w2(
        &feature_rows(&model.x, model.test.labels()),
        &feature_rows(&proxy_x, proxy.labels()),
        &probs,
    )?;
    bar.finish_and_clear();

    let lower_delta = delta_rob.mean.abs() - delta_rob.half_width;
    let theorem6 = |v: f64| gamma.map(|g| (1.0 - g) * v);
    let entry = |name: &str, kind: &str, value: f64, comparable: bool| Proximity {
        name: name.into(),
        kind: kind.into(),
        value,
        consistent_with_theorem1: comparable.then_some(lower_delta <= value),
        theorem6_bound: if comparable { theorem6(value) } else { None },
    };
    let mut proximity = vec![
        entry(
            "ot_w1",
            "upper estimate of cwd_W1 (exact OT between class-conditional subsamples)",
            ot,
            true,
        ),
        entry(
            "gaussian_w2_pixels",
            "Gaussians fitted per class (a lower bound of W2, not a bound on cwd_W1)",
            pixels,
            true,
        ),
        entry(
            "gaussian_w2_features",
            "Gaussians fitted per class in the classifier's feature space (feature units)",
            in_features,
            false,
        ),
    ];
    if let Some(a) = four_arc {
        proximity.push(entry(
            "four_arc",
            "4·ARC (a lower estimate of cwd)",
            a,
            true,
        ));
    }
    let mut rows: Vec<SampleRow> = Vec::new();
    rows.extend(real_rows.iter().map(|r| SampleRow::of("real", r, 0)));
    rows.extend(
        proxy_rows
            .iter()
            .map(|r| SampleRow::of("proxy", r, held_out.0 as usize)),
    );
    Ok((
        BoundsSummary {
            real,
            proxy: proxy_observed,
            delta_rob,
            gamma,
            theorem6_observed: theorem6(delta_rob.mean.abs()),
            proximity,
            settings: settings.clone(),
        },
        rows,
    ))
}

/// One row of `samples.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct SampleRow {
    pub set: &'static str,
    pub index: usize,
    pub label: i64,
    pub clean_correct: bool,
    pub autoattack_robust: Option<bool>,
    pub distance_fab: Option<f64>,
    pub distance_bisection: Option<f64>,
    pub distance: Option<f64>,
}

impl SampleRow {
    fn of(set: &'static str, r: &SampleResult, offset: usize) -> Self {
        SampleRow {
            set,
            index: offset + r.index,
            label: r.label,
            clean_correct: r.clean_correct,
            autoattack_robust: r.autoattack_robust,
            distance_fab: r.distance_fab,
            distance_bisection: r.distance_bisection,
            distance: r.distance,
        }
    }
}

/// Class proportions of the evaluated points.
fn class_proportions(rows: &[SampleResult], classes: usize) -> Vec<f64> {
    let mut counts = vec![0.0; classes];
    for r in rows {
        counts[r.label as usize] += 1.0;
    }
    counts
        .iter()
        .map(|c| c / rows.len().max(1) as f64)
        .collect()
}

/// Each point's distance (the largest radius where no attack broke it), grouped by class.
fn distance_strata(rows: &[SampleResult], classes: usize, max_radius: f64) -> Vec<Vec<f64>> {
    let mut strata = vec![Vec::new(); classes];
    for r in rows {
        strata[r.label as usize].push(r.distance.unwrap_or(max_radius).min(max_radius));
    }
    strata
}

/// The rows of `x` (N × …) flattened to f64 on the CPU, grouped by label.
fn class_rows(x: &Tensor, labels: &[i64], classes: usize) -> Vec<Tensor> {
    let flat = x
        .flatten(1, -1)
        .to_kind(Kind::Double)
        .to_device(tch::Device::Cpu);
    let labels = Tensor::from_slice(labels);
    (0..classes as i64)
        .map(|k| flat.index_select(0, &labels.eq(k).nonzero().squeeze_dim(1)))
        .collect()
}

/// Rows `rows` of the f64 matrix `t` as a faer matrix.
fn to_mat(t: &Tensor, rows: &[i64]) -> Mat<f64> {
    let picked = t.index_select(0, &Tensor::from_slice(rows)).contiguous();
    let d = picked.size()[1] as usize;
    let values: Vec<f64> = Vec::try_from(picked.reshape([-1])).unwrap_or_default();
    Mat::from_fn(rows.len(), d, |i, j| values[i * d + j])
}

/// `Σ_y p_y W1(Ŝ_y, Ŝ~_y)` by exact OT (ground metric `metric`) between subsamples of `per_class`
/// rows of each class (all of a class that has fewer) drawn without replacement, averaged over
/// `repeats` draws seeded by `seed`; `real[y]` and `proxy[y]` are the f64 rows of class `y`.
/// An upper estimate of `cwd_W1`: the expected empirical W1 exceeds the W1 of the distributions,
/// and falls towards it as the subsamples grow.
pub fn subsample_cwd_w1(
    real: &[Tensor],
    proxy: &[Tensor],
    probs: &[f64],
    per_class: usize,
    repeats: usize,
    seed: u64,
    metric: Norm,
) -> Result<f64> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x07);
    let mut total = 0.0;
    for _ in 0..repeats {
        for (y, p) in probs.iter().enumerate() {
            if *p == 0.0 {
                continue;
            }
            let (n_real, n_proxy) = (real[y].size()[0], proxy[y].size()[0]);
            let k = (per_class as i64).min(n_real).min(n_proxy) as usize;
            if k == 0 {
                return Err(Error::invalid(
                    "proxy",
                    format!("samples of class {y}, which the real points hold"),
                ));
            }
            let mut draw = |t: &Tensor, n: i64| {
                let mut order: Vec<i64> = (0..n).collect();
                order.shuffle(&mut rng);
                EmpiricalMeasure::uniform(to_mat(t, &order[..k]))
            };
            let (a, b) = (draw(&real[y], n_real)?, draw(&proxy[y], n_proxy)?);
            total += p * wasserstein(&a, &b, 1, metric)?.distance;
        }
    }
    Ok(total / repeats.max(1) as f64)
}

/// `Σ_y p_y W2(N(m_y, S_y), N(m~_y, S~_y))` with Gaussians fitted to each class's rows.
fn fitted_w2(real: &[Tensor], proxy: &[Tensor], probs: &[f64]) -> Result<f64> {
    let mut total = 0.0;
    for (y, p) in probs.iter().enumerate() {
        if *p == 0.0 {
            continue;
        }
        if real[y].size()[0] < 2 || proxy[y].size()[0] < 2 {
            return Err(Error::invalid(
                "proxy",
                format!("at least 2 samples of class {y} on each side to fit a Gaussian"),
            ));
        }
        total += p * wasserstein2(&fitted_gaussian(&real[y])?, &fitted_gaussian(&proxy[y])?)?;
    }
    Ok(total)
}

/// Writes `bounds.json`, `report.md` and `samples.csv` under `out`.
pub fn write(out: &Path, summary: &BoundsSummary, samples: &[SampleRow]) -> Result<()> {
    report::create_run_dir(out)?;
    report::write_json(&out.join("bounds.json"), summary)?;
    report::write_csv(&out.join("samples.csv"), samples)?;
    report::atomic_write(&out.join("report.md"), markdown(summary).as_bytes())
}

fn markdown(s: &BoundsSummary) -> String {
    use std::fmt::Write;
    let mut text = String::from("# Bound against observed (Theorem 1)\n\n");
    let percent = |v: Option<f64>| v.map_or("—".to_string(), |a| format!("{:.1}%", 100.0 * a));
    text.push_str(&report::markdown_table(
        &[
            "set",
            "points",
            "clean",
            "AutoAttack robust",
            "Rob(h, ·) ± 95%",
            "unbroken",
        ],
        [("real test", &s.real), ("held-out proxy", &s.proxy)]
            .iter()
            .map(|(name, o)| {
                vec![
                    name.to_string(),
                    o.points.to_string(),
                    percent(Some(o.clean_accuracy)),
                    percent(o.autoattack_robust_accuracy),
                    format!("{:.4} ± {:.4}", o.rob.mean, o.rob.half_width),
                    o.unbroken.to_string(),
                ]
            }),
    ));
    let _ = writeln!(
        text,
        "\nΔRob = Rob(h, real) − Rob(h, proxy) = {:+.4} ± {:.4} ({} minimal distances, largest radius {}).\n",
        s.delta_rob.mean,
        s.delta_rob.half_width,
        s.settings.norm.name(),
        s.settings.max_radius
    );
    text.push_str(&report::markdown_table(
        &[
            "estimate",
            "what it is",
            "value",
            "|ΔRob| ≤ it (Theorem 1)",
            "(1 − γ)·value (Theorem 6)",
        ],
        s.proximity.iter().map(|p| {
            vec![
                p.name.clone(),
                p.kind.clone(),
                format!("{:.4}", p.value),
                match p.consistent_with_theorem1 {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "not comparable".into(),
                },
                p.theorem6_bound.map_or("—".into(), |v| format!("{v:.4}")),
            ]
        }),
    ));
    if let (Some(g), Some(o)) = (s.gamma, s.theorem6_observed) {
        let _ = writeln!(
            text,
            "\nTrained on the mixture γ·real + (1 − γ)·proxy with γ = {g}: observed (1 − γ)·|ΔRob| = {o:.4}."
        );
    }
    text
}
