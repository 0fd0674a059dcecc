//! The `proxyrobust` command line: a thin layer over the library.
//!
//! Every failure prints one line, `error: …`, naming the file or field at fault, and exits with
//! status 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use proxyrobust::npz::{read_class_conditionals, read_gaussian, read_points, read_weights};
use proxyrobust::sweep::SweepConfig;
use proxyrobust::theory::gaussian::{conditional_wasserstein, wasserstein2};
use proxyrobust::theory::norm::Norm;
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
        /// Theorem 1: evaluate only proxies I, I+N, … (`I/N`), recorded under OUT/shards/.
        #[arg(long, conflicts_with = "merge")]
        shard: Option<String>,
        /// Theorem 1: write the outputs from every proxy's record.
        #[arg(long)]
        merge: bool,
    },
    /// Closed-form W2 between two Gaussians stored as npz (`mean` (d), `cov` (d, d), float64).
    W2 {
        a: PathBuf,
        b: PathBuf,
        /// Print {"w2": …}.
        #[arg(long)]
        json: bool,
    },
    /// Draws `--count` points of a Gaussian stored as npz (`mean` (d), `cov` (d, d)) and writes
    /// them as a vector set (npz `x`, float64 (n, d)) for `arc`: with `w2` on the same two files,
    /// the Gaussian-pair check 4·ARC ≤ W2.
    SampleGaussian {
        gaussian: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
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
        #[command(flatten)]
        check: proxyrobust::theory::sphere::SphereCheck,
        /// Print {"cwd": …, "arc_closed_form": …, "arc_empirical": …}.
        #[arg(long)]
        json: bool,
    },
    /// Train a classifier from a TOML config (e.g. experiments/mnist_cnn4.toml); needs the
    /// `torch` feature.
    #[cfg(feature = "torch")]
    Train(RunArgs),
    /// Clean (overall and per class) and optionally PGD robust accuracy of trained weights on the
    /// test split of a training config; needs the `torch` feature.
    #[cfg(feature = "torch")]
    Eval {
        config: PathBuf,
        /// safetensors weights (default: runs/<name>/weights.safetensors).
        #[arg(long)]
        weights: Option<PathBuf>,
        #[command(flatten)]
        flags: proxyrobust::eval::EvalFlags,
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
    Proxy(proxyrobust::proxy::ProxyRequest),
    /// Generative proxies (class-conditional DDPM or GAN): `train` one from a TOML config (e.g.
    /// experiments/mnist_ddpm.toml), `sample` a labelled proxy set from it; needs `torch`.
    #[cfg(feature = "torch")]
    Generator {
        #[command(subcommand)]
        action: GeneratorAction,
    },
    /// Ranks proxies (Tables 6 and 10) by the robust accuracy a classifier trained on each alone
    /// transfers to real test data and by FID, nearest-real distance, Inception score and ARC,
    /// from the outputs of `experiment`, `quality` and `arc` named in a TOML config; writes
    /// ranking.csv, ranking.json, ranking.md and a manifest.
    Rank {
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Sample quality of a proxy set (npz `image`, `label`) against the classifier and real split
    /// of a training config: classifier accuracy, nearest-real-image distances, a sample grid.
    #[cfg(feature = "torch")]
    Quality {
        proxy: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// safetensors weights (default: runs/<name>/weights.safetensors).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Output folder for quality.json, grid.png and manifest.json.
        #[arg(long)]
        out: PathBuf,
        /// Samples and test images the nearest-image distances use.
        #[arg(long, default_value_t = 1000)]
        distance_points: usize,
        /// Samples and test images the classifier-feature FIDs use.
        #[arg(long, default_value_t = 2000)]
        fid_points: usize,
        /// The real split the proxy was made from: the first N training images (default: the
        /// config's train_subset).
        #[arg(long)]
        real_subset: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Bound against observed (Theorem 1) for a trained classifier: clean and AutoAttack robust
    /// accuracy and the mean minimal adversarial distance on real test images and on held-out
    /// proxy images, |ΔRob| with its interval, beside the proximity estimates (exact-OT W1 of
    /// class-conditional subsamples, W2 of fitted Gaussians in pixel and feature space, 4·ARC);
    /// needs the `torch` feature.
    #[cfg(feature = "torch")]
    Bounds {
        /// The training config of the classifier (its dataset gives the real test split).
        config: PathBuf,
        /// The proxy set (npz `image`, `label`); its last `--points` images are evaluated.
        proxy: PathBuf,
        /// safetensors weights (default: runs/<name>/weights.safetensors).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// An `arc` run's summary.json: adds 4·ARC.
        #[arg(long)]
        arc: Option<PathBuf>,
        #[command(flatten)]
        settings: proxyrobust::bounds::BoundsSettings,
        /// Output folder (default runs/<name>/bounds).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        quiet: bool,
    },
    /// ARC (Section 2.2, Figure 3) of a proxy set against a real one: a robust discriminator
    /// adversarially trained at each ε of the config's grid, Racc_ε on a held-out split, ARC by
    /// the trapezoid rule over seeds; sets are npz `image` (uint8 N×H×W×C) or `x` (float N×d);
    /// needs the `torch` feature.
    #[cfg(feature = "torch")]
    Arc {
        real: PathBuf,
        proxy: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// Output folder (default runs/<name>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        quiet: bool,
        /// Compute only cells I, I+N, … of the grid (`I/N`; a cell is one seed's ladder, or one
        /// (seed, ε) without a ladder), recorded under OUT/cells/ for `--merge`.
        #[arg(long, conflicts_with = "merge")]
        shard: Option<String>,
        /// Write the outputs from every cell's record (refused while any is missing).
        #[arg(long)]
        merge: bool,
    },
    /// Synthetic scores (Section 2.3): each proxy sample's worst-case proxy probability over the
    /// ε-ball under a robust discriminator trained at ε (or `--weights`), written per sample;
    /// score-sorted groups (Figure 5) and the lowest-score selection beside a random one
    /// (Table 11) as npz; needs the `torch` feature.
    #[cfg(feature = "torch")]
    Score {
        real: PathBuf,
        proxy: PathBuf,
        /// An `arc` config: the discriminator, its training and the attack.
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        flags: proxyrobust::arc::score::ScoreFlags,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        quiet: bool,
    },
    /// Randomized-smoothing CERTIFY (Cohen et al., 2019) of trained weights on the test split of a
    /// training config: a certified ℓ2 radius per image, certified accuracy against radius
    /// (Figure 2, Table 5); needs the `torch` feature.
    #[cfg(feature = "torch")]
    Certify {
        config: PathBuf,
        #[command(flatten)]
        flags: proxyrobust::smoothing::CertifyFlags,
        /// Print the JSON summary.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        quiet: bool,
    },
    /// Randomized-smoothing PREDICT: the smoothed classifier's class or an abstention per test
    /// image; takes `certify`'s flags (n0 unused); needs the `torch` feature.
    #[cfg(feature = "torch")]
    Predict {
        config: PathBuf,
        #[command(flatten)]
        flags: proxyrobust::smoothing::CertifyFlags,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        quiet: bool,
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
        #[command(flatten)]
        cells: proxyrobust::experiment::CellFlags,
    },
}

/// A training run: its config and run folder.
#[cfg(feature = "torch")]
#[derive(clap::Args)]
struct RunArgs {
    config: PathBuf,
    /// Run folder (default: runs/<name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Continue from <run folder>/checkpoint.safetensors (made with the same config).
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Start afresh in a run folder that already holds a checkpoint, replacing it.
    #[arg(long)]
    overwrite: bool,
}

#[cfg(feature = "torch")]
impl RunArgs {
    fn start(&self) -> proxyrobust::train::Start {
        use proxyrobust::train::Start;
        match (self.resume, self.overwrite) {
            (true, _) => Start::Resume,
            (false, true) => Start::Overwrite,
            (false, false) => Start::Fresh,
        }
    }
}

#[cfg(feature = "torch")]
#[derive(Subcommand)]
enum GeneratorAction {
    /// Train (or `--resume`) into runs/<name> (or `--out`).
    Train(RunArgs),
    /// Write `--count` labelled samples to `--out` (npz), batch by batch.
    Sample {
        config: PathBuf,
        /// safetensors weights (default: runs/<name>/weights.safetensors).
        #[arg(long)]
        weights: Option<PathBuf>,
        #[command(flatten)]
        settings: proxyrobust::proxy::generator::SampleSettings,
        #[arg(long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // One line, like every other error: clap's first (the usage hints follow it).
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(2);
        }
    };
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
        Command::Sweep {
            config,
            out,
            quiet,
            shard,
            merge,
        } => {
            let config = SweepConfig::load(&config)?;
            let run_dir = out.unwrap_or_else(|| PathBuf::from("runs").join(config.name()));
            let part = proxyrobust::config::Part::from_flags(shard.as_deref(), merge)?;
            let outcome = config.run(&run_dir, !quiet, part)?;
            println!(
                "{}\noutputs: {}",
                outcome.summary,
                outcome.run_dir.display()
            );
        }
        Command::W2 { a, b, json } => {
            let w2 = wasserstein2(&read_gaussian(&a)?, &read_gaussian(&b)?)?;
            print(json, &serde_json::json!({ "w2": w2 }), format!("{w2:.15e}"))?;
        }
        Command::SampleGaussian {
            gaussian,
            count,
            out,
            seed,
        } => {
            let points = proxyrobust::npz::write_gaussian_samples(&gaussian, count, seed, &out)?;
            println!("{points} points written to {}", out.display());
        }
        Command::Cwd { a, b, json } => {
            let (da, db) = (read_class_conditionals(&a)?, read_class_conditionals(&b)?);
            let result = conditional_wasserstein(&da, &db)?;
            print(json, &result, format!("{:.15e}", result.cwd))?;
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
            let (mu, nu) = (measure(&x, wx.as_deref())?, measure(&y, wy.as_deref())?);
            let w = wasserstein(&mu, &nu, p, metric)?.distance;
            print(json, &serde_json::json!({ "w": w }), format!("{w:.15e}"))?;
        }
        #[cfg(feature = "torch")]
        Command::Train(args) => {
            let config = proxyrobust::train::TrainConfig::load(&args.config)?;
            let run_dir = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
            let outcome = proxyrobust::train::run(&config, &run_dir, !args.quiet, args.start())?;
            println!("{outcome}");
            if outcome.interrupted {
                // Saved and resumable, but unfinished: the shell's status for Ctrl-C.
                std::process::exit(130);
            }
        }
        #[cfg(feature = "torch")]
        Command::Eval {
            config,
            weights,
            flags,
            out,
            json,
            quiet,
        } => {
            let config = proxyrobust::train::TrainConfig::load(&config)?;
            let outcome = proxyrobust::eval::run(&config, weights, &flags, out, !quiet)?;
            let text = format!("{}outputs in {}", outcome.summary, outcome.out.display());
            print(json, &outcome.summary, text)?;
        }
        #[cfg(feature = "torch")]
        Command::Bounds {
            config,
            proxy,
            weights,
            arc,
            settings,
            out,
            json,
            quiet,
        } => {
            let config = proxyrobust::train::TrainConfig::load(&config)?;
            let out =
                out.unwrap_or_else(|| PathBuf::from("runs").join(&config.name).join("bounds"));
            let summary = proxyrobust::bounds::run(
                &config,
                weights,
                &proxy,
                arc.as_deref(),
                &settings,
                &out,
                !quiet,
            )?;
            let text = format!("{summary}outputs in {}", out.display());
            print(json, &summary, text)?;
        }
        #[cfg(feature = "torch")]
        Command::Generator { action } => {
            use proxyrobust::proxy::generator;
            match action {
                GeneratorAction::Train(args) => {
                    let config: generator::GeneratorConfig =
                        proxyrobust::config::load(&args.config)?;
                    let dir = args
                        .out
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
                    println!(
                        "{}",
                        generator::train(&config, &dir, !args.quiet, args.start())?
                    );
                }
                GeneratorAction::Sample {
                    config,
                    weights,
                    settings,
                    quiet,
                } => {
                    let config: generator::GeneratorConfig = proxyrobust::config::load(&config)?;
                    let weights = weights.unwrap_or_else(|| {
                        PathBuf::from("runs")
                            .join(&config.name)
                            .join("weights.safetensors")
                    });
                    println!(
                        "{}",
                        generator::sample(&config, &weights, &settings, !quiet)?
                    );
                }
            }
        }
        #[cfg(feature = "torch")]
        Command::Rank { config, out, json } => {
            let config: proxyrobust::proxy::ranking::RankingConfig =
                proxyrobust::config::load(&config)?;
            let ranking = proxyrobust::proxy::ranking::run(&config, &out)?;
            print(json, &ranking, &ranking)?;
        }
        Command::Quality {
            proxy,
            config,
            weights,
            out,
            distance_points,
            fid_points,
            real_subset,
            json,
        } => {
            let config = proxyrobust::train::TrainConfig::load(&config)?;
            let quality = proxyrobust::proxy::quality::run(
                &proxy,
                &config,
                weights,
                &out,
                distance_points,
                fid_points,
                real_subset,
            )?;
            print(json, &quality, &quality)?;
        }
        #[cfg(feature = "torch")]
        Command::Arc {
            real,
            proxy,
            config,
            out,
            json,
            quiet,
            shard,
            merge,
        } => {
            use proxyrobust::arc::{ArcOutcome, Part};
            let config: proxyrobust::arc::ArcConfig = proxyrobust::config::load(&config)?;
            let out = out.unwrap_or_else(|| proxyrobust::arc::default_out(&config));
            let part = Part::from_flags(shard.as_deref(), merge)?;
            match proxyrobust::arc::run(&real, &proxy, &config, &out, !quiet, part)? {
                ArcOutcome::Summary(summary) => {
                    let text = format!("{summary}\noutputs in {}", out.display());
                    print(json, &summary, text)?;
                }
                ArcOutcome::Shard { cells, of } => println!(
                    "{cells} of {of} cells recorded under {}; --merge when all are",
                    out.join("cells").display()
                ),
            }
        }
        #[cfg(feature = "torch")]
        Command::Score {
            real,
            proxy,
            config,
            flags,
            json,
            quiet,
        } => {
            let config: proxyrobust::arc::ArcConfig = proxyrobust::config::load(&config)?;
            let summary = proxyrobust::arc::score::run(&real, &proxy, &config, &flags, !quiet)?;
            let text = format!("{summary}\noutputs in {}", flags.out.display());
            print(json, &summary, text)?;
        }
        #[cfg(feature = "torch")]
        Command::Certify {
            config,
            flags,
            json,
            quiet,
        } => smooth(
            &config,
            &flags,
            proxyrobust::smoothing::Mode::Certify,
            json,
            quiet,
        )?,
        #[cfg(feature = "torch")]
        Command::Predict {
            config,
            flags,
            json,
            quiet,
        } => smooth(
            &config,
            &flags,
            proxyrobust::smoothing::Mode::Predict,
            json,
            quiet,
        )?,
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
            use proxyrobust::pseudo_label::Labeller;
            let first = Labeller { config, weights };
            let second = second_config.map(|config| Labeller {
                config,
                weights: second_weights,
            });
            let outcome =
                proxyrobust::pseudo_label::run(&input, &first, second.as_ref(), threshold, &out)?;
            println!("{outcome}");
        }
        #[cfg(feature = "torch")]
        Command::Experiment {
            config,
            out,
            quiet,
            cells,
        } => {
            let experiment = proxyrobust::experiment::PortExperiment::load(&config)?;
            let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(&experiment.name));
            let done = proxyrobust::experiment::run_as(&config, &experiment, &dir, &cells, !quiet)?;
            println!("{done}");
        }
        Command::Proxy(request) => println!("{}", proxyrobust::proxy::write_mnist_proxy(&request)?),
        Command::ArcSphere { check, json } => {
            let arc = check.run()?;
            print(json, &arc, &arc)?;
        }
    }
    Ok(())
}

/// `certify` / `predict`: runs the smoothed classifier and prints its summary.
#[cfg(feature = "torch")]
fn smooth(
    config: &std::path::Path,
    flags: &proxyrobust::smoothing::CertifyFlags,
    mode: proxyrobust::smoothing::Mode,
    json: bool,
    quiet: bool,
) -> Result<()> {
    let config = proxyrobust::train::TrainConfig::load(config)?;
    let outcome = proxyrobust::smoothing::run(&config, flags, mode, !quiet)?;
    let text = format!("{}outputs in {}", outcome.summary, outcome.out.display());
    print(json, &outcome.summary, text)
}

/// Prints `value` as one line of JSON with `--json`, `text` otherwise.
fn print(json: bool, value: &impl serde::Serialize, text: impl std::fmt::Display) -> Result<()> {
    if json {
        let line =
            serde_json::to_string(value).map_err(|e| Error::invalid("output", e.to_string()))?;
        println!("{line}");
    } else {
        println!("{text}");
    }
    Ok(())
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
