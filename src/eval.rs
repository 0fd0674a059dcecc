//! Robust evaluation (`eval`): clean accuracy, PGD-k, AutoAttack (standard or fast) with the
//! robust accuracy after each attack, and the average minimal adversarial distance (an upper
//! bound of Rob_d of Definition 1) with its 95% interval, overall and per class.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::Tensor;
use tch::nn::ModuleT;

use crate::attack::threat::misclassified;
use crate::attack::{Attack, MinimalDistance, Pgd, Threat, Version, chain};
use crate::error::{Error, Result};
use crate::host::{to_bools, to_f64s};
use crate::report;
use crate::stats::Estimate;
use crate::theory::norm::Norm;
use crate::train::TrainConfig;

/// The attacks of the `eval` command and the points they run on.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct EvalFlags {
    #[arg(long, value_enum, default_value = "linf")]
    pub norm: Norm,
    /// Attack radius for PGD and AutoAttack.
    #[arg(long, allow_negative_numbers = true)]
    pub eps: Option<f64>,
    /// PGD steps (0: no PGD).
    #[arg(long, default_value_t = 0)]
    pub pgd_steps: usize,
    /// PGD step size (default ε/4).
    #[arg(long, allow_negative_numbers = true)]
    pub pgd_step_size: Option<f64>,
    #[arg(long, default_value_t = 1)]
    pub restarts: usize,
    /// AutoAttack chain: standard (APGD-CE, APGD-T, FAB-T, Square) or fast (APGD-CE, APGD-T).
    #[arg(long, value_enum)]
    pub autoattack: Option<Version>,
    /// Also run each attack of the AutoAttack chain alone on all clean-correct points.
    #[arg(long)]
    pub each_attack: bool,
    /// Also measure the minimal adversarial distance, searching radii up to this value.
    #[arg(long, allow_negative_numbers = true)]
    pub min_distance: Option<f64>,
    /// Evaluate the first N test points only (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl EvalSettings {
    /// The settings the flags ask for, attacking in batches of `batch_size`.
    pub fn from_flags(flags: &EvalFlags, batch_size: usize) -> Result<Self> {
        if flags.norm == Norm::L1 {
            return Err(Error::invalid("--norm", "linf or l2"));
        }
        if let Some(e) = flags.eps {
            crate::config::non_negative_finite("--eps", e)?;
        }
        if let Some(r) = flags.min_distance {
            crate::config::positive_finite("--min-distance", r)?;
        }
        if let Some(s) = flags.pgd_step_size {
            crate::config::positive_finite("--pgd-step-size", s)?;
        }
        let needs_eps = flags.pgd_steps > 0 || flags.autoattack.is_some();
        let epsilon = match (flags.eps, needs_eps) {
            (Some(e), _) => e,
            (None, true) => {
                return Err(Error::invalid(
                    "--eps",
                    "an attack radius for PGD and AutoAttack",
                ));
            }
            (None, false) => 0.0,
        };
        let threat = Threat {
            norm: flags.norm,
            epsilon,
        };
        Ok(EvalSettings {
            pgd: (flags.pgd_steps > 0).then(|| Pgd {
                norm: flags.norm,
                epsilon,
                step_size: flags.pgd_step_size.unwrap_or(epsilon / 4.0),
                steps: flags.pgd_steps,
                random_start: true,
                restarts: flags.restarts,
            }),
            autoattack: flags.autoattack.map(|v| (v, threat)),
            distance: flags.min_distance.map(|max_radius| MinimalDistance {
                threat,
                max_radius,
                fab_iterations: 100,
                bisection_steps: 10,
                pgd_steps: 20,
            }),
            each_attack: flags.each_attack,
            limit: flags.limit,
            batch_size,
            seed: flags.seed,
        })
    }
}

/// What the `eval` command produced.
pub struct EvalOutcome {
    pub summary: EvalSummary,
    pub out: PathBuf,
}

/// The `eval` command: evaluates `weights` (default: the config's run folder's) of the model
/// of `config` on its test split under `flags`, and writes `summary.json`, `samples.csv`,
/// `per_class.csv` and `manifest.json` under `out` (default: `runs/<name>/eval`).
pub fn run(
    config: &TrainConfig,
    weights: Option<PathBuf>,
    flags: &EvalFlags,
    out: Option<PathBuf>,
    show: bool,
) -> Result<EvalOutcome> {
    let weights = weights.unwrap_or_else(|| crate::train::classifier::default_weights(config));
    let settings = EvalSettings::from_flags(flags, config.batch_size)?;
    let device = report::device_name(config.device.start(config.threads)?);
    let mut manifest = report::Manifest::new("eval", config, device)?
        .seed(flags.seed)?
        .with("weights", &weights)?
        .with("settings", &settings)?;
    let model = crate::train::load_classifier(config, &weights)?;
    let (summary, samples) = evaluate(
        &model.net,
        &model.x,
        &model.y,
        model.test.num_classes(),
        &settings,
        show,
    )?;
    let out = out.unwrap_or_else(|| Path::new("runs").join(&config.name).join("eval"));
    write_outputs(&out, &summary, &samples)?;
    manifest.write(&out, &["summary.json", "samples.csv", "per_class.csv"])?;
    Ok(EvalOutcome { summary, out })
}

impl std::fmt::Display for EvalSummary {
    /// One line per figure: clean accuracy, PGD, each step of the AutoAttack chain, each attack
    /// alone, the minimal distance.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "clean accuracy {:.4} on {} test images",
            self.clean_accuracy, self.samples
        )?;
        if let (Some(r), Some(pgd)) = (self.pgd_robust_accuracy, &self.pgd) {
            writeln!(
                f,
                "robust accuracy {r:.4} under PGD-{} ({}, ε = {})",
                pgd.steps,
                pgd.norm.name(),
                pgd.epsilon
            )?;
        }
        if let Some((_, threat)) = &self.autoattack {
            for step in self.autoattack_chain.iter().skip(1) {
                writeln!(
                    f,
                    "robust accuracy {:.4} after {} ({}, ε = {})",
                    step.robust_accuracy,
                    step.attack,
                    threat.norm.name(),
                    threat.epsilon
                )?;
            }
        }
        for step in &self.individual_attacks {
            writeln!(
                f,
                "robust accuracy {:.4} under {} alone",
                step.robust_accuracy, step.attack
            )?;
        }
        if let Some(d) = &self.distance {
            writeln!(
                f,
                "mean minimal {} distance {:.4} [{:.4}, {:.4}] ({} unbroken within {})",
                d.settings.threat.norm.name(),
                d.mean,
                d.ci_low,
                d.ci_high,
                d.unbroken,
                d.settings.max_radius
            )?;
        }
        Ok(())
    }
}

/// What to evaluate.
#[derive(Clone, Debug, Serialize)]
pub struct EvalSettings {
    pub pgd: Option<Pgd>,
    pub autoattack: Option<(Version, Threat)>,
    pub distance: Option<MinimalDistance>,
    /// Also run every attack of the AutoAttack chain on its own, on all clean-correct points
    /// (for cross-checks against other implementations).
    pub each_attack: bool,
    /// Evaluate only the first `limit` test points (0: all).
    pub limit: usize,
    pub batch_size: usize,
    pub seed: u64,
}

/// One row of `samples.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct SampleResult {
    pub index: usize,
    pub label: i64,
    pub clean_correct: bool,
    pub pgd_robust: Option<bool>,
    pub autoattack_robust: Option<bool>,
    pub distance_fab: Option<f64>,
    pub distance_bisection: Option<f64>,
    pub distance: Option<f64>,
}

/// Robust accuracy after one attack of a chain (cumulative, as AutoAttack prints it).
#[derive(Clone, Debug, Serialize)]
pub struct ChainStep {
    pub attack: String,
    pub robust_accuracy: f64,
    pub seconds: f64,
}

/// The average minimal distance over points with a finite upper bound.
#[derive(Clone, Debug, Serialize)]
pub struct DistanceSummary {
    pub mean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Points no method broke within the largest radius (left out of the mean).
    pub unbroken: usize,
    pub settings: MinimalDistance,
}

/// The JSON summary (`summary.json`, `eval --json`).
#[derive(Clone, Debug, Serialize)]
pub struct EvalSummary {
    pub samples: usize,
    pub clean_accuracy: f64,
    pub clean_accuracy_per_class: Vec<f64>,
    pub pgd: Option<Pgd>,
    pub pgd_robust_accuracy: Option<f64>,
    pub pgd_robust_accuracy_per_class: Option<Vec<f64>>,
    pub pgd_seconds: Option<f64>,
    pub autoattack: Option<(Version, Threat)>,
    pub autoattack_chain: Vec<ChainStep>,
    pub autoattack_robust_accuracy: Option<f64>,
    pub autoattack_robust_accuracy_per_class: Option<Vec<f64>>,
    /// Robust accuracy under each attack of the chain alone (with `each_attack`).
    pub individual_attacks: Vec<ChainStep>,
    pub distance: Option<DistanceSummary>,
}

pub(crate) fn fraction(hits: &[bool]) -> f64 {
    hits.iter().filter(|h| **h).count() as f64 / hits.len().max(1) as f64
}

fn per_class(hits: &[bool], labels: &[i64], classes: usize) -> Vec<f64> {
    (0..classes as i64)
        .map(|k| {
            fraction(
                &hits
                    .iter()
                    .zip(labels)
                    .filter(|(_, l)| **l == k)
                    .map(|(h, _)| *h)
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// Runs `attack` on the points of `robust` (in batches), clearing the ones it breaks.
fn attack_robust<M: ModuleT + ?Sized>(
    model: &M,
    attack: &Attack,
    x: &Tensor,
    y: &Tensor,
    robust: &mut [bool],
    batch: usize,
    show: bool,
) {
    let open: Vec<i64> = robust
        .iter()
        .enumerate()
        .filter(|(_, r)| **r)
        .map(|(i, _)| i as i64)
        .collect();
    let bar = report::progress(open.len(), &attack.name(), show);
    for chunk in open.chunks(batch) {
        let index = Tensor::from_slice(chunk).to_device(x.device());
        let (_, broken) = attack.perturb(
            model,
            &x.index_select(0, &index),
            &y.index_select(0, &index),
        );
        for (i, b) in chunk.iter().zip(to_bools(&broken)) {
            if b {
                robust[*i as usize] = false;
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
}

/// Evaluates `model` on NCHW `x` in [0, 1] with labels `y`.
pub fn evaluate<M: ModuleT + ?Sized>(
    model: &M,
    x: &Tensor,
    y: &Tensor,
    classes: usize,
    settings: &EvalSettings,
    show: bool,
) -> Result<(EvalSummary, Vec<SampleResult>)> {
    if settings.batch_size == 0 {
        return Err(Error::invalid("batch_size", "at least 1"));
    }
    let n = if settings.limit > 0 {
        (settings.limit as i64).min(x.size()[0])
    } else {
        x.size()[0]
    };
    let (x, y) = (x.narrow(0, 0, n), y.narrow(0, 0, n));
    let labels: Vec<i64> = Vec::try_from(y.to_device(tch::Device::Cpu))
        .map_err(|e: tch::TchError| Error::invalid("labels", e.to_string()))?;
    let batch = settings.batch_size as i64;
    let mut clean = Vec::with_capacity(n as usize);
    for start in (0..n).step_by(batch as usize) {
        let len = batch.min(n - start);
        let logits = tch::no_grad(|| model.forward_t(&x.narrow(0, start, len), false));
        clean.extend(to_bools(
            &misclassified(&logits, &y.narrow(0, start, len)).logical_not(),
        ));
    }
    let mut samples: Vec<SampleResult> = labels
        .iter()
        .enumerate()
        .map(|(index, &label)| SampleResult {
            index,
            label,
            clean_correct: clean[index],
            pgd_robust: None,
            autoattack_robust: None,
            distance_fab: None,
            distance_bisection: None,
            distance: None,
        })
        .collect();
    let mut summary = EvalSummary {
        samples: n as usize,
        clean_accuracy: fraction(&clean),
        clean_accuracy_per_class: per_class(&clean, &labels, classes),
        pgd: settings.pgd.clone(),
        pgd_robust_accuracy: None,
        pgd_robust_accuracy_per_class: None,
        pgd_seconds: None,
        autoattack: settings.autoattack,
        autoattack_chain: Vec::new(),
        autoattack_robust_accuracy: None,
        autoattack_robust_accuracy_per_class: None,
        individual_attacks: Vec::new(),
        distance: None,
    };
    if let Some(pgd) = &settings.pgd {
        pgd.validate()?;
        tch::manual_seed(settings.seed as i64);
        let mut robust = clean.clone();
        let started = std::time::Instant::now();
        attack_robust(
            model,
            &Attack::Pgd(pgd.clone()),
            &x,
            &y,
            &mut robust,
            settings.batch_size,
            show,
        );
        summary.pgd_seconds = Some(started.elapsed().as_secs_f64());
        summary.pgd_robust_accuracy = Some(fraction(&robust));
        summary.pgd_robust_accuracy_per_class = Some(per_class(&robust, &labels, classes));
        samples
            .iter_mut()
            .zip(&robust)
            .for_each(|(s, r)| s.pgd_robust = Some(*r));
    }
    if let Some((version, threat)) = settings.autoattack {
        threat.validate("autoattack")?;
        let mut robust = clean.clone();
        summary.autoattack_chain.push(ChainStep {
            attack: "clean".into(),
            robust_accuracy: fraction(&robust),
            seconds: 0.0,
        });
        for attack in chain(version, threat) {
            tch::manual_seed(settings.seed as i64);
            let started = std::time::Instant::now();
            attack_robust(
                model,
                &attack,
                &x,
                &y,
                &mut robust,
                settings.batch_size,
                show,
            );
            let step = ChainStep {
                attack: attack.name(),
                robust_accuracy: fraction(&robust),
                seconds: started.elapsed().as_secs_f64(),
            };
            if show {
                eprintln!(
                    "robust accuracy after {}: {:.2}%",
                    step.attack,
                    100.0 * step.robust_accuracy
                );
            }
            summary.autoattack_chain.push(step);
        }
        summary.autoattack_robust_accuracy = Some(fraction(&robust));
        if settings.each_attack {
            for attack in chain(version, threat) {
                tch::manual_seed(settings.seed as i64);
                let started = std::time::Instant::now();
                let mut alone = clean.clone();
                attack_robust(
                    model,
                    &attack,
                    &x,
                    &y,
                    &mut alone,
                    settings.batch_size,
                    show,
                );
                summary.individual_attacks.push(ChainStep {
                    attack: attack.name(),
                    robust_accuracy: fraction(&alone),
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
        }
        summary.autoattack_robust_accuracy_per_class = Some(per_class(&robust, &labels, classes));
        samples
            .iter_mut()
            .zip(&robust)
            .for_each(|(s, r)| s.autoattack_robust = Some(*r));
    }
    if let Some(distance) = &settings.distance {
        distance.threat.validate("distance")?;
        tch::manual_seed(settings.seed as i64);
        let bar = report::progress(n as usize, "minimal distance", show);
        for start in (0..n).step_by(batch as usize) {
            let len = batch.min(n - start);
            let d = distance.measure(model, &x.narrow(0, start, len), &y.narrow(0, start, len));
            let (fab, bisection, upper) = (
                to_f64s(&d.fab),
                to_f64s(&d.bisection),
                to_f64s(&d.upper_bound),
            );
            let finite = |v: f64| v.is_finite().then_some(v);
            for i in 0..len as usize {
                let s = &mut samples[start as usize + i];
                (s.distance_fab, s.distance_bisection, s.distance) =
                    (finite(fab[i]), finite(bisection[i]), finite(upper[i]));
            }
            bar.inc(len as u64);
        }
        bar.finish_and_clear();
        let found: Vec<f64> = samples.iter().filter_map(|s| s.distance).collect();
        let estimate = Estimate::from_samples(&found, 0.95).map_err(|_| {
            Error::invalid(
                "distance",
                "at least two points with an adversarial example within max_radius",
            )
        })?;
        summary.distance = Some(DistanceSummary {
            mean: estimate.mean,
            ci_low: estimate.lower(),
            ci_high: estimate.upper(),
            unbroken: samples.len() - found.len(),
            settings: distance.clone(),
        });
    }
    Ok((summary, samples))
}

/// Writes `summary.json`, `samples.csv` and `per_class.csv` under `dir` (atomically).
pub fn write_outputs(dir: &Path, summary: &EvalSummary, samples: &[SampleResult]) -> Result<()> {
    report::create_run_dir(dir)?;
    report::write_json(&dir.join("summary.json"), summary)?;
    report::write_csv(&dir.join("samples.csv"), samples)?;
    #[derive(Serialize)]
    struct ClassRow {
        class: usize,
        samples: usize,
        clean_accuracy: f64,
        pgd_robust_accuracy: Option<f64>,
        autoattack_robust_accuracy: Option<f64>,
        mean_distance: Option<f64>,
    }
    let rows: Vec<ClassRow> = (0..summary.clean_accuracy_per_class.len())
        .map(|k| {
            let of_class: Vec<&SampleResult> =
                samples.iter().filter(|s| s.label == k as i64).collect();
            let distances: Vec<f64> = of_class.iter().filter_map(|s| s.distance).collect();
            ClassRow {
                class: k,
                samples: of_class.len(),
                clean_accuracy: summary.clean_accuracy_per_class[k],
                pgd_robust_accuracy: summary.pgd_robust_accuracy_per_class.as_ref().map(|v| v[k]),
                autoattack_robust_accuracy: summary
                    .autoattack_robust_accuracy_per_class
                    .as_ref()
                    .map(|v| v[k]),
                mean_distance: (!distances.is_empty())
                    .then(|| distances.iter().sum::<f64>() / distances.len() as f64),
            }
        })
        .collect();
    report::write_csv(&dir.join("per_class.csv"), &rows)
}
