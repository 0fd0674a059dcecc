//! The training loop on tch: SGD over shuffled mini-batches, the learning rate set every step
//! from the schedule, evaluation on the test split after every epoch, per-epoch CSV, a progress
//! bar with ETA and live loss and accuracy, checkpoints (`checkpoint`) and a JSON manifest.
//!
//! Reproducibility: libtorch's generator is re-seeded from `(seed, epoch)` before the epoch's
//! permutation and from `(seed, epoch, step)` before every step, so a run resumed from any
//! checkpoint draws exactly what the uninterrupted run drew. Ctrl-C stops after the current
//! step, saves a checkpoint and exits cleanly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tch::nn::{self, ModuleT, VarStore};
use tch::{Kind, Tensor};

use super::checkpoint::{self, COLLAPSED_FRACTION, Position, Start};
use super::classifier::{classifier, input_shape, tensors};
use super::ema::WeightAverage;
use super::objective::FreePerturbation;
use super::port::{Draws, PortBatches, StepBatch};
use super::{EpochMetrics, Sgd, TrainConfig};
use crate::config::Validate;
use crate::distributed::{DataParallel, Launch, shard};
use crate::error::{Error, Result};
use crate::report;

/// What a finished (or interrupted) run reports.
#[derive(Debug, serde::Serialize)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub final_test_accuracy: f64,
    pub epochs: Vec<EpochMetrics>,
    pub device: String,
    /// Whether Ctrl-C stopped the run early (a checkpoint was saved).
    pub interrupted: bool,
    /// Epochs after which the model predicted one class for nearly every test image.
    pub collapsed_epochs: Vec<usize>,
}

impl std::fmt::Display for TrainOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.interrupted {
            writeln!(
                f,
                "interrupted after {} epochs; resume with --resume",
                self.epochs.len()
            )?;
        } else {
            writeln!(
                f,
                "{} epochs on {}: final test accuracy {:.4}",
                self.epochs.len(),
                self.device,
                self.final_test_accuracy
            )?;
        }
        if !self.collapsed_epochs.is_empty() {
            writeln!(
                f,
                "warning: the model predicted one class for at least {:.0}% of the test images after epochs {:?} (a collapse)",
                100.0 * COLLAPSED_FRACTION,
                self.collapsed_epochs
            )?;
        }
        write!(f, "outputs: {}", self.run_dir.display())
    }
}

/// Trains `config`, writing `metrics.csv`, `checkpoint.safetensors`, `weights.safetensors`,
/// `run_config.json` and `manifest.json` under `run_dir`. [`Start::Resume`] continues from
/// `run_dir/checkpoint.safetensors` if it was made with the same config; [`Start::Fresh`] refuses
/// a folder that holds a checkpoint. A non-finite training loss
/// stops the run with an error naming the epoch, the step and the last checkpoint, which stays
/// as it was.
pub fn run(
    config: &TrainConfig,
    run_dir: &Path,
    show_progress: bool,
    start: Start,
) -> Result<TrainOutcome> {
    config.validate()?;
    let launch = Launch::from_env()?;
    let device = match (config.device.start(config.threads)?, &launch) {
        (tch::Device::Cuda(_), Some(l)) => tch::Device::Cuda(l.local_rank),
        (device, _) => device,
    };
    let (rank, world) = launch
        .as_ref()
        .map_or((0, 1), |l| (l.rank as i64, l.world_size as i64));
    // Rank 0 alone writes: the run folder, checkpoints, metrics and the manifest.
    let lead = rank == 0;
    let mut manifest = report::Manifest::new("train", config, report::device_name(device))?
        .seed(config.seed)?
        .with("start", start)?
        .with("launch", &launch)?;
    let (train, test) = config.splits()?;
    tch::manual_seed(config.seed as i64);
    let mut trainer = Trainer::new(config, device, input_shape(&train), train.num_classes())?;
    let mut port = match &config.synthetic {
        Some(s) => Some(PortBatches::open(s, train.num_classes(), train.shape())?),
        None => None,
    };
    if lead {
        checkpoint::claim_run_dir(run_dir, config, start, &checkpoint::RESUMABLE_FIELDS)?;
    }
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let mut at = match start {
        Start::Resume => trainer.restore(&checkpoint)?,
        Start::Fresh | Start::Overwrite => Position::start(),
    };
    if let Some(launch) = launch {
        trainer.join(launch, device, config)?;
    }
    let (x_train, y_train) = tensors(&train, device);
    let (x_test, y_test) = tensors(&test, device);
    let n = train.len() as i64;
    let batch = config.batch_size as i64;
    let steps_per_epoch = (n + world * batch - 1) / (world * batch);
    // Every rank draws its own noise and synthetic images; rank 0 draws what a single process does.
    let seed = config.seed ^ (rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    if let Some(port) = &mut port {
        port.start(Draws {
            seed,
            from: (at.epoch, at.step as usize),
            epochs: config.epochs,
            real_per_step: (0..steps_per_epoch)
                .map(|s| shard(n, batch, world, rank, s).1 as usize)
                .collect(),
            device,
        });
    }
    let bar = report::progress(
        steps_per_epoch as usize * config.epochs,
        "train",
        show_progress && lead,
    );
    bar.set_position((at.epoch * steps_per_epoch as usize + at.step as usize) as u64);
    let interrupted = interrupt_flag();
    let mut was_interrupted = false;
    while at.epoch < config.epochs && !was_interrupted {
        let epoch_start = Instant::now();
        tch::manual_seed(derived_seed(config.seed, at.epoch, -1));
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let mut lr = 0.0;
        while at.step < steps_per_epoch {
            tch::manual_seed(derived_seed(seed, at.epoch, at.step));
            let (first, len) = shard(n, batch, world, rank, at.step);
            let index = if first + len <= n {
                order.narrow(0, first, len)
            } else {
                order.index_select(
                    0,
                    &Tensor::arange_start(first, first + len, (Kind::Int64, device)).remainder(n),
                )
            };
            let (xb, yb) = (
                config.augment.apply(&x_train.index_select(0, &index)),
                y_train.index_select(0, &index),
            );
            let step = match &port {
                None => StepBatch::real_only(xb, yb),
                Some(port) => port.join(xb, yb, &config.augment, (at.epoch, at.step as usize))?,
            };
            let progress = at.epoch as f64 + at.step as f64 / steps_per_epoch as f64;
            lr = config.lr.at(progress, config.epochs);
            trainer.step(&step, progress, lr)?;
            at.step += 1;
            bar.inc(1);
            let periodic = config.checkpoint_every_steps > 0
                && at.step % config.checkpoint_every_steps as i64 == 0;
            let logging = at.step % config.log_every_steps as i64 == 0;
            // Ranks stop together: a Ctrl-C is acted on at the next logging step, by all.
            was_interrupted = match &trainer.parallel {
                None => interrupted.load(Ordering::SeqCst),
                Some(_) if logging => trainer.any_rank(interrupted.load(Ordering::SeqCst))?,
                Some(_) => false,
            };
            let saving = was_interrupted || (periodic && at.step < steps_per_epoch);
            if saving || logging {
                // The checkpoint only ever holds weights whose losses were read and finite.
                let loss = trainer.read_sums(&mut at, lr, &checkpoint)?;
                bar.set_message(format!("epoch {} loss {loss:.4}", at.epoch + 1));
            }
            if saving && lead {
                trainer.save(&checkpoint, &at)?;
            }
            if was_interrupted {
                break;
            }
        }
        if was_interrupted {
            break;
        }
        trainer.read_sums(&mut at, lr, &checkpoint)?;
        let (test_loss, test_accuracy, majority) = if lead {
            evaluate(trainer.evaluated(), &x_test, &y_test, 512)
        } else {
            (f64::NAN, f64::NAN, 0.0)
        };
        let metrics = EpochMetrics {
            epoch: at.epoch + 1,
            lr,
            train_loss: at.loss_sum / n as f64,
            train_accuracy: at.correct / n as f64,
            grad_norm: at.grad_norm_sum / steps_per_epoch as f64,
            test_loss,
            test_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        at = at.next_epoch(metrics, majority >= COLLAPSED_FRACTION);
        bar.set_message(format!("epoch {} test acc {test_accuracy:.4}", at.epoch));
        if lead {
            // The checkpoint first: metrics.csv never claims an epoch the checkpoint lacks.
            trainer.save(&checkpoint, &at)?;
            report::write_csv(&run_dir.join("metrics.csv"), &at.finished)?;
        }
    }
    bar.finish_and_clear();
    manifest = manifest
        .with("interrupted", was_interrupted)?
        .with("collapsed_epochs", &at.collapsed)?;
    if lead {
        checkpoint::finish_run(run_dir, trainer.saved(), &mut manifest)?;
    }
    Ok(TrainOutcome {
        run_dir: run_dir.to_owned(),
        final_test_accuracy: at.finished.last().map(|e| e.test_accuracy).unwrap_or(0.0),
        epochs: at.finished,
        device: manifest.device,
        interrupted: was_interrupted,
        collapsed_epochs: at.collapsed,
    })
}

/// The model being trained with its optimiser state, weight average and objective.
struct Trainer<'a> {
    config: &'a TrainConfig,
    vs: VarStore,
    net: nn::SequentialT,
    parameters: BTreeMap<String, Tensor>,
    sgd: Sgd,
    average: Option<WeightAverage>,
    free: FreePerturbation,
    /// The real samples' summed loss and correct count since the last read, on the device
    /// (f64, shape [2]), and the number of real samples and steps they cover.
    sums: Tensor,
    window: (i64, usize),
    /// The process group of a data-parallel run (none for a single process).
    parallel: Option<DataParallel>,
}

impl<'a> Trainer<'a> {
    fn new(
        config: &'a TrainConfig,
        device: tch::Device,
        input: [i64; 3],
        classes: usize,
    ) -> Result<Self> {
        let vs = VarStore::new(device);
        let net = classifier(config, &vs, input, classes as i64)?;
        let parameters = vs.variables().into_iter().collect();
        let average = if config.ema_decay > 0.0 {
            Some(WeightAverage::new(
                config.ema_decay,
                config,
                &vs,
                input,
                classes as i64,
            )?)
        } else {
            None
        };
        Ok(Trainer {
            config,
            vs,
            net,
            parameters,
            sgd: Sgd::new(config.optimizer.clone()),
            average,
            free: FreePerturbation::default(),
            sums: Tensor::zeros([3], (Kind::Double, device)),
            window: (0, 0),
            parallel: None,
        })
    }

    /// Joins the launch's process group and takes rank 0's weights and buffers.
    fn join(&mut self, launch: Launch, device: tch::Device, config: &TrainConfig) -> Result<()> {
        let parallel = DataParallel::join(
            launch,
            device,
            std::time::Duration::from_secs(config.collective_timeout_seconds),
        )?;
        // In name order, the same on every rank (VarStore's map has no order).
        let sorted = |vs: &VarStore| -> Vec<Tensor> {
            vs.variables()
                .into_iter()
                .collect::<BTreeMap<_, _>>()
                .into_values()
                .collect()
        };
        let mut variables = sorted(&self.vs);
        if let Some(average) = &self.average {
            variables.extend(sorted(&average.vs));
        }
        parallel.broadcast_from_first(&variables)?;
        self.parallel = Some(parallel);
        Ok(())
    }

    /// Whether `flag` is set on any rank (a collective: every rank calls it at the same step).
    fn any_rank(&self, flag: bool) -> Result<bool> {
        let Some(parallel) = &self.parallel else {
            return Ok(flag);
        };
        let t = Tensor::from(f64::from(u8::from(flag))).to_device(self.vs.device());
        parallel.sum(&t)?;
        Ok(crate::host::scalar(&t) > 0.0)
    }

    /// One optimiser step (or the objective's replays of it) on `batch` at fractional epoch
    /// `progress`. The real samples' loss and correct count are added to the device-side sums;
    /// nothing is read to the host. In a data-parallel run the gradients are averaged over the
    /// ranks before each update.
    fn step(&mut self, batch: &StepBatch, progress: f64, lr: f64) -> Result<()> {
        let config = self.config;
        let objective = if config.epsilon_warmup_epochs > 0.0 {
            config
                .objective
                .scaled((progress / config.epsilon_warmup_epochs).min(1.0))
        } else {
            config.objective.clone()
        };
        let (x, y, real) = (&batch.inputs, &batch.labels, batch.real);
        let replays = objective.replays();
        for replay in 0..replays {
            let out = objective.batch_loss(&self.net, x, y, config.label_smoothing, &mut self.free);
            batch.loss(&out.per_sample).backward();
            objective.after_backward(x, &mut self.free);
            if let Some(parallel) = &self.parallel {
                parallel.average_gradients(&self.parameters)?;
            }
            let gradient_norm = self.sgd.step(&self.parameters, lr);
            if let Some(average) = &mut self.average {
                average.update(&self.parameters);
            }
            // Epoch metrics count the real samples (the first `real` rows): the last replay's
            // loss and the mean correct count over the replays.
            tch::no_grad(|| {
                let correct = out
                    .logits
                    .narrow(0, 0, real)
                    .argmax(-1, false)
                    .eq_tensor(&y.narrow(0, 0, real))
                    .sum(Kind::Double)
                    / replays as f64;
                let loss = if replay + 1 == replays {
                    out.per_sample.narrow(0, 0, real).sum(Kind::Double)
                } else {
                    Tensor::zeros([], (Kind::Double, x.device()))
                };
                let gradient_norm = gradient_norm.map_or_else(
                    || Tensor::zeros([], (Kind::Double, x.device())),
                    |g| g.to_kind(Kind::Double) / replays as f64,
                );
                let _ = self
                    .sums
                    .g_add_(&Tensor::stack(&[loss, correct, gradient_norm], 0));
            });
        }
        self.window = (self.window.0 + real, self.window.1 + 1);
        Ok(())
    }

    /// Reads the device-side sums (one host read), adds them to `at` and returns the window's
    /// mean loss; a non-finite loss stops the run with an error naming the steps it covers.
    fn read_sums(&mut self, at: &mut Position, lr: f64, checkpoint: &Path) -> Result<f64> {
        let (real, steps) = std::mem::take(&mut self.window);
        if steps == 0 {
            return Ok(f64::NAN);
        }
        let real = match &self.parallel {
            Some(parallel) => {
                parallel.sum(&self.sums)?;
                real * parallel.launch.world_size as i64
            }
            None => real,
        };
        let sums = crate::host::to_f64s(&self.sums);
        let _ = self.sums.zero_();
        let loss = sums[0] / real as f64;
        if !loss.is_finite() {
            return Err(Error::invalid(
                "training",
                format!(
                    "a finite loss; epoch {} steps {}–{} gave a mean of {loss} (lr {lr:.3e}); the last checkpoint, {}, is as it was",
                    at.epoch + 1,
                    at.step as usize + 1 - steps,
                    at.step,
                    if checkpoint.exists() {
                        checkpoint.display().to_string()
                    } else {
                        "none yet".into()
                    }
                ),
            ));
        }
        at.loss_sum += sums[0];
        at.correct += sums[1];
        // Every rank's gradient is the same average: the sum over ranks counts it once per rank.
        at.grad_norm_sum +=
            sums[2] / self.parallel.as_ref().map_or(1, |p| p.launch.world_size) as f64;
        Ok(loss)
    }

    /// The model evaluated after each epoch: the weight average when there is one.
    fn evaluated(&self) -> &nn::SequentialT {
        self.average.as_ref().map_or(&self.net, |a| &a.net)
    }

    /// The weights saved as `weights.safetensors`: the weight average when there is one.
    fn saved(&self) -> &VarStore {
        self.average.as_ref().map_or(&self.vs, |a| &a.vs)
    }

    fn save(&self, path: &Path, at: &Position) -> Result<()> {
        checkpoint::save(path, &self.parameters, &self.sgd, self.average.as_ref(), at)
    }

    fn restore(&mut self, path: &Path) -> Result<Position> {
        checkpoint::load(path, &self.parameters, &mut self.sgd, self.average.as_mut())
    }
}

/// Mean loss and accuracy of `net` on `(x, y)` in evaluation mode, in batches, and the share
/// of the points given the most frequent predicted class (1 for a constant prediction).
fn evaluate(net: &nn::SequentialT, x: &Tensor, y: &Tensor, batch: i64) -> (f64, f64, f64) {
    let n = x.size()[0];
    let (mut loss, mut correct, mut predictions) = (0.0, 0.0, Vec::new());
    tch::no_grad(|| {
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let logits = net.forward_t(&x.narrow(0, start, len), false);
            let yb = y.narrow(0, start, len);
            loss += crate::host::scalar(&logits.cross_entropy_for_logits(&yb)) * len as f64;
            correct +=
                crate::host::scalar(&logits.argmax(-1, false).eq_tensor(&yb).sum(Kind::Double));
            predictions.push(logits.argmax(-1, false));
            start += len;
        }
    });
    let counts = Tensor::cat(&predictions, 0).bincount::<Tensor>(None, 0);
    let majority = crate::host::scalar(&counts.max()) / n as f64;
    (loss / n as f64, correct / n as f64, majority)
}

/// A seed derived from the run seed and a position, so every position draws its own numbers.
pub(crate) fn derived_seed(seed: u64, epoch: usize, step: i64) -> i64 {
    let mut x = seed
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (step as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    (x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 1) as i64
}

/// Stops the loop after the current step when Ctrl-C arrives (installed once per process).
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler = flag.clone();
        // Without a handler (e.g. one was installed elsewhere) Ctrl-C keeps its default effect.
        let _ = ctrlc::set_handler(move || handler.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that predicts class 3 for everything is a collapse (share 1); one that predicts
    /// each point's label is not (share of the largest class).
    #[test]
    fn a_constant_model_reads_as_collapsed() {
        let x = Tensor::arange(20, (Kind::Float, tch::Device::Cpu)).view([20, 1]);
        let y = Tensor::arange(20, (Kind::Int64, tch::Device::Cpu)).remainder(4);
        let constant = nn::seq_t().add_fn(|x| {
            Tensor::zeros([x.size()[0], 4], (Kind::Float, x.device())).index_fill(
                1,
                &Tensor::from_slice(&[3i64]),
                5.0,
            )
        });
        let (_, accuracy, majority) = evaluate(&constant, &x, &y, 7);
        assert_eq!((accuracy, majority), (0.25, 1.0));
        assert!(majority >= COLLAPSED_FRACTION);
        let labels = y.shallow_clone();
        let perfect = nn::seq_t().add_fn(move |_| labels.one_hot(4).to_kind(Kind::Float));
        let (_, accuracy, majority) = evaluate(&perfect, &x, &y, 20);
        assert_eq!((accuracy, majority), (1.0, 0.25));
    }
}
