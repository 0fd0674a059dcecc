//! Adam (Kingma & Ba 2015) as PyTorch's `torch.optim.Adam` computes it (no AMSGrad, L2 weight
//! decay added to the gradient), written out so its moments can be checkpointed:
//! `g ← ∇ + wd·p; m ← β1 m + (1 − β1) g; v ← β2 v + (1 − β2) g²;
//! p ← p − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + eps)`.

use serde::{Deserialize, Serialize};
#[cfg(feature = "torch")]
use {std::collections::BTreeMap, tch::Tensor};

/// `[optimizer]` of a generative model: Adam's coefficients.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// β1, β2 in [0, 1), eps > 0, weight decay ≥ 0; errors name `section.field`.
    pub fn validate(&self, section: &str) -> crate::Result<()> {
        use crate::config::{non_negative_finite, positive_finite, unit_interval_open};
        unit_interval_open(&format!("{section}.beta1"), self.beta1)?;
        unit_interval_open(&format!("{section}.beta2"), self.beta2)?;
        positive_finite(&format!("{section}.eps"), self.eps)?;
        non_negative_finite(&format!("{section}.weight_decay"), self.weight_decay)
    }
}

/// The optimiser state: the step count and both moments of every parameter.
#[cfg(feature = "torch")]
pub struct Adam {
    config: AdamConfig,
    steps: i64,
    first: BTreeMap<String, Tensor>,
    second: BTreeMap<String, Tensor>,
}

#[cfg(feature = "torch")]
impl Adam {
    pub fn new(config: AdamConfig) -> Self {
        Adam {
            config,
            steps: 0,
            first: BTreeMap::new(),
            second: BTreeMap::new(),
        }
    }

    /// One update of every parameter that has a gradient, then the gradients are zeroed.
    pub fn step(&mut self, parameters: &BTreeMap<String, Tensor>, lr: f64) {
        let AdamConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        self.steps += 1;
        let correction1 = 1.0 - beta1.powi(self.steps as i32);
        let correction2 = 1.0 - beta2.powi(self.steps as i32);
        tch::no_grad(|| {
            for (name, p) in parameters {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                if weight_decay != 0.0 {
                    let _ = g.g_add_(&(p * weight_decay));
                }
                let m = self
                    .first
                    .entry(name.clone())
                    .or_insert_with(|| p.zeros_like());
                let _ = m.g_mul_scalar_(beta1).g_add_(&(&g * (1.0 - beta1)));
                let v = self
                    .second
                    .entry(name.clone())
                    .or_insert_with(|| p.zeros_like());
                let _ = v.g_mul_scalar_(beta2).g_add_(&(&g * &g * (1.0 - beta2)));
                let denominator = (&*v / correction2).sqrt() + eps;
                let update = &*m / denominator * (lr / correction1);
                let _ = p.shallow_clone().g_sub_(&update);
                let _ = g.zero_();
            }
        });
    }

    /// The state for a checkpoint: `<prefix>first/<name>`, `<prefix>second/<name>`, `<prefix>steps`.
    pub fn checkpoint_entries(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (kind, moments) in [("first", &self.first), ("second", &self.second)] {
            for (name, t) in moments {
                named.push((
                    format!("{prefix}{kind}/{name}"),
                    t.to_device(tch::Device::Cpu),
                ));
            }
        }
        named.push((
            format!("{prefix}steps"),
            Tensor::from_slice(&[self.steps as f64]),
        ));
        named
    }

    /// Restores the state written by [`Self::checkpoint_entries`] onto `device`.
    pub fn restore(
        &mut self,
        tensors: &BTreeMap<String, Tensor>,
        prefix: &str,
        device: tch::Device,
    ) -> Option<()> {
        self.steps = tensors.get(&format!("{prefix}steps"))?.double_value(&[0]) as i64;
        for (kind, moments) in [("first", &mut self.first), ("second", &mut self.second)] {
            let start = format!("{prefix}{kind}/");
            *moments = tensors
                .iter()
                .filter_map(|(k, t)| {
                    k.strip_prefix(&start)
                        .map(|name| (name.to_string(), t.to_device(device)))
                })
                .collect();
        }
        Some(())
    }
}

#[cfg(all(test, feature = "torch"))]
mod tests {
    use super::*;

    /// Two steps on f(p) = ½ p² from p = 1 (gradient p), recomputed in f64 from the definition.
    #[test]
    fn two_steps_follow_the_definition() {
        let p = Tensor::from_slice(&[1.0f64]).set_requires_grad(true);
        let parameters: BTreeMap<String, Tensor> = [("p".to_string(), p.shallow_clone())].into();
        let mut adam = Adam::new(AdamConfig::default());
        let (mut value, mut m, mut v) = (1.0f64, 0.0f64, 0.0f64);
        for t in 1..=2 {
            (&p * &p * 0.5).sum(tch::Kind::Double).backward();
            adam.step(&parameters, 0.1);
            let g = value;
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            let m_hat = m / (1.0 - 0.9f64.powi(t));
            let v_hat = v / (1.0 - 0.999f64.powi(t));
            value -= 0.1 * m_hat / (v_hat.sqrt() + 1e-8);
            assert!((p.double_value(&[0]) - value).abs() < 1e-12, "step {t}");
        }
    }
}
