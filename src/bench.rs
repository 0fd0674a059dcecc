//! Benchmarks run from the CLI (`proxyrobust bench …`), never as timed tests.
//!
//! `bench w2` draws Gaussians with the recipe of `shared/reference/w2_reference.py`
//! (`A/√d · (A/√d)ᵀ + 0.1 I`, standard normal mean), writes them as npz so the reference can time
//! the very same inputs, and times construction (validation + factorisation) plus the distance.

use std::path::{Path, PathBuf};
use std::time::Instant;

use faer::Mat;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::error::Result;
use crate::theory::norm::Norm;
use crate::theory::transport::{EmpiricalMeasure, wasserstein};
use crate::npz::{write_class_conditionals, write_gaussian};
use crate::report;
use crate::theory::gaussian::{ClassConditionalGaussians, Gaussian, conditional_wasserstein, standard_normal_matrix, wasserstein2};

/// Timing of one computation over repetitions.
#[derive(Debug, Serialize)]
pub struct Timing {
    pub name: String,
    pub dim: usize,
    pub value: f64,
    pub seconds_median: f64,
    pub seconds_min: f64,
    pub reps: usize,
    pub inputs: Vec<PathBuf>,
}

/// Everything `bench w2` measured, also written to `bench.json`.
#[derive(Debug, Serialize)]
pub struct W2Bench {
    pub device: String,
    pub faer_threads: usize,
    pub timings: Vec<Timing>,
}

/// A random Gaussian as drawn by the reference script: raw mean and covariance.
fn random_gaussian_parts(d: usize, rng: &mut StdRng) -> (Vec<f64>, Mat<f64>) {
    let a = faer::Scale(1.0 / (d as f64).sqrt()) * standard_normal_matrix(d, d, rng);
    let mut cov = &a * a.transpose();
    for i in 0..d {
        cov[(i, i)] += 0.1;
    }
    let cov = Mat::from_fn(d, d, |i, j| 0.5 * (cov[(i, j)] + cov[(j, i)]));
    (standard_normal_matrix(1, d, rng).row(0).iter().copied().collect(), cov)
}

fn time_reps(reps: usize, mut f: impl FnMut() -> Result<f64>) -> Result<(f64, f64, f64)> {
    let value = f()?; // warm-up, as the reference does
    let mut secs = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        secs.push(t.elapsed().as_secs_f64());
    }
    secs.sort_by(f64::total_cmp);
    Ok((value, secs[secs.len() / 2], secs[0]))
}

/// Times W2 at each dimension in `dims` and a 10-class cwd at d = 128.
pub fn w2(dims: &[usize], reps: usize, seed: u64, out: &Path) -> Result<W2Bench> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut timings = Vec::new();
    for &d in dims {
        let (m1, s1) = random_gaussian_parts(d, &mut rng);
        let (m2, s2) = random_gaussian_parts(d, &mut rng);
        let (pa, pb) = (out.join(format!("w2_d{d}_a.npz")), out.join(format!("w2_d{d}_b.npz")));
        write_gaussian(&pa, &Gaussian::new(m1.clone(), s1.clone())?)?;
        write_gaussian(&pb, &Gaussian::new(m2.clone(), s2.clone())?)?;
        let (value, median, min) = time_reps(reps, || {
            let a = Gaussian::new(m1.clone(), s1.clone())?;
            let b = Gaussian::new(m2.clone(), s2.clone())?;
            wasserstein2(&a, &b)
        })?;
        timings.push(Timing { name: "w2".into(), dim: d, value, seconds_median: median, seconds_min: min, reps, inputs: vec![pa, pb] });
    }
    let (k, d) = (10, 128);
    let parts: Vec<_> = (0..2 * k).map(|_| random_gaussian_parts(d, &mut rng)).collect();
    let build = |range: std::ops::Range<usize>| -> Result<ClassConditionalGaussians> {
        ClassConditionalGaussians::uniform(parts[range].iter().map(|(m, s)| Gaussian::new(m.clone(), s.clone())).collect::<Result<_>>()?)
    };
    let (pa, pb) = (out.join("cwd_k10_d128_a.npz"), out.join("cwd_k10_d128_b.npz"));
    write_class_conditionals(&pa, &build(0..k)?)?;
    write_class_conditionals(&pb, &build(k..2 * k)?)?;
    let (value, median, min) = time_reps(reps, || Ok(conditional_wasserstein(&build(0..k)?, &build(k..2 * k)?)?.cwd))?;
    timings.push(Timing { name: "cwd_k10".into(), dim: d, value, seconds_median: median, seconds_min: min, reps, inputs: vec![pa, pb] });
    let result = W2Bench { device: report::cpu_device(), faer_threads: faer::get_global_parallelism().degree(), timings };
    report::write_json(&out.join("bench.json"), &result)?;
    Ok(result)
}

/// Times exact `W_p` between the clouds in two `.npy` files (cost matrix plus solver, as the
/// reference's timing covers `cost_matrix` plus `ot.emd2`), uniform weights, or the general
/// network simplex when `general` is set (weights perturbed off uniform by 1e-9 relative).
pub fn ot(x: &Path, y: &Path, p: u32, metric: Norm, reps: usize, general: bool) -> Result<Timing> {
    let (px, py) = (crate::npz::read_points(x)?, crate::npz::read_points(y)?);
    let weights = |n: usize| -> Vec<f64> {
        if !general {
            return vec![1.0 / n as f64; n];
        }
        let raw: Vec<f64> = (0..n).map(|i| 1.0 + 1e-9 * (i % 2) as f64).collect();
        let total: f64 = raw.iter().sum();
        raw.iter().map(|w| w / total).collect()
    };
    let (wx, wy) = (weights(px.nrows()), weights(py.nrows()));
    let (mu, nu) = (EmpiricalMeasure::new(px, wx)?, EmpiricalMeasure::new(py, wy)?);
    let (value, median, min) = time_reps(reps, || Ok(wasserstein(&mu, &nu, p, metric)?.distance))?;
    let name = if general { "ot_network_simplex" } else { "ot" };
    Ok(Timing { name: name.into(), dim: mu.dim(), value, seconds_median: median, seconds_min: min, reps, inputs: vec![x.to_owned(), y.to_owned()] })
}
