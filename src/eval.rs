//! Robust evaluation (`eval`): clean accuracy, PGD-k, AutoAttack (standard or fast) with the
//! robust accuracy after each attack, and the average minimal adversarial distance (an upper
//! bound of Rob_d of Definition 1) with its 95% interval, overall and per class.

use std::path::Path;

use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use crate::attack::threat::misclassified;
use crate::attack::{Attack, MinimalDistance, Pgd, Threat, Version, chain};
use crate::error::{Error, Result};
use crate::stats::Estimate;

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

fn fraction(hits: &[bool]) -> f64 {
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

fn to_bools(t: &Tensor) -> Vec<bool> {
    Vec::<i64>::try_from(t.to_kind(Kind::Int64).to_device(tch::Device::Cpu))
        .unwrap_or_default()
        .into_iter()
        .map(|v| v != 0)
        .collect()
}

fn to_f64s(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).to_device(tch::Device::Cpu)).unwrap_or_default()
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
    let bar = crate::sweep::progress(open.len(), &attack.name(), show);
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
        let bar = crate::sweep::progress(n as usize, "minimal distance", show);
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
    crate::sweep::create_run_dir(dir)?;
    crate::report::write_json(&dir.join("summary.json"), summary)?;
    crate::report::write_csv(&dir.join("samples.csv"), samples)?;
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
    crate::report::write_csv(&dir.join("per_class.csv"), &rows)
}
