//! Exponential moving average of the weights, one of the training improvements the paper's
//! follow-up work showed to matter for adversarial training (Gowal et al. 2021; Wang et al. 2023,
//! "Better diffusion models further improve adversarial training").
//!
//! After every optimiser step, every floating-point variable v of the model (weights and
//! batch-norm running statistics) updates its average v̄ ← d_t·v̄ + (1 − d_t)·v, with the usual
//! warm-up d_t = min(d, (1 + t)/(10 + t)) at update t (so early averages are not dominated by the
//! random initialisation); integer buffers (`num_batches_tracked`) are copied. Evaluation and the
//! saved `weights.safetensors` use the averaged model.

use std::collections::BTreeMap;
use std::path::Path;

use tch::Tensor;
use tch::nn::{self, VarStore};

use super::TrainConfig;
use super::classifier::{classifier, load_parameters};
use crate::error::{Error, Result};
use crate::model::layout::contiguous_cpu;

/// The averaged copy of a model: its own variable store and network, updated from the
/// training model's variables.
pub(crate) struct WeightAverage {
    decay: f64,
    updates: i64,
    pub(crate) vs: VarStore,
    pub(crate) net: nn::SequentialT,
    variables: BTreeMap<String, Tensor>,
}

const PREFIX: &str = "ema/";
const UPDATES_KEY: &str = "ema-state/updates";

impl WeightAverage {
    /// An average of `config`'s model starting at the training model's current variables.
    pub(crate) fn new(
        decay: f64,
        config: &TrainConfig,
        source: &VarStore,
        input: [i64; 3],
        classes: i64,
    ) -> Result<Self> {
        let mut vs = VarStore::new(source.device());
        let net = classifier(config, &vs, input, classes)?;
        vs.copy(source).map_err(|e| {
            Error::invalid(
                "ema_decay",
                format!("cannot copy the model into its average: {e}"),
            )
        })?;
        let variables = vs.variables().into_iter().collect();
        Ok(WeightAverage {
            decay,
            updates: 0,
            vs,
            net,
            variables,
        })
    }

    /// The decay used at update t: min(d, (1 + t)/(10 + t)).
    pub(crate) fn decay_at(decay: f64, updates: i64) -> f64 {
        decay.min((1.0 + updates as f64) / (10.0 + updates as f64))
    }

    /// v̄ ← d_t·v̄ + (1 − d_t)·v for every float variable; integer buffers copied.
    pub(crate) fn update(&mut self, current: &BTreeMap<String, Tensor>) {
        let d = Self::decay_at(self.decay, self.updates);
        tch::no_grad(|| {
            for (name, average) in &self.variables {
                let mut average = average.shallow_clone();
                let value = &current[name];
                if average.is_floating_point() {
                    let _ = average.lerp_(value, 1.0 - d);
                } else {
                    average.copy_(value);
                }
            }
        });
        self.updates += 1;
    }

    /// The average's tensors for a checkpoint (`ema/<name>` and the update count).
    pub(crate) fn checkpoint_entries(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self
            .variables
            .iter()
            .map(|(name, v)| (format!("{PREFIX}{name}"), contiguous_cpu(v)))
            .collect();
        named.push((
            UPDATES_KEY.into(),
            Tensor::from_slice(&[self.updates as f64]),
        ));
        named
    }

    /// Restores the average from a checkpoint written with [`Self::checkpoint_entries`].
    pub(crate) fn restore(
        &mut self,
        path: &Path,
        tensors: &BTreeMap<String, Tensor>,
    ) -> Result<()> {
        load_parameters(path, tensors, &self.variables, PREFIX)?;
        let updates = tensors.get(UPDATES_KEY).ok_or_else(|| {
            Error::file(
                path,
                format!("missing `{UPDATES_KEY}`: the checkpoint was written without ema_decay"),
            )
        })?;
        self.updates = crate::host::scalar(updates) as i64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// The average follows v̄_{t+1} = d_t v̄_t + (1 − d_t) v_t with d_t = min(d, (1+t)/(10+t)),
    /// recomputed here in f64 from its definition; integer buffers are copied.
    #[test]
    fn average_follows_the_warm_up_recursion() {
        let vs = VarStore::new(tch::Device::Cpu);
        let weight = vs.root().zeros("weight", &[3]);
        let counter = vs.root().zeros_no_train("count", &[1]).to_kind(Kind::Int64);
        let variables: BTreeMap<String, Tensor> = [
            ("weight".to_string(), weight.shallow_clone()),
            ("count".to_string(), counter),
        ]
        .into_iter()
        .collect();
        let mut average = WeightAverage {
            decay: 0.9,
            updates: 0,
            vs,
            net: nn::seq_t(),
            variables,
        };
        let mut expected = 0.0f64;
        for t in 0..40i64 {
            let value = (t as f64 * 0.37).sin();
            let current: BTreeMap<String, Tensor> = [
                ("weight".to_string(), Tensor::from_slice(&[value as f32; 3])),
                ("count".to_string(), Tensor::from_slice(&[t])),
            ]
            .into_iter()
            .collect();
            average.update(&current);
            let d = 0.9f64.min((1.0 + t as f64) / (10.0 + t as f64));
            expected = d * expected + (1.0 - d) * value;
            let got = average.variables["weight"].double_value(&[1]);
            assert!(
                (got - expected).abs() < 1e-5,
                "update {t}: {got} vs {expected}"
            );
            assert_eq!(average.variables["count"].int64_value(&[0]), t);
        }
        assert_eq!(WeightAverage::decay_at(0.999, 0), 0.1);
        assert_eq!(WeightAverage::decay_at(0.5, 1000), 0.5);
    }
}
