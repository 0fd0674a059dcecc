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
use crate::npz::{write_class_conditionals, write_gaussian};
use crate::report;
use crate::theory::gaussian::{
    ClassConditionalGaussians, Gaussian, conditional_wasserstein, standard_normal_matrix,
    wasserstein2,
};
use crate::theory::norm::Norm;
use crate::theory::transport::{EmpiricalMeasure, wasserstein};

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
    (
        standard_normal_matrix(1, d, rng)
            .row(0)
            .iter()
            .copied()
            .collect(),
        cov,
    )
}

/// Runs `f` once to warm up (as the reference does), then `reps` timed times on inputs made by
/// `inputs` outside the timed region (the reference, too, times on arrays already in memory);
/// returns the warm-up's value and the median and minimum seconds.
fn time_reps<I>(
    reps: usize,
    mut inputs: impl FnMut() -> I,
    mut f: impl FnMut(I) -> Result<f64>,
) -> Result<(f64, f64, f64)> {
    let value = f(inputs())?;
    let mut secs = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let input = inputs();
        let t = Instant::now();
        f(input)?;
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
        let (pa, pb) = (
            out.join(format!("w2_d{d}_a.npz")),
            out.join(format!("w2_d{d}_b.npz")),
        );
        write_gaussian(&pa, &Gaussian::new(m1.clone(), s1.clone())?)?;
        write_gaussian(&pb, &Gaussian::new(m2.clone(), s2.clone())?)?;
        let (value, median, min) = time_reps(
            reps,
            || (m1.clone(), s1.clone(), m2.clone(), s2.clone()),
            |(m1, s1, m2, s2)| {
                let a = Gaussian::new(m1, s1)?;
                let b = Gaussian::new(m2, s2)?;
                wasserstein2(&a, &b)
            },
        )?;
        timings.push(Timing {
            name: "w2".into(),
            dim: d,
            value,
            seconds_median: median,
            seconds_min: min,
            reps,
            inputs: vec![pa, pb],
        });
    }
    let (k, d) = (10, 128);
    let parts: Vec<_> = (0..2 * k)
        .map(|_| random_gaussian_parts(d, &mut rng))
        .collect();
    let build_from = |parts: Vec<(Vec<f64>, Mat<f64>)>| -> Result<ClassConditionalGaussians> {
        ClassConditionalGaussians::uniform(
            parts
                .into_iter()
                .map(|(m, s)| Gaussian::new(m, s))
                .collect::<Result<_>>()?,
        )
    };
    let build = |range: std::ops::Range<usize>| build_from(parts[range].to_vec());
    let (pa, pb) = (
        out.join("cwd_k10_d128_a.npz"),
        out.join("cwd_k10_d128_b.npz"),
    );
    write_class_conditionals(&pa, &build(0..k)?)?;
    write_class_conditionals(&pb, &build(k..2 * k)?)?;
    let (value, median, min) = time_reps(
        reps,
        || (parts[..k].to_vec(), parts[k..].to_vec()),
        |(real, proxy)| Ok(conditional_wasserstein(&build_from(real)?, &build_from(proxy)?)?.cwd),
    )?;
    timings.push(Timing {
        name: "cwd_k10".into(),
        dim: d,
        value,
        seconds_median: median,
        seconds_min: min,
        reps,
        inputs: vec![pa, pb],
    });
    let result = W2Bench {
        device: report::cpu_device(),
        faer_threads: faer::get_global_parallelism().degree(),
        timings,
    };
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
    let (mu, nu) = (
        EmpiricalMeasure::new(px, wx)?,
        EmpiricalMeasure::new(py, wy)?,
    );
    let (value, median, min) = time_reps(
        reps,
        || (),
        |()| Ok(wasserstein(&mu, &nu, p, metric)?.distance),
    )?;
    let name = if general { "ot_network_simplex" } else { "ot" };
    Ok(Timing {
        name: name.into(),
        dim: mu.dim(),
        value,
        seconds_median: median,
        seconds_min: min,
        reps,
        inputs: vec![x.to_owned(), y.to_owned()],
    })
}

/// Training throughput of one model, natural and PGD-k (ℓ∞, random start), measured like
/// `shared/reference/pgd_train_reference.py`: random inputs in [0, 1] and random labels, the
/// model in train mode (also while attacking), SGD (lr 0.01, momentum 0.9, weight decay 5e-4),
/// one warm-up step, then `steps` timed steps.
#[cfg(feature = "torch")]
#[derive(Debug, Serialize)]
pub struct TrainThroughput {
    pub model: String,
    pub shape: [i64; 3],
    pub batch: i64,
    pub threads: i32,
    pub device: String,
    pub layout: String,
    pub natural_img_per_s: f64,
    pub pgd_steps: usize,
    pub pgd_img_per_s: f64,
}

/// Measures [`TrainThroughput`] for `arch` on `device`, the model in `layout`.
#[cfg(feature = "torch")]
#[allow(clippy::too_many_arguments)]
pub fn train_throughput(
    arch: crate::model::Architecture,
    shape: [i64; 3],
    batch: i64,
    steps: usize,
    pgd_steps: usize,
    epsilon: f64,
    step_size: f64,
    device: tch::Device,
    layout: crate::model::layout::Layout,
) -> Result<TrainThroughput> {
    use std::collections::BTreeMap;
    use tch::nn::ModuleT;
    use tch::{Kind, Tensor};

    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(device);
    let net = crate::model::build_in_layout(&vs, arch, shape, 10, layout)?;
    let parameters: BTreeMap<String, Tensor> = vs
        .trainable_variables()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (i.to_string(), t))
        .collect();
    let mut sgd = crate::train::Sgd::new(crate::train::SgdConfig {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 5e-4,
    });
    let [c, h, w] = shape;
    let x = Tensor::rand([batch, c, h, w], (Kind::Float, device));
    let y = Tensor::randint(10, [batch], (Kind::Int64, device));
    let sync = || {
        if let tch::Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let mut measure = |pgd: Option<&crate::attack::Pgd>| -> f64 {
        let mut start = Instant::now();
        for i in 0..=steps {
            if i == 1 {
                sync();
                start = Instant::now();
            }
            let input = match pgd {
                Some(attack) => attack.perturb(&net, &x, &y, true),
                None => x.shallow_clone(),
            };
            net.forward_t(&input, true)
                .cross_entropy_for_logits(&y)
                .backward();
            sgd.step(&parameters, 0.01);
        }
        sync();
        (steps as i64 * batch) as f64 / start.elapsed().as_secs_f64()
    };
    let natural = measure(None);
    let attack = crate::attack::Pgd {
        norm: Norm::Linf,
        epsilon,
        step_size,
        steps: pgd_steps,
        random_start: true,
        restarts: 1,
    };
    let adversarial = measure(Some(&attack));
    Ok(TrainThroughput {
        model: format!("{arch:?}").to_lowercase(),
        shape,
        batch,
        threads: tch::get_num_threads(),
        device: format!("{device:?}"),
        layout: format!("{layout:?}"),
        natural_img_per_s: natural,
        pgd_steps,
        pgd_img_per_s: adversarial,
    })
}
