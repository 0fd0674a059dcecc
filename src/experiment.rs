//! PORT experiments on the embedded default (paper Section 3's comparisons at laptop scale):
//! a small real training split, proxy sets from each generator of [`crate::proxy`], and for every
//! seed a baseline (adversarial training on the real split alone) against PORT with each proxy,
//! γ and synthetic-set size of the grid — Table 1's comparison, Figure 7's γ sweep and Figure 9's
//! size sweep from one config. Robust accuracy by AutoAttack on the test split, or certified
//! accuracy of the randomized-smoothing classifier at one ℓ2 radius (Section 3.1.2, Table 5;
//! [`crate::smoothing`]).
//!
//! Outputs under the run folder: `runs.csv` (one row per trained model), `summary.csv` (mean and
//! standard deviation over seeds per arm), `robust_accuracy.{png,svg}` (robust accuracy of every
//! arm and seed), `report.md` (which proxies help and by how much), `manifest.json`, and the
//! proxy sets and each model's training folder. Under certification also `certified.csv`
//! (`arm,seed,radius,certified_accuracy`: every run's certified-accuracy curve) and
//! `certified_accuracy.{png,svg}` (the seed-mean curve of each arm, Figure 2), and each model's
//! `certify/samples.csv` (the `certify` command's per-image table).
//!
//! Each finished run also leaves `models/<run>/result.json` (its row and the settings that made
//! it); running the same config again reuses those rows, so an interrupted experiment continues
//! where it stopped, and a changed setting retrains the runs it affects.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attack::{Threat, Version};
use crate::bounds::{BoundsSettings, BoundsSummary};
use crate::config::{self, Validate};
use crate::error::{Error, Result};
use crate::eval::{EvalSettings, evaluate};
use crate::proxy::{ProxyKind, proxy_set};
use crate::report::{self, Axes, Labels, Series, plot};
use crate::smoothing::{CertifiedPoint, Mode, Smooth, SmoothingSettings};
use crate::train::TrainConfig;
use crate::train::port::{SyntheticConfig, SyntheticImages};

pub mod jobs;

/// `experiments/mnist_port*.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortExperiment {
    pub name: String,
    /// Real training images used (the first N of the training split).
    pub real_subset: usize,
    /// Proxy generators the experiment fits on the real split itself.
    #[serde(default)]
    pub proxies: Vec<ProxyKind>,
    /// Proxy sets made elsewhere (a trained generator's samples: `generator sample`), by name.
    #[serde(default)]
    pub proxy_sets: Vec<ProxySetFile>,
    /// Sizes of the synthetic sets (Figure 9's axis); the first N of one generated set.
    pub synthetic_counts: Vec<usize>,
    /// γ values (Figure 7's axis).
    pub gammas: Vec<f64>,
    pub seeds: Vec<u64>,
    /// Also train the real-only baseline for every seed.
    #[serde(default = "yes")]
    pub baseline: bool,
    /// The training template: model, epochs, objective, learning rate, … (`train_subset`,
    /// `seed`, `synthetic` and `name` are set per run).
    pub train: TrainConfig,
    pub evaluation: ExperimentEvaluation,
    /// `[bounds]`: the bound-against-observed report ([`crate::bounds`]) for every PORT arm,
    /// against held-out images of its proxy set (absent: none).
    #[serde(default)]
    pub bounds: Option<BoundsSettings>,
    /// `[slurm]`: resources per cell of the job array `experiment --slurm` writes.
    #[serde(default)]
    pub slurm: Option<jobs::SlurmSettings>,
}

/// `proxy_sets = [{ name = "ddpm", npz = "runs/mnist_ddpm/samples.npz" }]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySetFile {
    pub name: String,
    pub npz: PathBuf,
}

fn yes() -> bool {
    true
}

/// `[evaluation]`: either the AutoAttack chain and the threat model robust accuracy is reported
/// under (`autoattack`, `threat`), or randomized-smoothing certification (`[evaluation.certify]`,
/// the `certify` command's settings) with the ℓ2 radius whose certified accuracy is reported
/// (`certified_radius`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentEvaluation {
    #[serde(default)]
    pub autoattack: Option<Version>,
    #[serde(default)]
    pub threat: Option<Threat>,
    #[serde(default)]
    pub certify: Option<SmoothingSettings>,
    #[serde(default)]
    pub certified_radius: Option<f64>,
    /// Test points evaluated (0: all).
    #[serde(default)]
    pub limit: usize,
}

/// What one run's robust accuracy means.
enum Robustness<'a> {
    /// AutoAttack robust accuracy under a threat model.
    Empirical(Version, Threat),
    /// Certified accuracy of the smoothed classifier at an ℓ2 radius.
    Certified(&'a SmoothingSettings, f64),
}

impl ExperimentEvaluation {
    fn validate(&self) -> Result<()> {
        self.robustness().map(|_| ())
    }

    fn robustness(&self) -> Result<Robustness<'_>> {
        match (self, self.certify.as_ref()) {
            (
                ExperimentEvaluation {
                    autoattack: Some(version),
                    threat: Some(threat),
                    certified_radius: None,
                    ..
                },
                None,
            ) => {
                threat.validate("evaluation.threat")?;
                Ok(Robustness::Empirical(*version, *threat))
            }
            (
                ExperimentEvaluation {
                    autoattack: None,
                    threat: None,
                    certified_radius: Some(radius),
                    ..
                },
                Some(settings),
            ) => {
                settings
                    .validate()
                    .map_err(|e| config::in_section("evaluation.certify", e))?;
                config::non_negative_finite("evaluation.certified_radius", *radius)?;
                Ok(Robustness::Certified(settings, *radius))
            }
            _ => Err(Error::invalid(
                "evaluation",
                "either `autoattack` and `threat`, or `[evaluation.certify]` and `certified_radius`",
            )),
        }
    }
}

/// One trained model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRow {
    pub arm: String,
    pub proxy: String,
    pub gamma: Option<f64>,
    pub synthetic_images: usize,
    pub seed: u64,
    pub clean_accuracy: f64,
    pub robust_accuracy: f64,
    pub train_seconds: f64,
}

/// Mean and spread over seeds of one arm.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    pub arm: String,
    pub seeds: usize,
    pub clean_mean: f64,
    pub clean_std: f64,
    pub robust_mean: f64,
    pub robust_std: f64,
    /// Robust accuracy minus the baseline's at the same seed, in percentage points: the mean
    /// over seeds and its 95% Student-t interval (absent without a baseline; the interval needs
    /// two seeds).
    pub robust_gain_pp: Option<f64>,
    pub robust_gain_low_pp: Option<f64>,
    pub robust_gain_high_pp: Option<f64>,
    /// Runs whose model predicts a single class (clean accuracy at most 1.5 / classes).
    pub collapsed_runs: usize,
}

impl std::fmt::Display for SummaryRow {
    /// `ARM clean C% ± S  robust R% ± S (+G pp)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<40} clean {:.2}% ± {:.2}  robust {:.2}% ± {:.2}",
            self.arm,
            100.0 * self.clean_mean,
            100.0 * self.clean_std,
            100.0 * self.robust_mean,
            100.0 * self.robust_std
        )?;
        match self.robust_gain_pp {
            Some(g) => write!(f, " ({g:+.2} pp)"),
            None => Ok(()),
        }
    }
}

/// One cell of the grid.
struct Arm {
    name: String,
    proxy: Option<ArmProxy>,
    gamma: Option<f64>,
    count: usize,
}

/// The proxy set of an arm: its name, its file, and what made it (for the settings key).
#[derive(Clone)]
struct ArmProxy {
    name: String,
    file: PathBuf,
    /// The file as the settings key names it (relative to the experiment for fitted proxies).
    key_file: PathBuf,
    origin: serde_json::Value,
}

impl PortExperiment {
    /// Reads and validates; errors name the file and field.
    pub fn load(path: &Path) -> Result<Self> {
        config::load(path)
    }
}

impl Validate for PortExperiment {
    fn validate(&self) -> Result<()> {
        if self.real_subset < 10 {
            return Err(Error::invalid("real_subset", "at least 10 real images"));
        }
        if self.seeds.is_empty()
            || (self.proxies.is_empty() && self.proxy_sets.is_empty())
            || self.gammas.is_empty()
            || self.synthetic_counts.is_empty()
        {
            return Err(Error::invalid(
                "seeds",
                "non-empty `seeds`, `proxies` or `proxy_sets`, `gammas` and `synthetic_counts`",
            ));
        }
        let mut names: Vec<&str> = self.proxies.iter().map(|k| k.name()).collect();
        names.extend(self.proxy_sets.iter().map(|p| p.name.as_str()));
        if let Some(name) = names
            .iter()
            .enumerate()
            .find_map(|(i, n)| names[..i].contains(n).then_some(n))
        {
            return Err(Error::invalid(
                "proxy_sets",
                format!("one proxy per name, got `{name}` twice"),
            ));
        }
        if let Some(g) = self.gammas.iter().find(|g| !(0.0..=1.0).contains(*g)) {
            return Err(Error::invalid(
                "gammas",
                format!("weights in [0, 1], got {g}"),
            ));
        }
        if self.synthetic_counts.contains(&0) {
            return Err(Error::invalid("synthetic_counts", "sizes ≥ 1"));
        }
        self.evaluation.validate()?;
        if let Some(b) = &self.bounds {
            b.validate("bounds.")?;
        }
        if let Some(s) = &self.slurm {
            s.validate()?;
        }
        self.train
            .validate()
            .map_err(|e| config::in_section("train", e))
    }
}

impl PortExperiment {
    fn arms(&self, proxy_files: &[ArmProxy]) -> Vec<Arm> {
        let mut arms = Vec::new();
        if self.baseline {
            arms.push(Arm {
                name: "baseline".into(),
                proxy: None,
                gamma: None,
                count: 0,
            });
        }
        for proxy in proxy_files {
            for &gamma in &self.gammas {
                for &count in &self.synthetic_counts {
                    let name = format!("port-{}-g{gamma}-n{count}", proxy.name);
                    arms.push(Arm {
                        name,
                        proxy: Some(proxy.clone()),
                        gamma: Some(gamma),
                        count,
                    });
                }
            }
        }
        arms
    }
}

/// What determines a run's row, as text: its training config (the proxy file named relative
/// to the run folder, so a run copied into another experiment's `models/` is recognised), the
/// proxy generator and what it was fitted on, and the evaluation.
fn run_settings(config: &PortExperiment, train: &TrainConfig, arm: &Arm) -> String {
    let mut train = train.clone();
    if let (Some(synthetic), Some(proxy)) = (train.synthetic.as_mut(), arm.proxy.as_ref()) {
        synthetic.images = SyntheticImages::Npz(proxy.key_file.clone());
    }
    let proxy = arm.proxy.as_ref().map(|p| &p.origin);
    let mut key =
        serde_json::json!({ "train": train, "proxy": proxy, "evaluation": &config.evaluation });
    if let (Some(bounds), Some(_)) = (&config.bounds, arm.proxy.as_ref()) {
        key["bounds"] = serde_json::json!(bounds);
    }
    key.to_string()
}

/// The row, certified-accuracy curve (empty under AutoAttack) and bounds row of a run finished
/// earlier with exactly these settings, if `result.json` holds one.
fn finished_run(result_file: &Path, settings: &str) -> Option<CellOutcome> {
    let text = std::fs::read_to_string(result_file).ok()?;
    let saved: serde_json::Value = serde_json::from_str(&text).ok()?;
    if saved.get("settings")?.as_str()? != settings {
        return None;
    }
    let row = serde_json::from_value(saved.get("row")?.clone()).ok()?;
    let curve = match saved.get("curve") {
        Some(curve) => serde_json::from_value(curve.clone()).ok()?,
        None => Vec::new(),
    };
    let bounds = match saved.get("bounds") {
        Some(serde_json::Value::Null) | None => None,
        Some(b) => Some(serde_json::from_value(b.clone()).ok()?),
    };
    Some((row, curve, bounds))
}

/// One PORT run's bound-against-observed figures (`bounds.csv`; the whole report is in the
/// run's `bounds/` folder).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BoundsRow {
    pub arm: String,
    pub seed: u64,
    /// Whether the evaluated proxy images lie outside the part of the set the run trained on.
    pub proxy_held_out: bool,
    pub rob_real: f64,
    pub rob_proxy: f64,
    pub delta_rob: f64,
    pub delta_rob_half_width: f64,
    pub ot_w1: f64,
    pub gaussian_w2_pixels: f64,
    pub gaussian_w2_features: f64,
    /// `|ΔRob| − half-width ≤ ot_w1`.
    pub theorem1_consistent: bool,
    /// `(1 − γ)·|ΔRob|` and `(1 − γ)·ot_w1`.
    pub theorem6_observed: Option<f64>,
    pub theorem6_bound: Option<f64>,
}

impl BoundsRow {
    fn of(arm: &str, seed: u64, proxy_held_out: bool, s: &BoundsSummary) -> Self {
        let value = |name: &str| {
            s.proximity
                .iter()
                .find(|p| p.name == name)
                .map_or(f64::NAN, |p| p.value)
        };
        let ot = s.proximity.iter().find(|p| p.name == "ot_w1");
        BoundsRow {
            arm: arm.into(),
            seed,
            proxy_held_out,
            rob_real: s.real.rob.mean,
            rob_proxy: s.proxy.rob.mean,
            delta_rob: s.delta_rob.mean,
            delta_rob_half_width: s.delta_rob.half_width,
            ot_w1: value("ot_w1"),
            gaussian_w2_pixels: value("gaussian_w2_pixels"),
            gaussian_w2_features: value("gaussian_w2_features"),
            theorem1_consistent: ot.and_then(|p| p.consistent_with_theorem1) == Some(true),
            theorem6_observed: s.theorem6_observed,
            theorem6_bound: ot.and_then(|p| p.theorem6_bound),
        }
    }
}

/// The bounds report of the PORT run in `run_dir` against held-out images of its proxy set,
/// written to `run_dir/bounds/`; AutoAttack under the experiment's threat unless `[bounds]`
/// names a radius.
fn bounds_of_run(
    config: &PortExperiment,
    settings: &BoundsSettings,
    train: &TrainConfig,
    run_dir: &Path,
    arm: &Arm,
    seed: u64,
) -> Result<Option<BoundsRow>> {
    let Some(proxy) = &arm.proxy else {
        return Ok(None);
    };
    let weights = run_dir.join("weights.safetensors");
    let model = crate::train::load_classifier(train, &weights)?;
    let set = crate::data::read_image_npz(&proxy.file, model.test.num_classes())?;
    let held_out = arm.count + settings.points <= set.len();
    let mut settings = settings.clone();
    settings.seed = seed;
    if let (None, Some(threat)) = (settings.eps, config.evaluation.threat) {
        settings.eps = Some(threat.epsilon);
        settings.autoattack_norm = Some(threat.norm);
        settings.autoattack = config.evaluation.autoattack.unwrap_or(settings.autoattack);
    }
    let gamma = train.synthetic.as_ref().map(|s| s.gamma);
    let (summary, samples) =
        crate::bounds::measure(train, &weights, &model, &set, gamma, None, &settings, false)?;
    crate::bounds::write(&run_dir.join("bounds"), &summary, &samples)?;
    Ok(Some(BoundsRow::of(&arm.name, seed, held_out, &summary)))
}

/// Clean and robust accuracy of the model trained in `run_dir`, and its certified-accuracy curve
/// under certification. AutoAttack: clean accuracy of the base classifier and robust accuracy
/// after the chain. Certification: the smoothed classifier's accuracy (certified accuracy at
/// radius 0) and its certified accuracy at `certified_radius`; the per-image table goes to
/// `run_dir/certify/samples.csv`. Noise and attacks are seeded with the run's seed.
fn evaluate_run(
    config: &PortExperiment,
    train: &TrainConfig,
    run_dir: &Path,
    seed: u64,
) -> Result<(f64, f64, Vec<CertifiedPoint>)> {
    let model = crate::train::load_classifier(train, &run_dir.join("weights.safetensors"))?;
    let limit = config.evaluation.limit;
    match config.evaluation.robustness()? {
        Robustness::Empirical(version, threat) => {
            let settings = EvalSettings {
                pgd: None,
                autoattack: Some((version, threat)),
                distance: None,
                each_attack: false,
                limit,
                batch_size: 500,
                seed,
            };
            let (summary, _) = evaluate(
                &model.net,
                &model.x,
                &model.y,
                model.test.num_classes(),
                &settings,
                false,
            )?;
            let robust = summary.autoattack_robust_accuracy.unwrap_or(f64::NAN);
            Ok((summary.clean_accuracy, robust, Vec::new()))
        }
        Robustness::Certified(settings, radius) => {
            let smooth = Smooth {
                base: &model.net,
                classes: model.test.num_classes() as i64,
                settings: *settings,
            };
            let points = if limit > 0 {
                limit.min(model.test.len())
            } else {
                model.test.len()
            };
            let indices: Vec<usize> = (0..points).collect();
            let samples = crate::smoothing::smooth_points(
                &smooth,
                &model.x,
                &model.y,
                &indices,
                Mode::Certify,
                seed,
                false,
            )?;
            report::write_csv(&run_dir.join("certify").join("samples.csv"), &samples)?;
            let mut radii = crate::smoothing::curve_radii(settings);
            radii.push(radius);
            let mut curve =
                crate::smoothing::summarise(Mode::Certify, settings, &samples, &radii).certified;
            let at_radius = curve.pop().map_or(f64::NAN, |p| p.certified_accuracy);
            Ok((curve[0].certified_accuracy, at_radius, curve))
        }
    }
}

/// One point of one run's certified-accuracy curve (`certified.csv`).
#[derive(Clone, Debug, Serialize)]
struct CurveRow {
    arm: String,
    seed: u64,
    radius: f64,
    certified_accuracy: f64,
}

fn curve_rows(arm: &str, seed: u64, curve: &[CertifiedPoint]) -> Vec<CurveRow> {
    curve
        .iter()
        .map(|p| CurveRow {
            arm: arm.to_string(),
            seed,
            radius: p.radius,
            certified_accuracy: p.certified_accuracy,
        })
        .collect()
}

/// Mean and sample standard deviation over seeds (0 for a single seed).
fn mean_std(v: &[f64]) -> (f64, f64) {
    use statrs::statistics::Statistics;
    let std = if v.len() > 1 { v.std_dev() } else { 0.0 };
    (v.mean(), std)
}

/// The grid of an experiment: its arms (baseline and PORT arms, with their proxy files written
/// under `dir/proxies/`) and its cells, one training run per (seed, arm), seeds outermost.
pub struct Grid {
    arms: Vec<Arm>,
    /// (seed, arm index) per cell, in the order a sequential run trains them.
    cells: Vec<(u64, usize)>,
}

/// How [`Grid::prepare`] treats proxy files already on disk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ProxyFiles {
    /// Fit and write every proxy set (a sequential run, or the parent of parallel cells).
    Write,
    /// Keep the files present (deterministic, written whole by a rename) and write the missing
    /// ones: a cell run beside other cells.
    Reuse,
    /// Touch nothing: only the layout of the cells is wanted (`--list`).
    Skip,
}

impl Grid {
    /// Fits the experiment's proxies and lays out its cells under `dir`.
    pub fn prepare(config: &PortExperiment, dir: &Path, files: ProxyFiles) -> Result<Self> {
        config.validate()?;
        if files != ProxyFiles::Skip {
            report::create_run_dir(dir)?;
        }
        let largest = *config
            .synthetic_counts
            .iter()
            .max()
            .expect("validated non-empty");
        let mut proxy_files = Vec::new();
        for kind in &config.proxies {
            let key_file = PathBuf::from("proxies").join(format!("{}.npz", kind.name()));
            let file = dir.join(&key_file);
            let generated = largest + config.bounds.as_ref().map_or(0, |b| b.points);
            if files == ProxyFiles::Write || (files == ProxyFiles::Reuse && !file.exists()) {
                let (train, _) = config.train.dataset.load()?;
                let samples = proxy_set(
                    *kind,
                    &train,
                    config.real_subset,
                    generated,
                    config.seeds[0],
                )?;
                crate::data::write_image_npz(&file, &samples)?;
            }
            proxy_files.push(ArmProxy {
                name: kind.name().into(),
                file,
                key_file,
                origin: serde_json::json!({ "kind": kind, "real_subset": config.real_subset, "seed": config.seeds[0], "generated": generated }),
            });
        }
        for set in &config.proxy_sets {
            let crc32 = match files {
                ProxyFiles::Skip => 0,
                _ => crate::npz::file_crc32(&set.npz)?,
            };
            proxy_files.push(ArmProxy {
                name: set.name.clone(),
                file: set.npz.clone(),
                key_file: set.npz.clone(),
                origin: serde_json::json!({ "set": set.name, "npz": set.npz, "crc32": crc32 }),
            });
        }
        let arms = config.arms(&proxy_files);
        let cells = config
            .seeds
            .iter()
            .flat_map(|&seed| (0..arms.len()).map(move |a| (seed, a)))
            .collect();
        Ok(Grid { arms, cells })
    }

    /// The cells' stable ids (`<arm>-s<seed>`, also the run folder's name under `models/`), in
    /// order; a cell may be named by its id or its position.
    pub fn cell_ids(&self) -> Vec<String> {
        self.cells
            .iter()
            .map(|&(seed, a)| format!("{}-s{seed}", self.arms[a].name))
            .collect()
    }

    /// The position of the cell named `id` (an id of [`Grid::cell_ids`] or a position).
    pub fn cell_index(&self, id: &str) -> Result<usize> {
        let ids = self.cell_ids();
        ids.iter()
            .position(|c| c == id)
            .or_else(|| id.parse::<usize>().ok().filter(|&i| i < ids.len()))
            .ok_or_else(|| {
                Error::invalid(
                    "--cell",
                    format!(
                        "a cell id of `experiment --list` or a position below {}, got {id:?}",
                        ids.len()
                    ),
                )
            })
    }

    /// The training config, run folder and settings key of cell `index`.
    fn cell(
        &self,
        config: &PortExperiment,
        dir: &Path,
        index: usize,
    ) -> (TrainConfig, PathBuf, String) {
        let (seed, a) = self.cells[index];
        let arm = &self.arms[a];
        let mut train_config = config.train.clone();
        train_config.name = format!("{}-s{seed}", arm.name);
        train_config.seed = seed;
        train_config.train_subset = config.real_subset;
        train_config.synthetic = arm.proxy.as_ref().map(|p| SyntheticConfig {
            images: SyntheticImages::Npz(p.file.clone()),
            batch_size: 0,
            gamma: arm.gamma.unwrap_or(0.4),
            limit: arm.count,
        });
        let run_dir = dir.join("models").join(&train_config.name);
        let settings = run_settings(config, &train_config, arm);
        (train_config, run_dir, settings)
    }

    /// The recorded outcome of cell `index`, if it finished with its current settings.
    fn finished(&self, config: &PortExperiment, dir: &Path, index: usize) -> Option<CellOutcome> {
        let (_, run_dir, settings) = self.cell(config, dir, index);
        finished_run(&run_dir.join("result.json"), &settings)
    }

    /// Trains and evaluates cell `index` unless it finished with these settings already, and
    /// records its outcome in `models/<id>/result.json`.
    pub fn run_cell(&self, config: &PortExperiment, dir: &Path, index: usize) -> Result<()> {
        if self.finished(config, dir, index).is_some() {
            return Ok(());
        }
        let (seed, a) = self.cells[index];
        let arm = &self.arms[a];
        let (train_config, run_dir, settings) = self.cell(config, dir, index);
        // The settings key decided this run is stale or new: replace whatever the folder holds.
        let outcome = crate::train::run(
            &train_config,
            &run_dir,
            false,
            crate::train::Start::Overwrite,
        )?;
        let (clean_accuracy, robust_accuracy, run_curve) =
            evaluate_run(config, &train_config, &run_dir, seed)?;
        let row = RunRow {
            arm: arm.name.clone(),
            proxy: arm.proxy.as_ref().map_or("none".into(), |p| p.name.clone()),
            gamma: arm.gamma,
            synthetic_images: arm.count,
            seed,
            clean_accuracy,
            robust_accuracy,
            train_seconds: outcome.epochs.iter().map(|e| e.seconds).sum(),
        };
        let bounds = match &config.bounds {
            Some(b) => bounds_of_run(config, b, &train_config, &run_dir, arm, seed)?,
            None => None,
        };
        report::write_json(
            &run_dir.join("result.json"),
            &serde_json::json!({ "settings": settings, "row": row, "curve": run_curve, "bounds": bounds }),
        )
    }

    /// Writes the experiment's outputs from its cells' recorded outcomes: runs.csv, summary.csv,
    /// bounds.csv and certified.csv where there are such figures, the plots, report.md and the
    /// manifest. Refuses while any cell is unfinished, naming them.
    pub fn merge(
        &self,
        config: &PortExperiment,
        dir: &Path,
    ) -> Result<(Vec<RunRow>, Vec<SummaryRow>)> {
        let ids = self.cell_ids();
        let mut outcomes = Vec::new();
        let mut missing = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            match self.finished(config, dir, index) {
                Some(outcome) => outcomes.push(outcome),
                None => missing.push(id.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(Error::invalid(
                "experiment",
                format!(
                    "every cell finished before the merge; {} of {} are not: {}",
                    missing.len(),
                    ids.len(),
                    missing.join(", ")
                ),
            ));
        }
        let (mut rows, mut curves, mut bounds_rows) = (Vec::new(), Vec::new(), Vec::new());
        for (row, curve, bounds) in outcomes {
            curves.extend(curve_rows(&row.arm, row.seed, &curve));
            bounds_rows.extend(bounds);
            rows.push(row);
        }
        // The merge may run where the cells' device is absent (a CPU-only merge job): it names
        // the configured device then.
        let device = match config.train.device.start(config.train.threads) {
            Ok(device) => report::device_name(device),
            Err(_) => format!(
                "{:?} (the cells' device; absent where they were merged)",
                config.train.device
            ),
        };
        let mut manifest =
            report::Manifest::new("experiment", config, device)?.seed(&config.seeds)?;
        let (train, _) = config.train.dataset.load()?;
        report::write_csv(&dir.join("runs.csv"), &rows)?;
        let summary = summarise(&self.arms, &rows, train.num_classes());
        report::write_csv(&dir.join("summary.csv"), &summary)?;
        plot_runs(dir, &self.arms, &rows, config)?;
        write_report(dir, config, &summary)?;
        let mut outputs = vec![
            "runs.csv",
            "summary.csv",
            "robust_accuracy.png",
            "robust_accuracy.svg",
            "report.md",
            "proxies/",
            "models/",
        ];
        if !bounds_rows.is_empty() {
            report::write_csv(&dir.join("bounds.csv"), &bounds_rows)?;
            outputs.push("bounds.csv");
        }
        if !curves.is_empty() {
            report::write_csv(&dir.join("certified.csv"), &curves)?;
            plot_certified(dir, &self.arms, &curves, config)?;
            outputs.extend([
                "certified.csv",
                "certified_accuracy.png",
                "certified_accuracy.svg",
            ]);
        }
        manifest.write(dir, &outputs)?;
        Ok((rows, summary))
    }
}

/// A finished cell's row, certified-accuracy curve (empty under AutoAttack) and bounds row.
type CellOutcome = (RunRow, Vec<CertifiedPoint>, Option<BoundsRow>);

/// How `experiment` runs its grid: all of it in this process (no flag), or split into cells.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CellFlags {
    /// Print the grid's cells (position and id), one per line, and stop.
    #[arg(long, group = "cell_mode")]
    pub list: bool,
    /// Run only this cell (its id or position from --list); the outputs wait for --merge.
    #[arg(long, group = "cell_mode")]
    pub cell: Option<String>,
    /// Write the outputs from the finished cells (refused while any is unfinished).
    #[arg(long, group = "cell_mode")]
    pub merge: bool,
    /// Write a Slurm job array (one task per cell, resources from `[slurm]`), its merge job and
    /// a submit script under OUT/slurm/, and stop.
    #[arg(long, group = "cell_mode")]
    pub slurm: bool,
    /// Run the cells as N processes at a time on this machine (one GPU each where there are
    /// GPUs), then merge.
    #[arg(long, group = "cell_mode")]
    pub jobs: Option<usize>,
}

/// What an `experiment` invocation did, for the terminal.
pub enum Done {
    Listed(Vec<String>),
    Cell(String, PathBuf),
    Slurm(PathBuf, usize),
    Merged(Vec<SummaryRow>, PathBuf),
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Done::Listed(ids) => {
                let lines: Vec<String> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| format!("{i}\t{id}"))
                    .collect();
                write!(f, "{}", lines.join("\n"))
            }
            Done::Cell(id, dir) => write!(f, "cell {id} finished: {}", dir.display()),
            Done::Slurm(folder, cells) => write!(
                f,
                "a job array of {cells} cells and its merge: submit with {}",
                folder.join("submit.sh").display()
            ),
            Done::Merged(summary, dir) => {
                for row in summary {
                    writeln!(f, "{row}")?;
                }
                write!(f, "outputs in {}", dir.display())
            }
        }
    }
}

/// Runs `experiment` as `flags` ask, for the config read from `config_file`.
pub fn run_as(
    config_file: &Path,
    config: &PortExperiment,
    dir: &Path,
    flags: &CellFlags,
    show: bool,
) -> Result<Done> {
    if flags.list {
        return Ok(Done::Listed(
            Grid::prepare(config, dir, ProxyFiles::Skip)?.cell_ids(),
        ));
    }
    let files = if flags.cell.is_some() || flags.merge {
        ProxyFiles::Reuse
    } else {
        ProxyFiles::Write
    };
    if let Some(id) = &flags.cell {
        let grid = Grid::prepare(config, dir, files)?;
        let index = grid.cell_index(id)?;
        grid.run_cell(config, dir, index)?;
        let ids = grid.cell_ids();
        return Ok(Done::Cell(
            ids[index].clone(),
            dir.join("models").join(&ids[index]),
        ));
    }
    if flags.merge {
        let grid = Grid::prepare(config, dir, files)?;
        let (_, summary) = grid.merge(config, dir)?;
        return Ok(Done::Merged(summary, dir.to_owned()));
    }
    if flags.slurm {
        let grid = Grid::prepare(config, dir, files)?;
        let folder = jobs::write_slurm(config_file, config, dir, &grid)?;
        return Ok(Done::Slurm(folder, grid.cell_ids().len()));
    }
    if let Some(n) = flags.jobs {
        let grid = Grid::prepare(config, dir, files)?;
        let gpus = match config.train.device.resolve()? {
            tch::Device::Cuda(_) => tch::Cuda::device_count().max(0) as usize,
            _ => 0,
        };
        jobs::run_jobs(config_file, config, dir, &grid, n, gpus, show)?;
        let (_, summary) = grid.merge(config, dir)?;
        return Ok(Done::Merged(summary, dir.to_owned()));
    }
    let (_, summary) = run(config, dir, show)?;
    Ok(Done::Merged(summary, dir.to_owned()))
}

/// Runs the whole grid under `dir`, cell after cell (reusing cells finished with the same
/// settings), then merges: the outputs are those of [`Grid::merge`] whichever way the cells ran.
pub fn run(
    config: &PortExperiment,
    dir: &Path,
    show: bool,
) -> Result<(Vec<RunRow>, Vec<SummaryRow>)> {
    let grid = Grid::prepare(config, dir, ProxyFiles::Write)?;
    let ids = grid.cell_ids();
    let bar = report::progress(ids.len(), "port runs", show);
    for (index, id) in ids.iter().enumerate() {
        bar.set_message(id.clone());
        grid.run_cell(config, dir, index)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    grid.merge(config, dir)
}

/// Per arm: mean and spread over seeds, the gain over the baseline paired by seed with its 95%
/// Student-t interval, and how many runs collapsed to one class (of `classes`).
fn summarise(arms: &[Arm], rows: &[RunRow], classes: usize) -> Vec<SummaryRow> {
    let of = |name: &str| rows.iter().filter(|r| r.arm == name).collect::<Vec<_>>();
    let baseline = of("baseline");
    arms.iter()
        .map(|arm| {
            let runs = of(&arm.name);
            let (clean_mean, clean_std) =
                mean_std(&runs.iter().map(|r| r.clean_accuracy).collect::<Vec<_>>());
            let (robust_mean, robust_std) =
                mean_std(&runs.iter().map(|r| r.robust_accuracy).collect::<Vec<_>>());
            let gains: Vec<f64> = runs
                .iter()
                .filter(|r| r.arm != "baseline")
                .filter_map(|r| {
                    baseline
                        .iter()
                        .find(|b| b.seed == r.seed)
                        .map(|b| 100.0 * (r.robust_accuracy - b.robust_accuracy))
                })
                .collect();
            let (gain, low, high) = paired_gain(&gains);
            SummaryRow {
                arm: arm.name.clone(),
                seeds: runs.len(),
                clean_mean,
                clean_std,
                robust_mean,
                robust_std,
                robust_gain_pp: gain,
                robust_gain_low_pp: low,
                robust_gain_high_pp: high,
                collapsed_runs: runs
                    .iter()
                    .filter(|r| r.clean_accuracy <= 1.5 / classes as f64)
                    .count(),
            }
        })
        .collect()
}

/// Mean of per-seed gains and its 95% Student-t interval mean ± t(0.975, n−1)·s/√n.
fn paired_gain(gains: &[f64]) -> (Option<f64>, Option<f64>, Option<f64>) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if gains.is_empty() {
        return (None, None, None);
    }
    let (mean, std) = mean_std(gains);
    if gains.len() < 2 {
        return (Some(mean), None, None);
    }
    let n = gains.len() as f64;
    let t = StudentsT::new(0.0, 1.0, n - 1.0)
        .expect("n ≥ 2 degrees of freedom are valid")
        .inverse_cdf(0.975);
    let half = t * std / n.sqrt();
    (Some(mean), Some(mean - half), Some(mean + half))
}

/// The quantity a grid sweeps, which becomes the plot's x-axis: γ (Figure 7; the baseline
/// sits at γ = 1, all weight on the real loss), the synthetic-set size (Figure 9; the baseline
/// at 0), or neither (the arms side by side).
#[derive(Clone, Copy, PartialEq)]
enum Swept {
    Gamma,
    Count,
    Arm,
}

impl Swept {
    fn of(config: &PortExperiment) -> Self {
        match (config.gammas.len() > 1, config.synthetic_counts.len() > 1) {
            (true, false) => Swept::Gamma,
            (false, true) => Swept::Count,
            _ => Swept::Arm,
        }
    }

    fn x(self, arm_index: usize, row: &RunRow) -> f64 {
        match self {
            Swept::Gamma => row.gamma.unwrap_or(1.0),
            Swept::Count => row.synthetic_images as f64,
            Swept::Arm => arm_index as f64,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Swept::Gamma => "γ, weight of the real loss (1 = baseline)",
            Swept::Count => "synthetic images (0 = baseline)",
            Swept::Arm => "arm (legend order)",
        }
    }
}

/// Robust accuracy of every run: one colour per proxy (and the baseline), the seed mean joined by
/// a line along the swept axis.
fn plot_runs(dir: &Path, arms: &[Arm], rows: &[RunRow], config: &PortExperiment) -> Result<()> {
    let colors = report::TAB10;
    let swept = Swept::of(config);
    let arm_index = |name: &str| arms.iter().position(|a| a.name == name).unwrap_or(0);
    let point = |r: &RunRow| (swept.x(arm_index(&r.arm), r), 100.0 * r.robust_accuracy);
    // Groups: the baseline, then one per proxy (every γ and size of that proxy).
    let mut groups: Vec<String> = vec!["baseline".into()];
    groups.extend(config.proxies.iter().map(|k| k.name().to_string()));
    groups.extend(config.proxy_sets.iter().map(|p| p.name.clone()));
    let in_group = |r: &RunRow, g: &str| {
        if g == "baseline" {
            r.arm == "baseline"
        } else {
            r.proxy == g
        }
    };
    let mut names = Vec::new();
    let mut points = Vec::new();
    for g in &groups {
        let runs: Vec<&RunRow> = rows.iter().filter(|r| in_group(r, g)).collect();
        if runs.is_empty() {
            continue;
        }
        let mut means: Vec<(f64, f64)> = Vec::new();
        for r in &runs {
            let (x, _) = point(r);
            if means.iter().all(|&(mx, _)| mx != x) {
                let at: Vec<f64> = runs
                    .iter()
                    .filter(|q| point(q).0 == x)
                    .map(|q| point(q).1)
                    .collect();
                means.push((x, at.iter().sum::<f64>() / at.len() as f64));
            }
        }
        means.sort_by(|a, b| a.0.total_cmp(&b.0));
        names.push((format!("{g} (runs)"), format!("{g} (seed mean)")));
        points.push((runs.iter().map(|r| point(r)).collect::<Vec<_>>(), means));
    }
    let mut series = Vec::new();
    for (i, ((runs_name, mean_name), (runs, means))) in names.iter().zip(&points).enumerate() {
        let color = colors[i % colors.len()];
        series.push(Series {
            name: runs_name,
            points: runs,
            color,
            line: false,
        });
        if swept != Swept::Arm {
            series.push(Series {
                name: mean_name,
                points: means,
                color,
                line: true,
            });
        }
    }
    let title = format!("{}: robust accuracy, seeds {:?}", config.name, config.seeds);
    plot(
        &dir.join("robust_accuracy"),
        &Labels {
            title: &title,
            x: swept.label(),
            y: &config.evaluation.robust_label(),
        },
        &series,
        Axes {
            log: false,
            diagonal: false,
        },
    )
}

/// The seed-mean certified-accuracy curve of every arm (Figure 2).
fn plot_certified(
    dir: &Path,
    arms: &[Arm],
    curves: &[CurveRow],
    config: &PortExperiment,
) -> Result<()> {
    let colors = [report::BLUE, report::ORANGE, report::GREEN, report::RED];
    let mut means: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for arm in arms {
        let rows: Vec<&CurveRow> = curves.iter().filter(|c| c.arm == arm.name).collect();
        let mut radii: Vec<f64> = rows.iter().map(|c| c.radius).collect();
        radii.sort_by(f64::total_cmp);
        radii.dedup();
        let points = radii
            .iter()
            .map(|&r| {
                let at: Vec<f64> = rows
                    .iter()
                    .filter(|c| c.radius == r)
                    .map(|c| 100.0 * c.certified_accuracy)
                    .collect();
                (r, at.iter().sum::<f64>() / at.len() as f64)
            })
            .collect();
        means.push((arm.name.clone(), points));
    }
    let series: Vec<Series<'_>> = means
        .iter()
        .enumerate()
        .map(|(i, (name, points))| Series {
            name,
            points,
            color: colors[i % colors.len()],
            line: true,
        })
        .collect();
    let title = format!(
        "{}: certified accuracy, mean over seeds {:?}",
        config.name, config.seeds
    );
    plot(
        &dir.join("certified_accuracy"),
        &Labels {
            title: &title,
            x: "ℓ2 radius",
            y: "certified accuracy (%)",
        },
        &series,
        Axes {
            log: false,
            diagonal: false,
        },
    )
}

impl ExperimentEvaluation {
    /// What the robust-accuracy column measures, for reports.
    fn robust_description(&self) -> String {
        let points = if self.limit > 0 {
            self.limit.to_string()
        } else {
            "all".into()
        };
        match self.robustness() {
            Ok(Robustness::Empirical(version, threat)) => format!(
                "AutoAttack ({version:?}) under {} ε = {} on {points} test points",
                threat.norm.name(),
                threat.epsilon
            ),
            Ok(Robustness::Certified(s, radius)) => format!(
                "certified accuracy of the smoothed classifier (Cohen et al.; σ = {}, n0 = {}, n = {}, α = {}) at ℓ2 radius {radius} on {points} test points; clean: the smoothed classifier's accuracy (certified at radius 0)",
                s.sigma, s.n0, s.n, s.alpha
            ),
            Err(e) => e.to_string(),
        }
    }

    /// The y-axis label of the robust-accuracy plot.
    fn robust_label(&self) -> String {
        match self.robustness() {
            Ok(Robustness::Certified(_, radius)) => {
                format!("certified accuracy at ℓ2 radius {radius} (%)")
            }
            _ => "AutoAttack robust accuracy (%)".into(),
        }
    }
}

fn write_report(dir: &Path, config: &PortExperiment, summary: &[SummaryRow]) -> Result<()> {
    let mut text = format!(
        "# {}\n\nReal training images: {}. Robust accuracy: {}. Seeds: {:?}.\n\n| arm | seeds | clean (%) | robust (%) | robust gain over baseline (pp, paired by seed) |\n|---|---|---|---|---|\n",
        config.name,
        config.real_subset,
        config.evaluation.robust_description(),
        config.seeds
    );
    for row in summary {
        text += &format!(
            "| {} | {} | {:.2} ± {:.2} | {:.2} ± {:.2} | {} |\n",
            row.arm,
            row.seeds,
            100.0 * row.clean_mean,
            100.0 * row.clean_std,
            100.0 * row.robust_mean,
            100.0 * row.robust_std,
            row.robust_gain_pp
                .map_or("—".into(), |g| format!("{g:+.2}"))
        );
    }
    text += "\n## Which proxies help\n\nGain: robust accuracy minus the baseline's at the same seed, mean and 95% Student-t interval over seeds.\n\n";
    for row in summary.iter().filter(|r| r.arm != "baseline") {
        let Some(gain) = row.robust_gain_pp else {
            continue;
        };
        let verdict = match (row.robust_gain_low_pp, row.robust_gain_high_pp) {
            (Some(low), Some(high)) if low > 0.0 => {
                format!("helps: {gain:+.2} pp, 95% interval [{low:+.2}, {high:+.2}]")
            }
            (Some(low), Some(high)) if high < 0.0 => {
                format!("hurts: {gain:+.2} pp, 95% interval [{low:+.2}, {high:+.2}]")
            }
            (Some(low), Some(high)) => format!(
                "no difference shown: {gain:+.2} pp, 95% interval [{low:+.2}, {high:+.2}] contains 0"
            ),
            _ => format!("{gain:+.2} pp from one seed (no interval; run more seeds to judge)"),
        };
        text += &format!("- {}: {verdict}.\n", row.arm);
    }
    for row in summary.iter().filter(|r| r.collapsed_runs > 0) {
        text += &format!(
            "- {}: {} of {} runs collapsed to predicting one class; they are included above.\n",
            row.arm, row.collapsed_runs, row.seeds
        );
    }
    report::atomic_write(&dir.join("report.md"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::paired_gain;

    /// Gains 1, 2, 3 pp: mean 2, s = 1, t(0.975, 2) = 4.302653 (scipy.stats.t.ppf(0.975, 2)),
    /// half-width 4.302653/√3 = 2.484138.
    #[test]
    fn paired_gain_interval_is_the_student_t_one() {
        let (mean, low, high) = paired_gain(&[1.0, 2.0, 3.0]);
        assert_eq!(mean, Some(2.0));
        assert!(
            (low.unwrap() - (2.0 - 2.484138)).abs() < 1e-5
                && (high.unwrap() - (2.0 + 2.484138)).abs() < 1e-5,
            "{low:?} {high:?}"
        );
        assert_eq!(paired_gain(&[4.0]), (Some(4.0), None, None));
        assert_eq!(paired_gain(&[]), (None, None, None));
    }
}
