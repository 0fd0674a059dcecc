//! Checkpoints of a training run: `checkpoint.safetensors` (written atomically) holds the
//! weights (`model/<name>`), the SGD momentum buffers (`momentum/<name>`), the weight average
//! when there is one (`ema/<name>`), the position (`state/epoch`, `state/step`), the running sums
//! of the current epoch, the metrics of finished epochs (`state/metrics`) and the epochs after
//! which the model had collapsed to one class (`state/collapsed`: their count, then the epochs).

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Tensor};

use super::EpochMetrics;
use super::Sgd;
use super::classifier::{load_parameters, read_safetensors};
use super::ema::WeightAverage;
use crate::error::{Error, Result};
use crate::model::layout::{Layout, contiguous_cpu};
use crate::report;

/// Where training stands: the next step to run and the sums of the current epoch.
pub(super) struct Position {
    pub epoch: usize,
    pub step: i64,
    pub loss_sum: f64,
    pub correct: f64,
    pub grad_norm_sum: f64,
    pub finished: Vec<EpochMetrics>,
    /// Finished epochs (1-based) after which the model predicted one class for at least
    /// [`COLLAPSED_FRACTION`] of the test images: a collapse.
    pub collapsed: Vec<usize>,
}

/// The share of test images given one class above which an epoch counts as collapsed.
pub(super) const COLLAPSED_FRACTION: f64 = 0.99;

impl Position {
    /// The start of a run.
    pub(super) fn start() -> Self {
        Position {
            epoch: 0,
            step: 0,
            loss_sum: 0.0,
            correct: 0.0,
            grad_norm_sum: 0.0,
            finished: Vec::new(),
            collapsed: Vec::new(),
        }
    }

    /// The start of the next epoch, with `metrics` of the one just finished recorded, and
    /// whether its model had `collapsed`.
    pub(super) fn next_epoch(mut self, metrics: EpochMetrics, collapsed: bool) -> Self {
        if collapsed {
            self.collapsed.push(metrics.epoch);
        }
        self.finished.push(metrics);
        Position {
            epoch: self.epoch + 1,
            finished: self.finished,
            collapsed: self.collapsed,
            ..Position::start()
        }
    }
}

const METRIC_COLUMNS: i64 = 8;

/// How a training run uses its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// A new run; a folder that already holds a checkpoint is refused.
    Fresh,
    /// Continue from the folder's checkpoint, made with the same config.
    Resume,
    /// A new run that replaces whatever the folder holds.
    Overwrite,
}

/// The config a run was started with, kept beside its checkpoint so `--resume` can compare.
pub(crate) const RUN_CONFIG: &str = "run_config.json";

/// Config fields any resumed run may change: where and how fast it runs, not what it computes.
pub(crate) const RESUMABLE_FIELDS: [&str; 6] = [
    "device",
    "threads",
    "checkpoint_every_steps",
    "log_every_steps",
    "collective_timeout_seconds",
    "name",
];

/// Prepares `run_dir` for a run of `config` started as `start`: removes temporary files that dead
/// processes left behind; a fresh start refuses a folder holding `checkpoint.safetensors`; a
/// resume needs the checkpoint and a recorded config equal to `config` in every top-level field
/// but `resumable` (the error names the fields that differ); fresh and overwriting starts record
/// `config` in `run_config.json`.
pub(crate) fn claim_run_dir<T: serde::Serialize + serde::de::DeserializeOwned>(
    run_dir: &Path,
    config: &T,
    start: Start,
    resumable: &[&str],
) -> Result<()> {
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let current =
        serde_json::to_value(config).map_err(|e| Error::invalid("config", e.to_string()))?;
    match start {
        Start::Fresh if checkpoint.exists() => {
            return Err(Error::file(
                &checkpoint,
                "the run folder already holds a checkpoint: continue it with --resume or replace it with --overwrite",
            ));
        }
        Start::Resume => {
            if !checkpoint.exists() {
                return Err(Error::file(
                    &checkpoint,
                    "no checkpoint to resume from (run without --resume first)",
                ));
            }
            let recorded_file = run_dir.join(RUN_CONFIG);
            let recorded: serde_json::Value = std::fs::read_to_string(&recorded_file)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .ok_or_else(|| {
                    Error::file(
                        &recorded_file,
                        "no readable record of the config the checkpoint was made with; start again with --overwrite",
                    )
                })?;
            // Read back through the config type, so a field added since the checkpoint was made
            // compares as its default.
            let recorded = serde_json::from_value::<T>(recorded.clone())
                .ok()
                .and_then(|c| serde_json::to_value(c).ok())
                .unwrap_or(recorded);
            let changed = changed_fields(&recorded, &current, resumable);
            if !changed.is_empty() {
                return Err(Error::invalid(
                    "--resume",
                    format!(
                        "the same config the checkpoint in {} was made with; changed: {} (start a new run with --overwrite or another --out)",
                        run_dir.display(),
                        changed.join(", ")
                    ),
                ));
            }
        }
        _ => {}
    }
    report::create_run_dir(run_dir)?;
    report::remove_stale_temporaries(run_dir);
    if start != Start::Resume {
        report::write_json(&run_dir.join(RUN_CONFIG), &current)?;
    }
    Ok(())
}

/// Dotted names of the fields whose values differ between two configs (beyond the top-level
/// fields `resumable`), with the old and the new value.
fn changed_fields(
    old: &serde_json::Value,
    new: &serde_json::Value,
    resumable: &[&str],
) -> Vec<String> {
    fn walk(
        prefix: &str,
        old: &serde_json::Value,
        new: &serde_json::Value,
        resumable: &[&str],
        out: &mut Vec<String>,
    ) {
        match (old, new) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    if prefix.is_empty() && resumable.contains(&key.as_str()) {
                        continue;
                    }
                    let name = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    let null = serde_json::Value::Null;
                    walk(
                        &name,
                        a.get(key).unwrap_or(&null),
                        b.get(key).unwrap_or(&null),
                        resumable,
                        out,
                    );
                }
            }
            (a, b) if a != b => out.push(format!("{prefix} ({a} → {b})")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", old, new, resumable, &mut out);
    out
}

/// The end of a training run (classifier or generator): `weights.safetensors` from `weights`,
/// then `manifest.json` listing it with `metrics.csv` and `checkpoint.safetensors`.
pub(crate) fn finish_run(
    run_dir: &Path,
    weights: &tch::nn::VarStore,
    manifest: &mut report::Manifest,
) -> Result<()> {
    report::atomic_write_path(&run_dir.join("weights.safetensors"), |tmp| {
        crate::model::layout::save_weights(weights, tmp).map_err(|e| e.to_string())
    })?;
    manifest.write(
        run_dir,
        &[
            "metrics.csv",
            "checkpoint.safetensors",
            "weights.safetensors",
        ],
    )
}

/// Writes the checkpoint of position `at` to `path`.
pub(super) fn save(
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
    named.push(("state/grad_norm_sum".into(), scalar(at.grad_norm_sum)));
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
                m.grad_norm,
            ]
        })
        .collect();
    named.push((
        "state/metrics".into(),
        Tensor::from_slice(&rows).view([at.finished.len() as i64, METRIC_COLUMNS]),
    ));
    // The count first, so the tensor is never empty.
    let collapsed: Vec<f64> = std::iter::once(at.collapsed.len() as f64)
        .chain(at.collapsed.iter().map(|&e| e as f64))
        .collect();
    named.push(("state/collapsed".into(), Tensor::from_slice(&collapsed)));
    report::atomic_write_path(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(|e| e.to_string())
    })
}

/// Reads a checkpoint written by [`save`] into the model, the optimiser and the average; returns
/// the position to continue from.
pub(super) fn load(
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
    let (rows, columns) = (metrics.size()[0], metrics.size()[1]);
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
            // Checkpoints made before the column existed have seven.
            grad_norm: if columns > 7 { value(r, 7) } else { f64::NAN },
        })
        .collect();
    Ok(Position {
        epoch: scalar("state/epoch")? as usize,
        step: scalar("state/step")? as i64,
        loss_sum: scalar("state/loss_sum")?,
        correct: scalar("state/correct")?,
        grad_norm_sum: scalar("state/grad_norm_sum").unwrap_or(f64::NAN),
        finished,
        collapsed: tensors.get("state/collapsed").map_or(Vec::new(), |t| {
            let count = t.double_value(&[0]) as i64;
            (1..=count).map(|i| t.double_value(&[i]) as usize).collect()
        }),
    })
}
