//! The natural-training loop on tch: SGD over shuffled mini-batches, the learning rate set every
//! step from the schedule, evaluation on the test split after every epoch, per-epoch CSV, a
//! progress bar with ETA and live loss and accuracy, and a JSON manifest.

use std::path::Path;
use std::time::Instant;

use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::{EpochMetrics, TrainConfig};
use crate::data::{DatasetSource, ImageDataset, mnist10k};
use crate::error::{Error, Result};
use crate::model;
use crate::report;

/// What a finished run reports.
#[derive(Debug, serde::Serialize)]
pub struct TrainOutcome {
    pub run_dir: std::path::PathBuf,
    pub final_test_accuracy: f64,
    pub epochs: Vec<EpochMetrics>,
    pub device: String,
}

fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        "cuda" => Err(Error::invalid("device", "cuda, but libtorch sees no CUDA device here")),
        _ => Ok(Device::cuda_if_available()),
    }
}

/// Images as a float tensor in [0, 1], NCHW, and labels as int64.
fn tensors(data: &ImageDataset, device: Device) -> (Tensor, Tensor) {
    let [h, w, c] = data.shape().map(|v| v as i64);
    let x = Tensor::from_slice(data.pixels())
        .view([data.len() as i64, h, w, c])
        .permute([0, 3, 1, 2])
        .contiguous()
        .to_kind(Kind::Float)
        / 255.0;
    (x.to_device(device), Tensor::from_slice(data.labels()).to_device(device))
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
            correct += logits.argmax(-1, false).eq_tensor(&yb).to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
            start += len;
        }
    });
    (loss / n as f64, correct / n as f64)
}

/// Trains `config` and writes `metrics.csv`, `manifest.json` and `weights.safetensors` under
/// `run_dir`.
pub fn run(config: &TrainConfig, run_dir: &Path, show_progress: bool) -> Result<TrainOutcome> {
    config.validate()?;
    let started = (report::unix_seconds(), Instant::now());
    tch::manual_seed(config.seed as i64);
    if config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    let device = device(&config.device)?;
    let (train, test) = match config.dataset {
        DatasetSource::Mnist10k => mnist10k()?,
    };
    let train = if config.train_subset > 0 { train.take(config.train_subset) } else { train };
    let [h, w, c] = train.shape().map(|v| v as i64);
    let vs = nn::VarStore::new(device);
    let net = model::build(&vs.root(), config.model, [c, h, w], train.num_classes() as i64)?;
    let o = &config.optimizer;
    let mut optimizer = nn::Sgd { momentum: o.momentum, dampening: 0.0, wd: o.weight_decay, nesterov: o.nesterov }
        .build(&vs, config.lr.at(0.0, config.epochs))
        .map_err(|e| Error::invalid("optimizer", e.to_string()))?;
    let (x_train, y_train) = tensors(&train, device);
    let (x_test, y_test) = tensors(&test, device);
    let n = train.len() as i64;
    let batch = config.batch_size as i64;
    let steps_per_epoch = (n + batch - 1) / batch;
    let bar = crate::sweep::progress((steps_per_epoch as usize) * config.epochs, "train", show_progress);
    let mut epochs = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs {
        let epoch_start = Instant::now();
        let order = Tensor::randperm(n, (Kind::Int64, device));
        let (mut loss_sum, mut correct, mut lr) = (0.0, 0.0, 0.0);
        for step in 0..steps_per_epoch {
            let start = step * batch;
            let len = batch.min(n - start);
            let index = order.narrow(0, start, len);
            let (xb, yb) = (x_train.index_select(0, &index), y_train.index_select(0, &index));
            lr = config.lr.at(epoch as f64 + step as f64 / steps_per_epoch as f64, config.epochs);
            optimizer.set_lr(lr);
            let logits = net.forward_t(&xb, true);
            let loss = logits.cross_entropy_for_logits(&yb);
            optimizer.backward_step(&loss);
            let batch_loss = loss.double_value(&[]);
            loss_sum += batch_loss * len as f64;
            correct += logits.argmax(-1, false).eq_tensor(&yb).to_kind(Kind::Double).sum(Kind::Double).double_value(&[]);
            bar.set_message(format!("epoch {} loss {batch_loss:.4}", epoch + 1));
            bar.inc(1);
        }
        let (test_loss, test_accuracy) = evaluate(&net, &x_test, &y_test, 512);
        epochs.push(EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / n as f64,
            train_accuracy: correct / n as f64,
            test_loss,
            test_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
        bar.set_message(format!("epoch {} test acc {test_accuracy:.4}", epoch + 1));
    }
    bar.finish_and_clear();
    crate::sweep::create_run_dir(run_dir)?;
    report::write_csv(&run_dir.join("metrics.csv"), &epochs)?;
    let weights = run_dir.join("weights.safetensors");
    report::atomic_write_path(&weights, |tmp| vs.save(tmp).map_err(|e| e.to_string()))?;
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
        "started_unix_s": started.0,
        "elapsed_s": started.1.elapsed().as_secs_f64(),
        "outputs": ["metrics.csv", "weights.safetensors", "manifest.json"],
    });
    report::write_json(&run_dir.join("manifest.json"), &manifest)?;
    Ok(TrainOutcome {
        run_dir: run_dir.to_owned(),
        final_test_accuracy: epochs.last().map(|e| e.test_accuracy).unwrap_or(0.0),
        epochs,
        device: device_name,
    })
}
