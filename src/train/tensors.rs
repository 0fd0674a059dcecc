//! Training on samples held in memory as tensors, by any [`Objective`]: SGD with momentum and a
//! cosine learning-rate decay, shuffled mini-batches from a seeded permutation per epoch. Serves
//! the models trained inside another computation (ARC's robust discriminators, the network
//! classifier of the Theorem 1 sweep), where the dataset is a tensor rather than a config.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tch::nn::{ModuleT, VarStore};
use tch::{Kind, Tensor};

use super::objective::{FreePerturbation, Objective};
use super::schedule::{LearningRate, Schedule};
use super::{Sgd, SgdConfig};

/// How long and how fast [`fit`] trains.
#[derive(Clone, Debug)]
pub struct FitSchedule {
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate, decayed by a cosine over the epochs (no warm-up).
    pub lr: f64,
    pub optimizer: SgdConfig,
}

/// The trainable variables of `vs` by a stable name, as [`Sgd::step`] takes them.
pub fn parameters(vs: &VarStore) -> BTreeMap<String, Tensor> {
    vs.trainable_variables()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (i.to_string(), t))
        .collect()
}

/// Trains `net` (its variables in `vs`) on inputs `x` and labels `y` (both on the CPU; batches
/// are moved to `device`) by `objective`'s per-sample loss, averaged over the batch.
pub fn fit(
    net: &impl ModuleT,
    vs: &VarStore,
    (x, y): (&Tensor, &Tensor),
    objective: &Objective,
    schedule: &FitSchedule,
    device: tch::Device,
    seed: u64,
) {
    let parameters = parameters(vs);
    let lr = LearningRate {
        base: schedule.lr,
        warmup_epochs: 0.0,
        schedule: Schedule::Cosine,
    };
    let mut sgd = Sgd::new(schedule.optimizer.clone());
    let n = x.size()[0];
    let batch = schedule.batch_size.max(1);
    let steps_per_epoch = ((n + batch as i64 - 1) / batch as i64).max(1);
    let mut free = FreePerturbation::default();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    for epoch in 0..schedule.epochs {
        let mut order: Vec<i64> = (0..n).collect();
        order.shuffle(&mut rng);
        for (step, chunk) in order.chunks(batch).enumerate() {
            let index = Tensor::from_slice(chunk);
            let xb = x.index_select(0, &index).to_device(device);
            let yb = y.index_select(0, &index).to_device(device);
            let loss = objective
                .batch_loss(net, &xb, &yb, 0.0, &mut free)
                .per_sample
                .mean(Kind::Float);
            loss.backward();
            let t = (epoch as i64 * steps_per_epoch + step as i64) as f64 / steps_per_epoch as f64;
            sgd.step(&parameters, lr.at(t, schedule.epochs));
        }
    }
}
