//! ARC on networks (paper Section 2.2, Appendix C; Figure 3): how hard a proxy set is to tell
//! from a real one under adversarial perturbation.
//!
//! For each ε of a grid a binary discriminator (real 0, proxy 1; any model of [`crate::model`])
//! is adversarially trained by PGD at ε on a balanced training split, and its robust
//! discrimination accuracy Racc_ε is measured on a balanced held-out split by PGD with restarts
//! at the same ε (at ε = 0, clean accuracy). Racc*_ε of Definition 3 is a maximum over
//! discriminators, and the constant discriminator attains ½ at every ε, so the curve ARC
//! integrates is max(Racc_ε of the trained network, ½): beyond the radius where the sets can no
//! longer be told apart, an adversarially trained network that has not settled on a constant
//! prediction measures below ½, which says nothing about the sets. ARC = trapz(max(Racc_ε, ½) − ½,
//! ε) with numpy.trapz semantics over the grid (footnote 4), per seed, then mean and spread over
//! seeds; `curve.csv` keeps the trained network's own values.
//!
//! Two kinds of input: image sets (npz `image` uint8 N×H×W×C, or the seed repository's raw
//! `.bin` of 32×32×3 uint8 images; attacked in [0, 1] pixel space) and vector sets (npz `x`
//! float N×d, for point clouds whose ARC is known in closed form; the discriminator is then an
//! MLP). Vectors are mapped into the unit box by one affine map with the
//! same scale on every coordinate, padded by the largest ε, so the box never binds and ℓp
//! distances (hence ε and ARC) are those of the original units.
//!
//! Training one discriminator per ε per seed is the paper's protocol; `ladder` instead starts
//! each ε's discriminator from the previous ε's weights with a shorter schedule.
//!
//! Outputs under the run folder: `curve.csv` (`seed,epsilon,robust_accuracy`), `summary.json`
//! (ARC per seed, mean, standard deviation, the mean curve, seconds), `robust_discrimination.{png,svg}`
//! (Figure 3: Racc_ε per seed and the seed mean), `manifest.json`, and `cells/` (one record per
//! seed's ladder, or per seed and ε without one, keyed by the settings and both sets' CRC-32: a
//! rerun skips the cells done under the same key, so an interrupted run resumes).

pub mod score;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use crate::attack::Pgd;
use crate::config::{self, Validate};
use crate::error::{Error, Result};
use crate::model::Architecture;
use crate::report::{self, Axes, Labels, Series, plot};
use crate::theory::discrimination::trapezoid;
use crate::theory::norm::Norm;
use crate::train::SgdConfig;
use crate::train::objective::Objective;
use crate::train::tensors::{FitSchedule, fit};

/// `arc` configs (`experiments/arc_*.toml`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArcConfig {
    pub name: String,
    /// The discriminator (vector sets need `mlp`).
    pub model: Architecture,
    /// ℓ2 or ℓ∞ balls.
    pub norm: Norm,
    /// The ε grid, ascending (Figure 3 starts at 0).
    pub epsilons: Vec<f64>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Held-out images per side (the paper: 10,000 synthetic against the 10,000 test images).
    pub held_out: usize,
    /// At most this many training images per side (0: all that remain after the held-out split).
    #[serde(default)]
    pub train_limit: usize,
    pub epochs: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Peak learning rate (SGD with momentum, cosine decay; the paper: 0.1).
    pub lr: f64,
    #[serde(default)]
    pub optimizer: SgdConfig,
    /// PGD steps in training (step size 2.5·ε/steps, random start).
    #[serde(default = "default_train_steps")]
    pub train_steps: usize,
    /// PGD steps and restarts of the held-out evaluation.
    #[serde(default = "default_eval_steps")]
    pub eval_steps: usize,
    #[serde(default = "default_restarts")]
    pub eval_restarts: usize,
    /// Warm-started ε ladder: each ε after the first trains for `ladder_epochs` from the previous
    /// ε's weights (absent: independent training at every ε).
    #[serde(default)]
    pub ladder_epochs: Option<usize>,
    #[serde(default)]
    pub device: config::Device,
    #[serde(default)]
    pub threads: usize,
}

fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
fn default_batch() -> usize {
    128
}
fn default_train_steps() -> usize {
    10
}
fn default_eval_steps() -> usize {
    20
}
fn default_restarts() -> usize {
    2
}

impl ArcConfig {
    /// The most samples per side the splits can use (`held_out + train_limit`), or `None` where
    /// training takes all that remain.
    fn samples_needed(&self) -> Option<usize> {
        (self.train_limit > 0).then(|| self.held_out + self.train_limit)
    }
}

impl Validate for ArcConfig {
    fn validate(&self) -> Result<()> {
        if self.norm == Norm::L1 {
            return Err(Error::invalid("norm", "l2 or linf"));
        }
        if self.epsilons.is_empty() {
            return Err(Error::invalid("epsilons", "at least one radius"));
        }
        for e in &self.epsilons {
            config::non_negative_finite("epsilons", *e)?;
        }
        if self.epsilons.windows(2).any(|w| w[1] <= w[0]) {
            return Err(Error::invalid("epsilons", "strictly ascending radii"));
        }
        if self.seeds.is_empty() {
            return Err(Error::invalid("seeds", "at least one seed"));
        }
        config::at_least("held_out", self.held_out, 1)?;
        config::at_least("epochs", self.epochs, 1)?;
        config::at_least("batch_size", self.batch_size, 1)?;
        config::positive_finite("lr", self.lr)?;
        config::at_least("train_steps", self.train_steps, 1)?;
        config::at_least("eval_steps", self.eval_steps, 1)?;
        config::at_least("eval_restarts", self.eval_restarts, 1)?;
        if let Some(e) = self.ladder_epochs {
            config::at_least("ladder_epochs", e, 1)?;
        }
        Ok(())
    }
}

/// One of the two sets as float tensors in the unit box: NCHW images, or vectors as N×1×1×d.
struct Set {
    x: Tensor,
    /// (C, H, W) of one sample.
    shape: [i64; 3],
}

/// Reads `image` (uint8 NHWC) or `x` (float N×d) from an npz, or the images of a seed-repository
/// `.bin` (N × 32 × 32 × 3 uint8, no labels needed), of which at most `bin_limit` are read.
fn read_set(path: &Path, bin_limit: Option<usize>) -> Result<(Tensor, bool)> {
    if path.extension().is_some_and(|e| e == "bin") {
        let (pixels, n, shape) = crate::data::formats::read_bin_images(path, bin_limit)?;
        let x = crate::train::classifier::images_tensor(&pixels, n, shape, tch::Device::Cpu);
        return Ok((x, true));
    }
    crate::npz::check_npz_members(path, &["image", "x"])?;
    let file =
        std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let mut npz = ndarray_npy::NpzReader::new(file)
        .map_err(|e| Error::file(path, format!("not a valid .npz archive ({e})")))?;
    let names = npz
        .names()
        .map_err(|e| Error::file(path, format!("unreadable .npz archive ({e})")))?;
    if names.iter().any(|n| n == "image") {
        let (pixels, n, shape) = crate::data::read_unlabeled_npz(path)?;
        let x = crate::train::classifier::images_tensor(&pixels, n, shape, tch::Device::Cpu);
        return Ok((x, true));
    }
    if !names.iter().any(|n| n == "x") {
        return Err(Error::file(
            path,
            format!(
                "expected `image` (uint8 N×H×W×C) or `x` (float N×d); found: {}",
                names.join(", ")
            ),
        ));
    }
    let values: ndarray::Array2<f64> =
        match npz.by_name::<ndarray::OwnedRepr<f64>, ndarray::Ix2>("x") {
            Ok(x) => x,
            Err(_) => npz
                .by_name::<ndarray::OwnedRepr<f32>, ndarray::Ix2>("x")
                .map_err(|e| {
                    crate::npz::npz_key_error(path, "x", "float64 or float32 of shape (N, d)", e)
                })?
                .mapv(f64::from),
        };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::file(path, "`x` holds non-finite values"));
    }
    let (n, d) = values.dim();
    let flat: Vec<f64> = values.iter().copied().collect();
    let x = Tensor::from_slice(&flat).view([n as i64, 1, 1, d as i64]);
    Ok((x, false))
}

/// Both sets in the unit box, and the factor ε is multiplied by there (1 for images). A `.bin`
/// set contributes at most `bin_limit` images (its first ones; a generator's samples are drawn
/// independently, so the first N are a random sample of N).
fn load_pair(
    real: &Path,
    proxy: &Path,
    eps_max: f64,
    bin_limit: Option<usize>,
) -> Result<(Set, Set, f64)> {
    let ((a, a_images), (b, b_images)) = (read_set(real, bin_limit)?, read_set(proxy, bin_limit)?);
    if a_images != b_images || a.size()[1..] != b.size()[1..] {
        return Err(Error::file(
            proxy,
            format!(
                "samples of the real set's shape {:?}, got {:?}",
                &a.size()[1..],
                &b.size()[1..]
            ),
        ));
    }
    let (lo, scale) = if a_images {
        (0.0, 1.0)
    } else {
        let lo = a.min().double_value(&[]).min(b.min().double_value(&[])) - eps_max;
        let hi = a.max().double_value(&[]).max(b.max().double_value(&[])) + eps_max;
        (lo, 1.0 / (hi - lo).max(f64::MIN_POSITIVE))
    };
    let to_box = |x: Tensor| ((x - lo) * scale).to_kind(Kind::Float);
    let shape: [i64; 3] = a.size()[1..].try_into().expect("4-d sets");
    let (a, b) = (to_box(a), to_box(b));
    Ok((Set { x: a, shape }, Set { x: b, shape }, scale))
}

/// The balanced splits of one seed: `held_out` per side for evaluation, the rest (at most
/// `train_limit` per side) for training; labels 0 real, 1 proxy. The two index sets are disjoint
/// by construction (one seeded permutation per side, cut once).
struct Splits {
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
}

fn split(real: &Set, proxy: &Set, config: &ArcConfig, seed: u64) -> Result<Splits> {
    let n = real.x.size()[0].min(proxy.x.size()[0]) as usize;
    if config.held_out >= n {
        return Err(Error::invalid(
            "held_out",
            format!(
                "fewer held-out samples per side than the smaller set holds ({n}), got {}",
                config.held_out
            ),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cut = |set: &Set| {
        let mut order: Vec<i64> = (0..set.x.size()[0]).collect();
        order.shuffle(&mut rng);
        let order: Vec<i64> = order.into_iter().take(n).collect();
        let (test, train) = order.split_at(config.held_out);
        let train = if config.train_limit > 0 {
            &train[..config.train_limit.min(train.len())]
        } else {
            train
        };
        (
            set.x.index_select(0, &Tensor::from_slice(train)),
            set.x.index_select(0, &Tensor::from_slice(test)),
        )
    };
    let (real_train, real_test) = cut(real);
    let (proxy_train, proxy_test) = cut(proxy);
    let labels = |a: &Tensor, b: &Tensor| {
        Tensor::cat(
            &[
                Tensor::zeros([a.size()[0]], (Kind::Int64, tch::Device::Cpu)),
                Tensor::ones([b.size()[0]], (Kind::Int64, tch::Device::Cpu)),
            ],
            0,
        )
    };
    Ok(Splits {
        train_y: labels(&real_train, &proxy_train),
        test_y: labels(&real_test, &proxy_test),
        train_x: Tensor::cat(&[real_train, proxy_train], 0),
        test_x: Tensor::cat(&[real_test, proxy_test], 0),
    })
}

/// PGD at `epsilon` (box units) with step 2.5·ε/steps, or `None` at ε = 0.
fn pgd(norm: Norm, epsilon: f64, steps: usize, restarts: usize) -> Option<Pgd> {
    (epsilon > 0.0).then(|| Pgd {
        norm,
        epsilon,
        step_size: 2.5 * epsilon / steps as f64,
        steps,
        random_start: true,
        restarts,
    })
}

/// Trains `net` (its variables in `vs`) for `epochs` on the splits by PGD at `epsilon` (box
/// units), SGD with momentum and cosine decay.
#[allow(clippy::too_many_arguments)]
fn train_discriminator(
    net: &impl ModuleT,
    vs: &tch::nn::VarStore,
    splits: &Splits,
    config: &ArcConfig,
    epsilon: f64,
    epochs: usize,
    device: tch::Device,
    seed: u64,
) {
    let objective = match pgd(config.norm, epsilon, config.train_steps, 1) {
        Some(p) => Objective::Pgd {
            norm: p.norm,
            epsilon: p.epsilon,
            step_size: p.step_size,
            steps: p.steps,
        },
        None => Objective::Natural,
    };
    let schedule = FitSchedule {
        epochs,
        batch_size: config.batch_size,
        lr: config.lr,
        optimizer: config.optimizer.clone(),
    };
    fit(
        net,
        vs,
        (&splits.train_x, &splits.train_y),
        &objective,
        &schedule,
        device,
        seed,
    );
}

/// Racc_ε on the held-out split: the fraction of held-out samples (balanced, so ½ real + ½
/// proxy) the discriminator still gets right after PGD at `epsilon` (box units).
fn robust_discrimination(
    net: &impl ModuleT,
    splits: &Splits,
    config: &ArcConfig,
    epsilon: f64,
    device: tch::Device,
) -> f64 {
    let attack = pgd(
        config.norm,
        epsilon,
        config.eval_steps,
        config.eval_restarts,
    );
    let n = splits.test_x.size()[0];
    let mut correct = 0i64;
    for start in (0..n).step_by(500) {
        let len = 500.min(n - start);
        let x = splits.test_x.narrow(0, start, len).to_device(device);
        let y = splits.test_y.narrow(0, start, len).to_device(device);
        let input = match &attack {
            Some(a) => a.perturb(net, &x, &y, false),
            None => x,
        };
        let predicted = tch::no_grad(|| net.forward_t(&input, false).argmax(-1, false));
        correct += predicted.eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
    }
    correct as f64 / n as f64
}

/// One row of `curve.csv`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CurveRow {
    pub seed: u64,
    pub epsilon: f64,
    pub robust_accuracy: f64,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct ArcSummary {
    pub arc_per_seed: Vec<f64>,
    pub arc_mean: f64,
    /// Sample standard deviation over seeds (0 for one seed).
    pub arc_std: f64,
    pub epsilons: Vec<f64>,
    /// The trained networks' Racc_ε averaged over seeds.
    pub mean_robust_accuracy: Vec<f64>,
    pub held_out_per_side: usize,
    pub train_per_side: usize,
    pub ladder_epochs: Option<usize>,
    pub seconds: f64,
}

impl std::fmt::Display for ArcSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ARC {:.5} ± {:.5} over {} seeds (per seed {:?}); Racc at ε = {}: {:.4}",
            self.arc_mean,
            self.arc_std,
            self.arc_per_seed.len(),
            self.arc_per_seed,
            self.epsilons[0],
            self.mean_robust_accuracy[0]
        )
    }
}

pub use crate::config::Part;

/// A cell of the grid: one seed's ε indices, trained in order — the whole ladder when the ε's
/// warm-start each other, else one ε (independent trainings).
fn cells(config: &ArcConfig) -> Vec<(u64, Vec<usize>)> {
    let all: Vec<usize> = (0..config.epsilons.len()).collect();
    config
        .seeds
        .iter()
        .flat_map(|&seed| match config.ladder_epochs {
            Some(_) => vec![(seed, all.clone())],
            None => all.iter().map(|&k| (seed, vec![k])).collect(),
        })
        .collect()
}

/// What one cell recorded (`cells/s<seed>-e<k>.json`, k its first ε index).
#[derive(Serialize, serde::Deserialize)]
struct CellRecord {
    rows: Vec<CurveRow>,
    train_per_side: usize,
    seconds: f64,
    /// [`settings_key`] of the run that computed it (empty in records that predate it).
    #[serde(default)]
    key: String,
}

/// What a cell's result depends on besides its seed (in its file name): the config without its
/// name, device, thread count and seed list, and the CRC-32 of both sets. A run finds a cell
/// recorded under the same key done and skips it, so an interrupted `arc` resumes at the first
/// unfinished seed and a longer seed list computes only the new seeds; a changed config or set
/// redoes every cell.
fn settings_key(config: &ArcConfig, real: &Path, proxy: &Path) -> Result<String> {
    let mut settings = serde_json::to_value(config)
        .map_err(|e| Error::invalid("config", format!("cannot serialise: {e}")))?;
    if let Some(fields) = settings.as_object_mut() {
        for volatile in ["name", "device", "threads", "seeds"] {
            fields.remove(volatile);
        }
    }
    Ok(format!(
        "{settings} real:{:08x} proxy:{:08x}",
        crate::npz::file_crc32(real)?,
        crate::npz::file_crc32(proxy)?
    ))
}

/// The record of a cell if it was computed under `key` and holds all its radii.
fn finished_cell(out: &Path, seed: u64, ks: &[usize], key: &str) -> Option<CellRecord> {
    std::fs::read_to_string(cell_file(out, seed, ks[0]))
        .ok()
        .and_then(|t| serde_json::from_str::<CellRecord>(&t).ok())
        .filter(|r| r.key == key && r.rows.len() == ks.len())
}

fn cell_file(out: &Path, seed: u64, first: usize) -> PathBuf {
    out.join("cells").join(format!("s{seed}-e{first}.json"))
}

/// What the `arc` command produced: the summary once every cell is in, else how many cells
/// this shard computed.
pub enum ArcOutcome {
    Summary(ArcSummary),
    Shard { cells: usize, of: usize },
}

/// The `arc` command: ARC of `proxy` against `real` under `config`, outputs in `out`. The grid's
/// cells (see [`Part`]) record their Racc values under `out/cells/`, so a grid can be spread
/// over processes or a Slurm array (`--shard i/n`) and merged (`--merge`) into exactly the
/// outputs of one run: each cell's draws depend only on its seed and ε index.
pub fn run(
    real: &Path,
    proxy: &Path,
    config: &ArcConfig,
    out: &Path,
    show: bool,
    part: Part,
) -> Result<ArcOutcome> {
    config.validate()?;
    let device = config.device.start(config.threads)?;
    let mut manifest = report::Manifest::new("arc", config, report::device_name(device))?
        .seed(&config.seeds)?
        .with("real", real)?
        .with("proxy", proxy)?;
    let key = settings_key(config, real, proxy)?;
    let all = cells(config);
    let mine: Vec<&(u64, Vec<usize>)> = all
        .iter()
        .enumerate()
        .filter(|(i, (seed, ks))| {
            part.computes(*i) && finished_cell(out, *seed, ks, &key).is_none()
        })
        .map(|(_, cell)| cell)
        .collect();
    if !mine.is_empty() {
        compute_cells(real, proxy, config, out, device, &mine, &key, show)?;
    }
    if let Part::Shard(_, _) = part {
        return Ok(ArcOutcome::Shard {
            cells: mine.len(),
            of: all.len(),
        });
    }
    let (rows, summary) = merge_cells(config, out, &all, &key)?;
    report::write_csv(&out.join("curve.csv"), &rows)?;
    report::write_json(&out.join("summary.json"), &summary)?;
    plot_curve(out, config, &rows, &summary)?;
    manifest.write(
        out,
        &[
            "curve.csv",
            "summary.json",
            "robust_discrimination.png",
            "robust_discrimination.svg",
            "cells/",
        ],
    )?;
    Ok(ArcOutcome::Summary(summary))
}

/// Trains and evaluates the discriminators of `cells`, recording each cell under `key`.
#[allow(clippy::too_many_arguments)]
fn compute_cells(
    real: &Path,
    proxy: &Path,
    config: &ArcConfig,
    out: &Path,
    device: tch::Device,
    cells: &[&(u64, Vec<usize>)],
    key: &str,
    show: bool,
) -> Result<()> {
    let eps_max = *config.epsilons.last().expect("validated non-empty");
    let (real_set, proxy_set, scale) = load_pair(real, proxy, eps_max, config.samples_needed())?;
    if real_set.shape[0] == 1 && real_set.shape[1] == 1 && config.model != Architecture::Mlp {
        return Err(Error::invalid("model", "mlp for vector sets (npz `x`)"));
    }
    let steps: usize = cells.iter().map(|(_, ks)| ks.len()).sum();
    let bar = report::progress(steps, "arc", show);
    for (seed, ks) in cells {
        let clock = std::time::Instant::now();
        let seed = *seed;
        let splits = split(&real_set, &proxy_set, config, seed)?;
        let mut previous: Option<tch::nn::VarStore> = None;
        let mut rows = Vec::new();
        for &k in ks {
            let epsilon = config.epsilons[k];
            tch::manual_seed(seed as i64 * 1_000 + k as i64);
            let mut vs = tch::nn::VarStore::new(device);
            let net = crate::model::build(&vs, config.model, real_set.shape, 2)?;
            let epochs = match (&previous, config.ladder_epochs) {
                (Some(prev), Some(ladder)) => {
                    vs.copy(prev)
                        .map_err(|e| Error::invalid("ladder", e.to_string()))?;
                    ladder
                }
                _ => config.epochs,
            };
            let box_epsilon = epsilon * scale;
            train_discriminator(
                &net,
                &vs,
                &splits,
                config,
                box_epsilon,
                epochs,
                device,
                seed,
            );
            let racc = robust_discrimination(&net, &splits, config, box_epsilon, device);
            rows.push(CurveRow {
                seed,
                epsilon,
                robust_accuracy: racc,
            });
            previous = Some(vs);
            bar.inc(1);
        }
        let record = CellRecord {
            rows,
            train_per_side: splits.train_x.size()[0] as usize / 2,
            seconds: clock.elapsed().as_secs_f64(),
            key: key.to_owned(),
        };
        // Created only now: a config refused by `split` leaves no folder behind.
        report::create_run_dir(&out.join("cells"))?;
        report::write_json(&cell_file(out, seed, ks[0]), &record)?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// The curve and summary from every cell's record, in seed then ε order; refuses while any
/// cell is missing or was computed under other settings, naming them.
fn merge_cells(
    config: &ArcConfig,
    out: &Path,
    cells: &[(u64, Vec<usize>)],
    key: &str,
) -> Result<(Vec<CurveRow>, ArcSummary)> {
    let mut rows = Vec::new();
    let (mut train_per_side, mut seconds) = (0, 0.0);
    let mut missing = Vec::new();
    for (seed, ks) in cells {
        match finished_cell(out, *seed, ks, key) {
            Some(r) => {
                train_per_side = r.train_per_side;
                seconds += r.seconds;
                rows.extend(r.rows);
            }
            _ => missing.push(format!("seed {seed} ε {}", config.epsilons[ks[0]])),
        }
    }
    if !missing.is_empty() {
        return Err(Error::invalid(
            "--merge",
            format!(
                "every cell recorded under {} with these settings and sets; {} of {} are not: {}",
                out.join("cells").display(),
                missing.len(),
                cells.len(),
                missing.join(", ")
            ),
        ));
    }
    let k = config.epsilons.len();
    let arcs: Vec<f64> = rows
        .chunks(k)
        .map(|curve| {
            let excess: Vec<f64> = curve
                .iter()
                .map(|r| r.robust_accuracy.max(0.5) - 0.5)
                .collect();
            trapezoid(&config.epsilons, &excess)
        })
        .collect();
    let (arc_mean, arc_std) = mean_std(&arcs);
    let mean_robust_accuracy = (0..k)
        .map(|i| {
            let at: Vec<f64> = rows
                .iter()
                .skip(i)
                .step_by(k)
                .map(|r| r.robust_accuracy)
                .collect();
            at.iter().sum::<f64>() / at.len() as f64
        })
        .collect();
    let summary = ArcSummary {
        arc_per_seed: arcs,
        arc_mean,
        arc_std,
        epsilons: config.epsilons.clone(),
        mean_robust_accuracy,
        held_out_per_side: config.held_out,
        train_per_side,
        ladder_epochs: config.ladder_epochs,
        seconds,
    };
    Ok((rows, summary))
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    use statrs::statistics::Statistics;
    let std = if v.len() > 1 { v.std_dev() } else { 0.0 };
    (v.mean(), std)
}

/// Figure 3: Racc_ε of every seed (markers) and the seed mean (line).
fn plot_curve(
    out: &Path,
    config: &ArcConfig,
    rows: &[CurveRow],
    summary: &ArcSummary,
) -> Result<()> {
    let runs: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r.epsilon, r.robust_accuracy))
        .collect();
    let mean: Vec<(f64, f64)> = summary
        .epsilons
        .iter()
        .copied()
        .zip(summary.mean_robust_accuracy.iter().copied())
        .collect();
    let title = format!(
        "{}: robust discrimination, ARC {:.4} ± {:.4}",
        config.name, summary.arc_mean, summary.arc_std
    );
    plot(
        &out.join("robust_discrimination"),
        &Labels {
            title: &title,
            x: &format!("ε ({})", config.norm.name()),
            y: "robust discrimination accuracy",
        },
        &[
            Series {
                name: "seeds",
                points: &runs,
                color: report::BLUE,
                line: false,
            },
            Series {
                name: "seed mean",
                points: &mean,
                color: report::ORANGE,
                line: true,
            },
        ],
        Axes {
            log: false,
            diagonal: false,
        },
    )
}

/// Where `arc` writes by default: `runs/<name>`.
pub fn default_out(config: &ArcConfig) -> PathBuf {
    Path::new("runs").join(&config.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(held_out: usize) -> ArcConfig {
        toml::from_str(&format!(
            "name = \"t\"\nmodel = \"mlp\"\nnorm = \"l2\"\nepsilons = [0.0, 0.1]\nheld_out = {held_out}\nepochs = 1\nlr = 0.1\n"
        ))
        .unwrap()
    }

    /// Sets whose samples are their own ids, so a split can be read back.
    fn ids(n: i64, offset: f64) -> Set {
        Set {
            x: (Tensor::arange(n, (Kind::Float, tch::Device::Cpu)) + offset).view([n, 1, 1, 1]),
            shape: [1, 1, 1],
        }
    }

    #[test]
    fn held_out_samples_never_appear_in_training_and_both_sides_are_balanced() {
        let (real, proxy) = (ids(50, 0.0), ids(80, 1000.0));
        for seed in 0..5 {
            let s = split(&real, &proxy, &config(10), seed).unwrap();
            let values = |t: &Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
            let (train, test) = (values(&s.train_x), values(&s.test_x));
            assert!(test.iter().all(|v| !train.contains(v)), "seed {seed}");
            assert_eq!(test.len(), 20);
            assert_eq!(
                train.len(),
                80,
                "40 per side: the smaller set's 50 less 10 held out"
            );
            let labels = Vec::<i64>::try_from(&s.test_y).unwrap();
            assert_eq!(labels.iter().sum::<i64>(), 10);
        }
        assert!(split(&real, &proxy, &config(50), 0).is_err());
    }

    #[test]
    fn a_bin_set_reads_as_the_same_images_in_npz_and_only_its_first_ones_when_limited() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..5 * 32 * 32 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let bin = dir.path().join("samples.bin");
        std::fs::write(&bin, &pixels).unwrap();
        let npz = dir.path().join("samples.npz");
        let data =
            crate::data::ImageDataset::new(pixels.clone(), vec![0; 5], [32, 32, 3], 10).unwrap();
        crate::data::write_image_npz(&npz, &data).unwrap();
        let (from_bin, images) = read_set(&bin, None).unwrap();
        let (from_npz, _) = read_set(&npz, None).unwrap();
        assert!(images);
        assert_eq!(from_bin.size(), [5, 3, 32, 32]);
        assert!(from_bin.equal(&from_npz));
        let (first, _) = read_set(&bin, Some(2)).unwrap();
        assert!(first.equal(&from_npz.narrow(0, 0, 2)));
        std::fs::write(&bin, &pixels[..pixels.len() - 1]).unwrap();
        let err = read_set(&bin, None).unwrap_err().to_string();
        assert!(
            err.contains("samples.bin") && err.contains("32×32×3"),
            "{err}"
        );
    }

    #[test]
    fn a_constant_discriminator_has_robust_accuracy_one_half_at_every_radius() {
        let (real, proxy) = (ids(40, 0.0), ids(40, 100.0));
        let s = split(&real, &proxy, &config(20), 0).unwrap();
        let constant = tch::nn::func_t(|x: &Tensor, _| {
            Tensor::from_slice(&[1.0f32, 0.0])
                .unsqueeze(0)
                .expand([x.size()[0], 2], false)
                + x.view([x.size()[0], 1]) * 0.0
        });
        for epsilon in [0.0, 0.01, 0.3] {
            let racc = robust_discrimination(&constant, &s, &config(20), epsilon, tch::Device::Cpu);
            assert_eq!(racc, 0.5, "ε = {epsilon}");
        }
    }
}
