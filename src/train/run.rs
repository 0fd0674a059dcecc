//! The natural-training loop on tch: SGD over shuffled mini-batches, the learning rate set every
//! step from the schedule, evaluation on the test split after every epoch, per-epoch CSV, a
//! progress bar with ETA and live loss and accuracy, checkpoints and a JSON manifest.
//!
//! Reproducibility: libtorch's generator is re-seeded from `(seed, epoch)` before the epoch's
//! permutation and from `(seed, epoch, step)` before every step, so a run resumed from any
//! checkpoint draws exactly what the uninterrupted run drew. A checkpoint
//! (`checkpoint.safetensors`, written atomically) holds the weights (`model/<name>`), the SGD
//! momentum buffers (`momentum/<name>`), the position (`state/epoch`, `state/step`), the running
//! sums of the current epoch and the metrics of finished epochs. Ctrl-C stops after the current
//! step, saves a checkpoint and exits cleanly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use super::Sgd;
use super::ema::WeightAverage;
use super::objective::FreePerturbation;
use super::port;
use super::{EpochMetrics, TrainConfig};
use crate::data::ImageDataset;
use crate::error::{Error, Result};
use crate::model;
use crate::model::layout::{Layout, contiguous_cpu, save_weights};
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
}

fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        "cuda" => Err(Error::invalid(
            "device",
            "cuda, but libtorch sees no CUDA device here",
        )),
        _ => Ok(Device::cuda_if_available()),
    }
}

/// The model of `config` on [0, 1] inputs: with `normalize`, inputs are first standardised by
/// the dataset's per-channel mean and deviation (constants, not parameters, so weights files
/// keep the model's own names and attacks still act in pixel space).
pub(crate) fn classifier(
    config: &TrainConfig,
    vs: &nn::VarStore,
    input: [i64; 3],
    classes: i64,
) -> Result<nn::SequentialT> {
    let net = model::build(vs, config.model, input, classes)?;
    if !config.normalize {
        return Ok(net);
    }
    let info = config.dataset.info()?;
    let channels = info.mean.len() as i64;
    let as_tensor = |v: &[f64]| {
        Tensor::from_slice(v)
            .to_kind(Kind::Float)
            .view([1, channels, 1, 1])
            .to_device(vs.device())
    };
    let (mean, std) = (as_tensor(&info.mean), as_tensor(&info.std));
    Ok(nn::seq_t().add_fn(move |x| (x - &mean) / &std).add(net))
}

/// Images as a float tensor in [0, 1], NCHW, and labels as int64.
pub(crate) fn tensors(data: &ImageDataset, device: Device) -> (Tensor, Tensor) {
    let [h, w, c] = data.shape().map(|v| v as i64);
    let x = Tensor::from_slice(data.pixels())
        .view([data.len() as i64, h, w, c])
        .permute([0, 3, 1, 2])
        .contiguous()
        .to_kind(Kind::Float)
        / 255.0;
    (
        x.to_device(device),
        Tensor::from_slice(data.labels()).to_device(device),
    )
}

/// Mean loss and accuracy of `net` on `(x, y)` in evaluation mode, in batches.
fn evaluate(net: &nn::SequentialT, x: &Tensor, y: &Tensor, batch: i64) -> (f64, f64) {
    let n = x.size()[0];
    let (mut loss, mut correct) = (0.0, 0.0);
    tch::no_grad(|| {
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let logits = net.forward_t(&x.narrow(0, start, len), false);
            let yb = y.narrow(0, start, len);
            loss += logits.cross_entropy_for_logits(&yb).double_value(&[]) * len as f64;
            correct += correct_count(&logits, &yb);
            start += len;
        }
    });
    (loss / n as f64, correct / n as f64)
}

fn correct_count(logits: &Tensor, labels: &Tensor) -> f64 {
    logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .to_kind(Kind::Double)
        .sum(Kind::Double)
        .double_value(&[])
}

/// A seed derived from the run seed and a position, so every position draws its own numbers.
fn derived_seed(seed: u64, epoch: usize, step: i64) -> i64 {
    let mut x = seed
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (step as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    (x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 1) as i64
}

/// Where training stands: the next step to run and the sums of the current epoch.
struct Position {
    epoch: usize,
    step: i64,
    loss_sum: f64,
    correct: f64,
    finished: Vec<EpochMetrics>,
}

const METRIC_COLUMNS: i64 = 7;

fn save_checkpoint(
    path: &Path,
    parameters: &BTreeMap<String, Tensor>,
    sgd: &Sgd,
    average: Option<&WeightAverage>,
    at: &Position,
) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (name, p) in parameters {
        named.push((format!("model/{name}"), contiguous_cpu(p)));
    }
    for (name, b) in sgd.buffers() {
        named.push((format!("momentum/{name}"), contiguous_cpu(b)));
    }
    named.extend(
        average
            .map(WeightAverage::checkpoint_entries)
            .unwrap_or_default(),
    );
    let scalar = |v: f64| Tensor::from_slice(&[v]);
    named.push(("state/epoch".into(), scalar(at.epoch as f64)));
    named.push(("state/step".into(), scalar(at.step as f64)));
    named.push(("state/loss_sum".into(), scalar(at.loss_sum)));
    named.push(("state/correct".into(), scalar(at.correct)));
    let rows: Vec<f64> = at
        .finished
        .iter()
        .flat_map(|m| {
            [
                m.epoch as f64,
                m.lr,
                m.train_loss,
                m.train_accuracy,
                m.test_loss,
                m.test_accuracy,
                m.seconds,
            ]
        })
        .collect();
    named.push((
        "state/metrics".into(),
        Tensor::from_slice(&rows).view([at.finished.len() as i64, METRIC_COLUMNS]),
    ));
    report::atomic_write_path(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(|e| e.to_string())
    })
}

/// Reads a safetensors file (anything else, pickles included, is refused) into a name → tensor map.
fn read_safetensors(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    Ok(Tensor::read_safetensors(path)
        .map_err(|e| {
            Error::file(
                path,
                format!(
                    "not a readable safetensors file ({e}); only safetensors weights are accepted"
                ),
            )
        })?
        .into_iter()
        .collect())
}

/// Copies `tensors[prefix + name]` into every parameter, checking presence and shape.
pub(crate) fn load_parameters(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    parameters: &BTreeMap<String, Tensor>,
    prefix: &str,
) -> Result<()> {
    tch::no_grad(|| {
        for (name, p) in parameters {
            let key = format!("{prefix}{name}");
            let saved = tensors.get(&key).ok_or_else(|| {
                Error::file(path, format!("missing `{key}`: weights of another model?"))
            })?;
            if saved.size() != p.size() {
                return Err(Error::file(
                    path,
                    format!(
                        "`{key}` has shape {:?}, the model expects {:?}",
                        saved.size(),
                        p.size()
                    ),
                ));
            }
            p.shallow_clone().copy_(saved);
        }
        Ok(())
    })
}

fn load_checkpoint(
    path: &Path,
    parameters: &BTreeMap<String, Tensor>,
    sgd: &mut Sgd,
    average: Option<&mut WeightAverage>,
) -> Result<Position> {
    let bad = |what: String| Error::file(path, what);
    let tensors = read_safetensors(path)?;
    let scalar = |key: &str| -> Result<f64> {
        tensors
            .get(key)
            .map(|t| t.double_value(&[0]))
            .ok_or_else(|| bad(format!("missing `{key}`: not a checkpoint of this trainer")))
    };
    load_parameters(path, &tensors, parameters, "model/")?;
    if let Some(average) = average {
        average.restore(path, &tensors)?;
    }
    let device = parameters
        .values()
        .next()
        .map(|p| p.device())
        .unwrap_or(Device::Cpu);
    sgd.restore(
        tensors
            .iter()
            .filter_map(|(k, t)| {
                k.strip_prefix("momentum/").map(|name| {
                    (
                        name.to_string(),
                        Layout::default().apply(&t.to_device(device)),
                    )
                })
            })
            .collect(),
    );
    let metrics = tensors
        .get("state/metrics")
        .ok_or_else(|| bad("missing `state/metrics`".into()))?;
    let rows = metrics.size()[0];
    let value = |r: i64, c: i64| metrics.double_value(&[r, c]);
    let finished = (0..rows)
        .map(|r| EpochMetrics {
            epoch: value(r, 0) as usize,
            lr: value(r, 1),
            train_loss: value(r, 2),
            train_accuracy: value(r, 3),
            test_loss: value(r, 4),
            test_accuracy: value(r, 5),
            seconds: value(r, 6),
        })
        .collect();
    Ok(Position {
        epoch: scalar("state/epoch")? as usize,
        step: scalar("state/step")? as i64,
        loss_sum: scalar("state/loss_sum")?,
        correct: scalar("state/correct")?,
        finished,
    })
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

/// Trains `config`, writing `metrics.csv`, `checkpoint.safetensors`, `weights.safetensors` and
/// `manifest.json` under `run_dir`. With `resume`, continues from `run_dir/checkpoint.safetensors`.
pub fn run(
    config: &TrainConfig,
    run_dir: &Path,
    show_progress: bool,
    resume: bool,
) -> Result<TrainOutcome> {
    config.validate()?;
    let started = (report::unix_seconds(), Instant::now());
    if config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    let device = device(&config.device)?;
    let (train, test) = config.dataset.load()?;
    let train = if config.train_subset > 0 {
        train.take(config.train_subset)
    } else {
        train
    };
    let [h, w, c] = train.shape().map(|v| v as i64);
    tch::manual_seed(config.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = classifier(config, &vs, [c, h, w], train.num_classes() as i64)?;
    let parameters: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut sgd = Sgd::new(config.optimizer.clone());
    let mut average = if config.ema_decay > 0.0 {
        Some(WeightAverage::new(
            config.ema_decay,
            config,
            &vs,
            [c, h, w],
            train.num_classes() as i64,
        )?)
    } else {
        None
    };
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let mut at = if resume {
        if !checkpoint.exists() {
            return Err(Error::file(
                &checkpoint,
                "no checkpoint to resume from (run without --resume first)",
            ));
        }
        load_checkpoint(&checkpoint, &parameters, &mut sgd, average.as_mut())?
    } else {
        Position {
            epoch: 0,
            step: 0,
            loss_sum: 0.0,
            correct: 0.0,
            finished: Vec::new(),
        }
    };
    crate::sweep::create_run_dir(run_dir)?;
    let (x_train, y_train) = tensors(&train, device);
    let (x_test, y_test) = tensors(&test, device);
    let n = train.len() as i64;
    let batch = config.batch_size as i64;
    let steps_per_epoch = (n + batch - 1) / batch;
    let total_steps = steps_per_epoch as usize * config.epochs;
    let bar = crate::sweep::progress(total_steps, "train", show_progress);
    bar.set_position((at.epoch * steps_per_epoch as usize + at.step as usize) as u64);
    let synthetic = match &config.synthetic {
        Some(s) => Some((
            port::SyntheticSource::open(s, train.num_classes(), train.shape())?,
            s,
        )),
        None => None,
    };
    let mut free = FreePerturbation::default();
    let interrupted = interrupt_flag();
    let mut was_interrupted = false;
    while at.epoch < config.epochs {
        let epoch_start = Instant::now();
        tch::manual_seed(derived_seed(config.seed, at.epoch, -1));
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let mut lr = 0.0;
        while at.step < steps_per_epoch {
            tch::manual_seed(derived_seed(config.seed, at.epoch, at.step));
            let start = at.step * batch;
            let len = batch.min(n - start);
            let index = order.narrow(0, start, len);
            let (xb, yb) = (
                x_train.index_select(0, &index),
                y_train.index_select(0, &index),
            );
            let xb = if config.augment.is_identity() {
                xb
            } else {
                config.augment.apply(&xb)
            };
            lr = config.lr.at(
                at.epoch as f64 + at.step as f64 / steps_per_epoch as f64,
                config.epochs,
            );
            let (xj, yj, weights) = match &synthetic {
                None => (xb.shallow_clone(), yb.shallow_clone(), None),
                Some((source, s)) => {
                    let count = if s.batch_size == 0 {
                        len as usize
                    } else {
                        s.batch_size
                    };
                    let (xs, ys) = source.sample(count, s.limit, device)?;
                    let xs = if config.augment.is_identity() {
                        xs
                    } else {
                        config.augment.apply(&xs)
                    };
                    let w = port::aggregation_weights(s.gamma, len as usize, count);
                    (
                        Tensor::cat(&[&xb, &xs], 0),
                        Tensor::cat(&[&yb, &ys], 0),
                        Some(
                            Tensor::from_slice(&w)
                                .to_kind(Kind::Float)
                                .to_device(device),
                        ),
                    )
                }
            };
            let progress = at.epoch as f64 + at.step as f64 / steps_per_epoch as f64;
            let objective = if config.epsilon_warmup_epochs > 0.0 {
                config
                    .objective
                    .scaled((progress / config.epsilon_warmup_epochs).min(1.0))
            } else {
                config.objective.clone()
            };
            let mut batch_loss = 0.0;
            for _ in 0..objective.replays() {
                let out = objective.batch_loss(&net, &xj, &yj, config.label_smoothing, &mut free);
                let loss = match &weights {
                    None => out.per_sample.mean(Kind::Float),
                    Some(w) => (&out.per_sample * w).sum(Kind::Float),
                };
                loss.backward();
                objective.after_backward(&xj, &mut free);
                sgd.step(&parameters, lr);
                if let Some(average) = &mut average {
                    average.update(&parameters);
                }
                // Epoch metrics count the real samples (the first `len` rows).
                batch_loss = out
                    .per_sample
                    .narrow(0, 0, len)
                    .mean(Kind::Float)
                    .double_value(&[]);
                at.correct +=
                    correct_count(&out.logits.narrow(0, 0, len), &yb) / objective.replays() as f64;
            }
            at.loss_sum += batch_loss * len as f64;
            at.step += 1;
            bar.set_message(format!("epoch {} loss {batch_loss:.4}", at.epoch + 1));
            bar.inc(1);
            let periodic = config.checkpoint_every_steps > 0
                && at.step % config.checkpoint_every_steps as i64 == 0;
            if interrupted.load(Ordering::SeqCst) || (periodic && at.step < steps_per_epoch) {
                save_checkpoint(&checkpoint, &parameters, &sgd, average.as_ref(), &at)?;
                if interrupted.load(Ordering::SeqCst) {
                    was_interrupted = true;
                    break;
                }
            }
        }
        if was_interrupted {
            break;
        }
        let evaluated = average.as_ref().map_or(&net, |a| &a.net);
        let (test_loss, test_accuracy) = evaluate(evaluated, &x_test, &y_test, 512);
        at.finished.push(EpochMetrics {
            epoch: at.epoch + 1,
            lr,
            train_loss: at.loss_sum / n as f64,
            train_accuracy: at.correct / n as f64,
            test_loss,
            test_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
        bar.set_message(format!(
            "epoch {} test acc {test_accuracy:.4}",
            at.epoch + 1
        ));
        at = Position {
            epoch: at.epoch + 1,
            step: 0,
            loss_sum: 0.0,
            correct: 0.0,
            finished: at.finished,
        };
        report::write_csv(&run_dir.join("metrics.csv"), &at.finished)?;
        save_checkpoint(&checkpoint, &parameters, &sgd, average.as_ref(), &at)?;
    }
    bar.finish_and_clear();
    let weights = run_dir.join("weights.safetensors");
    let saved = average.as_ref().map_or(&vs, |a| &a.vs);
    report::atomic_write_path(&weights, |tmp| {
        save_weights(saved, tmp).map_err(|e| e.to_string())
    })?;
    let device_name = match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => report::cpu_device(),
    };
    let manifest = serde_json::json!({
        "command": "train",
        "config": config,
        "seed": config.seed,
        "git_revision": report::GIT_REVISION,
        "versions": { "proxyrobust": env!("CARGO_PKG_VERSION"), "tch": "0.24.0", "libtorch": "2.11.0" },
        "device": device_name,
        "resumed": resume,
        "interrupted": was_interrupted,
        "started_unix_s": started.0,
        "elapsed_s": started.1.elapsed().as_secs_f64(),
        "outputs": ["metrics.csv", "checkpoint.safetensors", "weights.safetensors", "manifest.json"],
    });
    report::write_json(&run_dir.join("manifest.json"), &manifest)?;
    Ok(TrainOutcome {
        run_dir: run_dir.to_owned(),
        final_test_accuracy: at.finished.last().map(|e| e.test_accuracy).unwrap_or(0.0),
        epochs: at.finished,
        device: device_name,
        interrupted: was_interrupted,
    })
}

/// The model of `config` with the safetensors `weights` loaded (PyTorch names), and the
/// dataset's test split as tensors on the config's device.
pub fn load_classifier(
    config: &TrainConfig,
    weights: &Path,
) -> Result<(nn::VarStore, nn::SequentialT, ImageDataset, Tensor, Tensor)> {
    config.validate()?;
    let device = device(&config.device)?;
    let (train, test) = config.dataset.load()?;
    let [h, w, c] = train.shape().map(|v| v as i64);
    let vs = nn::VarStore::new(device);
    let net = classifier(config, &vs, [c, h, w], train.num_classes() as i64)?;
    let parameters: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    load_parameters(weights, &read_safetensors(weights)?, &parameters, "")?;
    let (x, y) = tensors(&test, device);
    Ok((vs, net, test, x, y))
}
