//! Benchmarks, never timed tests: `cargo run --release [--features torch] --example bench --
//! w2|ot|train …`, driven side by side with the Python reference by `scripts/bench-*.sh`.
//!
//! `w2` draws Gaussians with the recipe of `shared/reference/w2_reference.py`
//! (`A/√d · (A/√d)ᵀ + 0.1 I`, standard normal mean), writes them as npz so the reference can time
//! the very same inputs, and times construction (validation + factorisation) plus the distance.
//! `ot` times exact W_p between two `.npy` clouds; `train` (feature `torch`) measures training
//! throughput like `shared/reference/pgd_train_reference.py`. Each prints its result as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use faer::Mat;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use proxyrobust::Result;
use proxyrobust::npz::{write_class_conditionals, write_gaussian};
use proxyrobust::report;
use proxyrobust::theory::gaussian::{
    ClassConditionalGaussians, Gaussian, conditional_wasserstein, standard_normal_matrix,
    wasserstein2,
};
use proxyrobust::theory::norm::Norm;
use proxyrobust::theory::transport::{EmpiricalMeasure, wasserstein};

#[derive(Parser)]
#[command(
    name = "bench",
    about = "proxyrobust benchmarks (see scripts/bench-*.sh)"
)]
struct Cli {
    #[command(subcommand)]
    which: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// W2 at the given dimensions and a 10-class cwd at d = 128 (see scripts/bench-w2.sh).
    W2 {
        /// Dimensions to time.
        #[arg(long, value_delimiter = ',', default_value = "128,3072")]
        dims: Vec<usize>,
        /// Repetitions per dimension (the median is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Folder for the generated npz inputs and bench.json.
        #[arg(long, default_value = "runs/bench-w2")]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Exact W_p between two .npy clouds (see scripts/bench-ot.sh).
    Ot {
        x: PathBuf,
        y: PathBuf,
        #[arg(long, default_value_t = 1)]
        p: u32,
        #[arg(long, value_enum, default_value = "l2")]
        metric: Norm,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Time the general-weights network simplex instead of the assignment solver.
        #[arg(long)]
        general: bool,
    },
    /// Training throughput, natural and PGD-k, like shared/reference/pgd_train_reference.py
    /// (see scripts/bench-train.sh); needs the `torch` feature.
    #[cfg(feature = "torch")]
    Train {
        #[arg(long, default_value = "cnn4")]
        model: String,
        /// C,H,W
        #[arg(long, default_value = "1,28,28", value_delimiter = ',')]
        shape: Vec<i64>,
        #[arg(long, default_value_t = 128)]
        batch: i64,
        #[arg(long, default_value_t = 20)]
        steps: usize,
        #[arg(long, default_value_t = 10)]
        pgd_steps: usize,
        #[arg(long, default_value_t = 0.3)]
        eps: f64,
        #[arg(long, default_value_t = 0.01)]
        alpha: f64,
        /// libtorch CPU threads (0 keeps its default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long, value_enum, default_value = "cpu")]
        device: proxyrobust::config::Device,
        /// Memory layout of the model (the models use channels-last).
        #[arg(long, value_enum, default_value_t = LayoutName::ChannelsLast)]
        layout: LayoutName,
        /// Arithmetic of the forward passes: fp32 or bf16 (autocast).
        #[arg(long, default_value = "fp32")]
        precision: String,
        /// Also time TRADES training (β = 6, the same PGD-k inner maximisation).
        #[arg(long)]
        trades: bool,
        /// The device's peak in TFLOP/s for the precision (from its spec sheet) for model-FLOP
        /// utilisation; omitted, only FLOP/s are reported.
        #[arg(long)]
        peak_tflops: Option<f64>,
    },
}

/// `model::layout::Layout` on the command line.
#[cfg(feature = "torch")]
#[derive(Clone, Copy, clap::ValueEnum)]
enum LayoutName {
    ChannelsLast,
    Contiguous,
}

fn main() -> ExitCode {
    match run(Cli::parse().which) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `value` as one line of JSON.
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("benchmark results serialise")
}

fn run(which: Bench) -> Result<String> {
    match which {
        Bench::W2 {
            dims,
            reps,
            out,
            seed,
        } => Ok(json(&w2(&dims, reps, seed, &out)?)),
        Bench::Ot {
            x,
            y,
            p,
            metric,
            reps,
            general,
        } => Ok(json(&ot(&x, &y, p, metric, reps, general)?)),
        #[cfg(feature = "torch")]
        Bench::Train {
            model,
            shape,
            batch,
            steps,
            pgd_steps,
            eps,
            alpha,
            threads,
            device,
            layout,
            precision,
            trades,
            peak_tflops,
        } => {
            use proxyrobust::model::layout::Layout;
            let shape: [i64; 3] = shape
                .try_into()
                .map_err(|_| proxyrobust::Error::invalid("--shape", "three numbers C,H,W"))?;
            let layout = match layout {
                LayoutName::ChannelsLast => Layout::ChannelsLast,
                LayoutName::Contiguous => Layout::Contiguous,
            };
            Ok(json(&train_throughput(
                &TrainBench {
                    arch: model.parse()?,
                    shape,
                    batch,
                    steps,
                    pgd_steps,
                    epsilon: eps,
                    step_size: alpha,
                    layout,
                    precision: proxyrobust::train::precision::Precision::parse(
                        "--precision",
                        &precision,
                    )?,
                    trades,
                    peak_tflops,
                },
                device.start(threads)?,
            )?))
        }
    }
}

/// Timing of one computation over repetitions.
#[derive(Debug, Serialize)]
struct Timing {
    name: String,
    dim: usize,
    value: f64,
    seconds_median: f64,
    seconds_min: f64,
    reps: usize,
    inputs: Vec<PathBuf>,
}

/// Everything `bench w2` measured, also written to `bench.json`.
#[derive(Debug, Serialize)]
struct W2Bench {
    device: String,
    faer_threads: usize,
    timings: Vec<Timing>,
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
fn w2(dims: &[usize], reps: usize, seed: u64, out: &Path) -> Result<W2Bench> {
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
fn ot(x: &Path, y: &Path, p: u32, metric: Norm, reps: usize, general: bool) -> Result<Timing> {
    let (px, py) = (
        proxyrobust::npz::read_points(x)?,
        proxyrobust::npz::read_points(y)?,
    );
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

/// What `bench train` measures: one model at one batch size, natural and PGD-k (ℓ∞, random
/// start) training, optionally TRADES, in a memory layout and a precision.
#[cfg(feature = "torch")]
struct TrainBench {
    arch: proxyrobust::model::Architecture,
    shape: [i64; 3],
    batch: i64,
    steps: usize,
    pgd_steps: usize,
    epsilon: f64,
    step_size: f64,
    layout: proxyrobust::model::layout::Layout,
    precision: proxyrobust::train::precision::Precision,
    trades: bool,
    peak_tflops: Option<f64>,
}

/// Training throughput, measured like `shared/reference/pgd_train_reference.py`: random inputs
/// in [0, 1] and random labels, the model in train mode (also while attacking), SGD (lr 0.01,
/// momentum 0.9, weight decay 5e-4), one warm-up step, then `steps` timed steps.
///
/// Model FLOPs: `forward_flops_per_image` F is PyTorch's profiler count of one forward pass
/// (convolutions and matrix products); a training forward + backward is 3F, an attack
/// iteration (forward + input gradient) 2F. So natural training is 3F per image, PGD-k
/// (2k + 3)F and TRADES-k (1 + 2k + 6)F (a clean pass, k iterations, then clean and adversarial
/// passes with backward). Utilisation = achieved model FLOP/s ÷ the peak given.
#[cfg(feature = "torch")]
#[derive(Debug, Serialize)]
struct TrainThroughput {
    model: String,
    shape: [i64; 3],
    batch: i64,
    threads: i32,
    device: String,
    layout: String,
    precision: &'static str,
    forward_flops_per_image: f64,
    natural_img_per_s: f64,
    natural_tflops: f64,
    pgd_steps: usize,
    pgd_img_per_s: f64,
    pgd_tflops: f64,
    trades_img_per_s: Option<f64>,
    trades_tflops: Option<f64>,
    peak_tflops: Option<f64>,
    natural_mfu: Option<f64>,
    pgd_mfu: Option<f64>,
    trades_mfu: Option<f64>,
}

/// Measures [`TrainThroughput`] for `bench` on `device`.
#[cfg(feature = "torch")]
fn train_throughput(bench: &TrainBench, device: tch::Device) -> Result<TrainThroughput> {
    use proxyrobust::train::objective::{FreePerturbation, Objective};
    use std::collections::BTreeMap;
    use tch::nn::ModuleT;
    use tch::{Kind, Tensor};

    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(device);
    let net = proxyrobust::model::build_in_layout(&vs, bench.arch, bench.shape, 10, bench.layout)?;
    let parameters: BTreeMap<String, Tensor> = vs
        .trainable_variables()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (i.to_string(), t))
        .collect();
    let mut sgd = proxyrobust::train::Sgd::new(proxyrobust::train::SgdConfig {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 5e-4,
        max_grad_norm: 0.0,
    });
    let [c, h, w] = bench.shape;
    let batch = bench.batch;
    let x = Tensor::rand([batch, c, h, w], (Kind::Float, device));
    let y = Tensor::randint(10, [batch], (Kind::Int64, device));
    // Counted in fp32: under autocast the profiler records each cast convolution twice.
    let (_, forward_flops) =
        proxyrobust_torch_ext::count_flops(|| tch::no_grad(|| net.forward_t(&x, false)))
            .map_err(|e| proxyrobust::Error::invalid("flops", e.to_string()))?;
    let per_image = forward_flops as f64 / batch as f64;
    let net = proxyrobust::train::precision::with_precision(net, bench.precision, device);
    let sync = || {
        if let tch::Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let attack = proxyrobust::attack::Pgd {
        norm: Norm::Linf,
        epsilon: bench.epsilon,
        step_size: bench.step_size,
        steps: bench.pgd_steps,
        random_start: true,
        restarts: 1,
    };
    let trades = Objective::Trades {
        norm: Norm::Linf,
        epsilon: bench.epsilon,
        step_size: bench.step_size,
        steps: bench.pgd_steps,
        beta: 6.0,
    };
    let mut free = FreePerturbation::default();
    #[derive(Clone, Copy)]
    enum Training {
        Natural,
        Pgd,
        Trades,
    }
    let mut measure = |kind: Training| -> f64 {
        let mut start = Instant::now();
        for i in 0..=bench.steps {
            if i == 1 {
                sync();
                start = Instant::now();
            }
            let loss = match kind {
                Training::Natural => net.forward_t(&x, true).cross_entropy_for_logits(&y),
                Training::Pgd => net
                    .forward_t(&attack.perturb(&net, &x, &y, true), true)
                    .cross_entropy_for_logits(&y),
                Training::Trades => trades
                    .batch_loss(&net, &x, &y, 0.0, &mut free)
                    .per_sample
                    .mean(Kind::Float),
            };
            loss.backward();
            sgd.step(&parameters, 0.01);
        }
        sync();
        (bench.steps as i64 * batch) as f64 / start.elapsed().as_secs_f64()
    };
    let natural = measure(Training::Natural);
    let adversarial = measure(Training::Pgd);
    let trades_rate = bench.trades.then(|| measure(Training::Trades));
    let k = bench.pgd_steps as f64;
    let tflops = |rate: f64, passes: f64| rate * passes * per_image / 1e12;
    let (natural_tflops, pgd_tflops) = (tflops(natural, 3.0), tflops(adversarial, 2.0 * k + 3.0));
    let trades_tflops = trades_rate.map(|r| tflops(r, 2.0 * k + 7.0));
    let mfu = |t: f64| bench.peak_tflops.map(|p| t / p);
    Ok(TrainThroughput {
        model: format!("{:?}", bench.arch).to_lowercase(),
        shape: bench.shape,
        batch,
        threads: tch::get_num_threads(),
        device: format!("{device:?}"),
        layout: format!("{:?}", bench.layout),
        precision: bench.precision.name(),
        forward_flops_per_image: per_image,
        natural_img_per_s: natural,
        natural_tflops,
        pgd_steps: bench.pgd_steps,
        pgd_img_per_s: adversarial,
        pgd_tflops,
        trades_img_per_s: trades_rate,
        trades_tflops,
        peak_tflops: bench.peak_tflops,
        natural_mfu: mfu(natural_tflops),
        pgd_mfu: mfu(pgd_tflops),
        trades_mfu: trades_tflops.and_then(mfu),
    })
}
