//! The `proxyrobust` command line: a thin layer over the library.
//!
//! Every failure prints one line, `error: …`, naming the file or field at fault, and exits with
//! status 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use proxyrobust::bench;
use proxyrobust::npz::{read_class_conditionals, read_gaussian, read_points, read_weights};
use proxyrobust::sweep::SweepConfig;
use proxyrobust::theory::gaussian::{conditional_wasserstein, wasserstein2};
use proxyrobust::theory::norm::Norm;
use proxyrobust::theory::sphere::ConcentricSpheres;
use proxyrobust::theory::transport::{EmpiricalMeasure, wasserstein};
use proxyrobust::{Error, Result};

#[derive(Parser)]
#[command(
    name = "proxyrobust",
    version,
    about = "Proxy distributions and adversarial robustness (Sehwag et al., ICLR 2022)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The proxy generators of `proxy`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ProxyName {
    Gaussian,
    PcaMixture,
    Interpolation,
}

#[derive(Subcommand)]
enum Command {
    /// Run a theorem sweep from a TOML config in experiments/.
    Sweep {
        /// The sweep config, e.g. experiments/theorem1_gaussian.toml.
        config: PathBuf,
        /// Run folder (default: runs/<name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Closed-form W2 between two Gaussians stored as npz (`mean` (d), `cov` (d, d), float64).
    W2 {
        a: PathBuf,
        b: PathBuf,
        /// Print {"w2": …}.
        #[arg(long)]
        json: bool,
    },
    /// Conditional Wasserstein distance (Definition 2) between two class-conditional Gaussian sets
    /// stored as npz (`means` (K, d), `covs` (K, d, d), optional `probs` (K)).
    Cwd {
        a: PathBuf,
        b: PathBuf,
        /// Print {"cwd": …, "per_class": […]}.
        #[arg(long)]
        json: bool,
    },
    /// Exact W_p between two point clouds (float64 .npy, one point per row), uniform weights
    /// unless --wx/--wy give weight vectors (.npy, summing to 1).
    Ot {
        x: PathBuf,
        y: PathBuf,
        /// Order p of the Wasserstein distance.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
        p: u32,
        /// Ground metric.
        #[arg(long, value_enum, default_value = "l2")]
        metric: Norm,
        #[arg(long)]
        wx: Option<PathBuf>,
        #[arg(long)]
        wy: Option<PathBuf>,
        /// Print {"w": …}.
        #[arg(long)]
        json: bool,
    },
    /// Theorem 2 on concentric uniform spheres: closed-form cwd and ARC, and the empirical ARC of
    /// the best radial-threshold discriminator on held-out samples.
    ArcSphere {
        #[arg(long)]
        r: f64,
        #[arg(long = "r-tilde")]
        r_tilde: f64,
        #[arg(long)]
        dim: usize,
        #[arg(long, value_enum, default_value = "l2")]
        norm: Norm,
        /// Steps of the ε grid.
        #[arg(long, default_value_t = 1000)]
        grid: usize,
        /// Training and held-out samples per sphere.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print {"cwd": …, "arc_closed_form": …, "arc_empirical": …}.
        #[arg(long)]
        json: bool,
    },
    /// Train a classifier from a TOML config (e.g. experiments/mnist_cnn4.toml); needs the
    /// `torch` feature.
    #[cfg(feature = "torch")]
    Train {
        config: PathBuf,
        /// Run folder (default: runs/<name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
        /// Continue from <run folder>/checkpoint.safetensors.
        #[arg(long)]
        resume: bool,
    },
    /// Clean (overall and per class) and optionally PGD robust accuracy of trained weights on the
    /// test split of a training config; needs the `torch` feature.
    #[cfg(feature = "torch")]
    Eval {
        config: PathBuf,
        /// safetensors weights (default: runs/<name>/weights.safetensors).
        #[arg(long)]
        weights: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "linf")]
        norm: Norm,
        /// Attack radius for PGD and AutoAttack.
        #[arg(long)]
        eps: Option<f64>,
        /// PGD steps (0: no PGD).
        #[arg(long, default_value_t = 0)]
        pgd_steps: usize,
        /// PGD step size (default ε/4).
        #[arg(long)]
        pgd_step_size: Option<f64>,
        #[arg(long, default_value_t = 1)]
        restarts: usize,
        /// AutoAttack chain: standard (APGD-CE, APGD-T, FAB-T, Square) or fast (APGD-CE, APGD-T).
        #[arg(long, value_enum)]
        autoattack: Option<proxyrobust::attack::Version>,
        /// Also run each attack of the AutoAttack chain alone on all clean-correct points.
        #[arg(long)]
        each_attack: bool,
        /// Also measure the minimal adversarial distance, searching radii up to this value.
        #[arg(long)]
        min_distance: Option<f64>,
        /// Evaluate the first N test points only (0: all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output folder (default runs/<name>/eval).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the JSON summary (otherwise one line per figure).
        #[arg(long)]
        json: bool,
        #[arg(long)]
        quiet: bool,
    },
    /// Fits a proxy generator on the training split of the embedded MNIST-10k (or its first
    /// `--train-subset` images) and writes `--count` labelled samples as npz.
    Proxy {
        #[arg(value_enum)]
        kind: ProxyName,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Use only the first N training images (0: all 8,000).
        #[arg(long, default_value_t = 0)]
        train_subset: usize,
        /// pca-mixture: principal components kept.
        #[arg(long, default_value_t = 30)]
        dimensions: usize,
        /// pca-mixture: mixture components per class.
        #[arg(long, default_value_t = 10)]
        components: usize,
        /// interpolation: nearest neighbours to interpolate with.
        #[arg(long, default_value_t = 5)]
        neighbours: usize,
    },
    /// Labels an unconditional generator's images (npz `image`) with one or two trained
    /// classifiers (Appendix D.2) and writes the kept images with their labels as npz.
    #[cfg(feature = "torch")]
    PseudoLabel {
        input: PathBuf,
        /// Training config of the (first) classifier.
        #[arg(long)]
        config: PathBuf,
        /// Its weights (default: runs/<name>/weights.safetensors).
        #[arg(long)]
        weights: Option<PathBuf>,
        #[arg(long)]
        second_config: Option<PathBuf>,
        #[arg(long)]
        second_weights: Option<PathBuf>,
        /// Confidence that settles a disagreement between two classifiers.
        #[arg(long, default_value_t = 0.9)]
        threshold: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Runs a PORT experiment grid (baseline vs PORT per proxy, γ and synthetic-set size, over
    /// seeds) and writes runs.csv, summary.csv, a plot, report.md and a manifest.
    #[cfg(feature = "torch")]
    Experiment {
        config: PathBuf,
        /// Output folder (default runs/<name>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        quiet: bool,
    },
    /// Benchmarks; `bench w2` times W2 and cwd and writes its inputs for the Python reference.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
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
        threads: i32,
        /// cpu or cuda.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Memory layout of the model (the models use channels-last).
        #[arg(long, value_enum, default_value_t = LayoutName::ChannelsLast)]
        layout: LayoutName,
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
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Sweep { config, out, quiet } => {
            let config = SweepConfig::load(&config)?;
            let run_dir = out.unwrap_or_else(|| PathBuf::from("runs").join(config.name()));
            let outcome = config.run(&run_dir, !quiet)?;
            println!("{}", outcome.summary);
            println!("outputs: {}", outcome.run_dir.display());
            Ok(())
        }
        Command::W2 { a, b, json } => {
            let (ga, gb) = (read_gaussian(&a)?, read_gaussian(&b)?);
            let w2 = wasserstein2(&ga, &gb)?;
            if json {
                println!("{}", serde_json::json!({ "w2": w2 }));
            } else {
                println!("{w2:.15e}");
            }
            Ok(())
        }
        Command::Cwd { a, b, json } => {
            let (da, db) = (read_class_conditionals(&a)?, read_class_conditionals(&b)?);
            let result = conditional_wasserstein(&da, &db)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&result)
                        .map_err(|e| Error::invalid("output", e.to_string()))?
                );
            } else {
                println!("{:.15e}", result.cwd);
            }
            Ok(())
        }
        Command::Ot {
            x,
            y,
            p,
            metric,
            wx,
            wy,
            json,
        } => {
            let mu = measure(&x, wx.as_deref())?;
            let nu = measure(&y, wy.as_deref())?;
            let w = wasserstein(&mu, &nu, p, metric)?.distance;
            if json {
                println!("{}", serde_json::json!({ "w": w }));
            } else {
                println!("{w:.15e}");
            }
            Ok(())
        }
        #[cfg(feature = "torch")]
        Command::Train {
            config,
            out,
            quiet,
            resume,
        } => {
            let config = proxyrobust::train::TrainConfig::load(&config)?;
            let run_dir = out.unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
            let outcome = proxyrobust::train::run(&config, &run_dir, !quiet, resume)?;
            if outcome.interrupted {
                println!(
                    "interrupted after {} epochs; resume with --resume",
                    outcome.epochs.len()
                );
            } else {
                println!(
                    "{} epochs on {}: final test accuracy {:.4}",
                    outcome.epochs.len(),
                    outcome.device,
                    outcome.final_test_accuracy
                );
            }
            println!("outputs: {}", outcome.run_dir.display());
            Ok(())
        }
        #[cfg(feature = "torch")]
        Command::Eval {
            config,
            weights,
            norm,
            eps,
            pgd_steps,
            pgd_step_size,
            restarts,
            autoattack,
            each_attack,
            min_distance,
            limit,
            seed,
            out,
            json,
            quiet,
        } => {
            use proxyrobust::attack::{MinimalDistance, Pgd, Threat};
            let config = proxyrobust::train::TrainConfig::load(&config)?;
            let run_dir = PathBuf::from("runs").join(&config.name);
            let weights = weights.unwrap_or_else(|| run_dir.join("weights.safetensors"));
            let needs_eps = pgd_steps > 0 || autoattack.is_some();
            let epsilon = match (eps, needs_eps) {
                (Some(e), _) => e,
                (None, true) => {
                    return Err(Error::invalid(
                        "--eps",
                        "an attack radius for PGD and AutoAttack",
                    ));
                }
                (None, false) => 0.0,
            };
            let threat = Threat { norm, epsilon };
            let settings = proxyrobust::eval::EvalSettings {
                pgd: (pgd_steps > 0).then(|| Pgd {
                    norm,
                    epsilon,
                    step_size: pgd_step_size.unwrap_or(epsilon / 4.0),
                    steps: pgd_steps,
                    random_start: true,
                    restarts,
                }),
                autoattack: autoattack.map(|v| (v, threat)),
                distance: min_distance.map(|max_radius| MinimalDistance {
                    threat,
                    max_radius,
                    fab_iterations: 100,
                    bisection_steps: 10,
                    pgd_steps: 20,
                }),
                each_attack,
                limit,
                batch_size: config.batch_size,
                seed,
            };
            let started = (
                proxyrobust::report::unix_seconds(),
                std::time::Instant::now(),
            );
            let (_vs, net, test, x, y) = proxyrobust::train::load_classifier(&config, &weights)?;
            let (summary, samples) =
                proxyrobust::eval::evaluate(&net, &x, &y, test.num_classes(), &settings, !quiet)?;
            let out = out.unwrap_or_else(|| run_dir.join("eval"));
            proxyrobust::eval::write_outputs(&out, &summary, &samples)?;
            let manifest = serde_json::json!({
                "command": "eval", "config": config, "weights": weights, "settings": settings, "seed": seed,
                "git_revision": proxyrobust::report::GIT_REVISION,
                "versions": { "proxyrobust": env!("CARGO_PKG_VERSION"), "tch": "0.24.0", "libtorch": "2.11.0" },
                "device": if tch::Cuda::is_available() && config.device != "cpu" { "cuda:0".to_string() } else { proxyrobust::report::cpu_device() },
                "started_unix_s": started.0, "elapsed_s": started.1.elapsed().as_secs_f64(),
                "outputs": ["summary.json", "samples.csv", "per_class.csv", "manifest.json"],
            });
            proxyrobust::report::write_json(&out.join("manifest.json"), &manifest)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&summary)
                        .map_err(|e| Error::invalid("output", e.to_string()))?
                );
            } else {
                println!(
                    "clean accuracy {:.4} on {} test images",
                    summary.clean_accuracy, summary.samples
                );
                if let Some(r) = summary.pgd_robust_accuracy {
                    println!(
                        "robust accuracy {r:.4} under PGD-{pgd_steps} ({}, ε = {epsilon})",
                        norm.name()
                    );
                }
                for step in summary.autoattack_chain.iter().skip(1) {
                    println!(
                        "robust accuracy {:.4} after {} ({}, ε = {epsilon})",
                        step.robust_accuracy,
                        step.attack,
                        norm.name()
                    );
                }
                for step in &summary.individual_attacks {
                    println!(
                        "robust accuracy {:.4} under {} alone",
                        step.robust_accuracy, step.attack
                    );
                }
                if let Some(d) = &summary.distance {
                    println!(
                        "mean minimal {} distance {:.4} [{:.4}, {:.4}] ({} unbroken within {})",
                        norm.name(),
                        d.mean,
                        d.ci_low,
                        d.ci_high,
                        d.unbroken,
                        d.settings.max_radius
                    );
                }
                println!("outputs in {}", out.display());
            }
            Ok(())
        }
        #[cfg(feature = "torch")]
        Command::PseudoLabel {
            input,
            config,
            weights,
            second_config,
            second_weights,
            threshold,
            out,
        } => {
            let load = |config: &std::path::Path, weights: Option<PathBuf>| -> Result<_> {
                let config = proxyrobust::train::TrainConfig::load(config)?;
                let weights = weights.unwrap_or_else(|| {
                    PathBuf::from("runs")
                        .join(&config.name)
                        .join("weights.safetensors")
                });
                proxyrobust::train::load_classifier(&config, &weights)
            };
            let first = load(&config, weights)?;
            let second = match second_config {
                Some(c) => Some(load(&c, second_weights)?),
                None => None,
            };
            let (pixels, n, shape) = proxyrobust::data::read_unlabeled_npz(&input)?;
            let expected = first.2.shape();
            if shape != expected {
                return Err(Error::file(
                    &input,
                    format!(
                        "images of {expected:?} (H, W, C) like the classifier's data, got {shape:?}"
                    ),
                ));
            }
            let [h, w, c] = shape.map(|v| v as i64);
            let x = (tch::Tensor::from_slice(&pixels)
                .view([n as i64, h, w, c])
                .permute([0, 3, 1, 2])
                .to_kind(tch::Kind::Float)
                / 255.0)
                .to_device(first.3.device());
            let mut classifiers: Vec<&dyn tch::nn::ModuleT> = vec![&first.1];
            if let Some(s) = &second {
                classifiers.push(&s.1);
            }
            let labels =
                proxyrobust::pseudo_label::pseudo_labels(&classifiers, &x, threshold, 256)?;
            let per = shape.iter().product::<usize>();
            let kept: Vec<usize> = (0..n).filter(|&i| labels[i].is_some()).collect();
            let data = proxyrobust::data::ImageDataset::new(
                kept.iter()
                    .flat_map(|&i| pixels[i * per..(i + 1) * per].iter().copied())
                    .collect(),
                kept.iter().map(|&i| labels[i].expect("kept")).collect(),
                shape,
                first.2.num_classes(),
            )?;
            proxyrobust::data::write_image_npz(&out, &data)?;
            println!(
                "kept {} of {n} images ({} discarded) -> {}",
                kept.len(),
                n - kept.len(),
                out.display()
            );
            Ok(())
        }
        #[cfg(feature = "torch")]
        Command::Experiment { config, out, quiet } => {
            let experiment = proxyrobust::experiment::PortExperiment::load(&config)?;
            let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(&experiment.name));
            let (_, summary) = proxyrobust::experiment::run(&experiment, &dir, !quiet)?;
            for row in &summary {
                let gain = row
                    .robust_gain_pp
                    .map_or(String::new(), |g| format!(" ({g:+.2} pp)"));
                println!(
                    "{:<40} clean {:.2}% ± {:.2}  robust {:.2}% ± {:.2}{gain}",
                    row.arm,
                    100.0 * row.clean_mean,
                    100.0 * row.clean_std,
                    100.0 * row.robust_mean,
                    100.0 * row.robust_std
                );
            }
            println!("outputs in {}", dir.display());
            Ok(())
        }
        Command::Proxy {
            kind,
            count,
            out,
            seed,
            train_subset,
            dimensions,
            components,
            neighbours,
        } => {
            use proxyrobust::proxy::{ProxyKind, fit_and_sample};
            let kind = match kind {
                ProxyName::Gaussian => ProxyKind::Gaussian,
                ProxyName::PcaMixture => ProxyKind::PcaMixture {
                    dimensions,
                    components,
                },
                ProxyName::Interpolation => ProxyKind::Interpolation { neighbours },
            };
            let (train, _) = proxyrobust::data::mnist10k()?;
            let train = if train_subset > 0 {
                train.take(train_subset)
            } else {
                train
            };
            let samples = fit_and_sample(kind, &train, count, seed)?;
            proxyrobust::data::write_image_npz(&out, &samples)?;
            println!(
                "{} {} images from {} real ones -> {}",
                samples.len(),
                kind.name(),
                train.len(),
                out.display()
            );
            Ok(())
        }
        Command::ArcSphere {
            r,
            r_tilde,
            dim,
            norm,
            grid,
            samples,
            seed,
            json,
        } => {
            use rand::SeedableRng;
            let spheres = ConcentricSpheres::new(dim, r, r_tilde, norm)?;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let empirical = spheres.empirical_arc(samples, grid, &mut rng)?.arc;
            let (cwd, arc) = (spheres.conditional_wasserstein(), spheres.arc());
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "cwd": cwd, "arc_closed_form": arc, "arc_empirical": empirical })
                );
            } else {
                println!(
                    "cwd {cwd:.6e}  ARC closed form {arc:.6e}  ARC empirical {empirical:.6e}  (4·ARC/cwd = {:.4})",
                    4.0 * empirical / cwd
                );
            }
            Ok(())
        }
        Command::Bench {
            which:
                BenchCommand::W2 {
                    dims,
                    reps,
                    out,
                    seed,
                },
        } => {
            let report = bench::w2(&dims, reps, seed, &out)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report)
                    .map_err(|e| Error::invalid("output", e.to_string()))?
            );
            Ok(())
        }
        #[cfg(feature = "torch")]
        Command::Bench {
            which:
                BenchCommand::Train {
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
                },
        } => {
            use proxyrobust::model::layout::Layout;
            let arch: proxyrobust::model::Architecture = model.parse()?;
            let shape: [i64; 3] = shape
                .try_into()
                .map_err(|_| Error::invalid("--shape", "three numbers C,H,W"))?;
            if threads > 0 {
                tch::set_num_threads(threads);
            }
            let device = match device.as_str() {
                "cpu" => tch::Device::Cpu,
                "cuda" => tch::Device::Cuda(0),
                other => {
                    return Err(Error::invalid(
                        "--device",
                        format!("cpu or cuda, got {other}"),
                    ));
                }
            };
            let layout = match layout {
                LayoutName::ChannelsLast => Layout::ChannelsLast,
                LayoutName::Contiguous => Layout::Contiguous,
            };
            let result = bench::train_throughput(
                arch, shape, batch, steps, pgd_steps, eps, alpha, device, layout,
            )?;
            println!(
                "{}",
                serde_json::to_string(&result)
                    .map_err(|e| Error::invalid("output", e.to_string()))?
            );
            Ok(())
        }
        Command::Bench {
            which:
                BenchCommand::Ot {
                    x,
                    y,
                    p,
                    metric,
                    reps,
                    general,
                },
        } => {
            let timing = bench::ot(&x, &y, p, metric, reps, general)?;
            println!(
                "{}",
                serde_json::to_string(&timing)
                    .map_err(|e| Error::invalid("output", e.to_string()))?
            );
            Ok(())
        }
    }
}

/// A point cloud with uniform weights, or with the weights of `weights` (errors name the file).
fn measure(
    points: &std::path::Path,
    weights: Option<&std::path::Path>,
) -> Result<EmpiricalMeasure> {
    let cloud = read_points(points)?;
    match weights {
        None => EmpiricalMeasure::uniform(cloud).map_err(|e| e.in_file(points)),
        Some(w) => EmpiricalMeasure::new(cloud, read_weights(w)?).map_err(|e| e.in_file(w)),
    }
}
