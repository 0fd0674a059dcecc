//! SGD with momentum, Nesterov and weight decay, written out so its momentum buffers can be
//! checkpointed (tch's optimizer keeps them inside libtorch with no way to read or restore
//! them). The update is PyTorch's `torch.optim.SGD` with dampening 0:
//! `g ← ∇ + wd·p; b ← g` on the first step, `b ← μ·b + g` after; `g ← g + μ·b` (Nesterov) or
//! `g ← b`; `p ← p − lr·g`.

use std::collections::BTreeMap;

use tch::Tensor;

use super::SgdConfig;

/// The optimizer state: one momentum buffer per parameter name.
pub struct Sgd {
    config: SgdConfig,
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    pub fn new(config: SgdConfig) -> Self {
        Sgd { config, buffers: BTreeMap::new() }
    }

    /// One update of every parameter that has a gradient, then the gradients are zeroed. Each
    /// `a += c·b` is one fused `addcmul_` with a 0-dim scalar tensor, so an update reads and
    /// writes every parameter-sized tensor about five times (the gradient is updated in place).
    pub fn step(&mut self, parameters: &BTreeMap<String, Tensor>, lr: f64) {
        let SgdConfig { momentum, nesterov, weight_decay } = self.config;
        tch::no_grad(|| {
            for (name, p) in parameters {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let scalar = |v: f64| Tensor::from(v).to_kind(p.kind()).to_device(p.device());
                if weight_decay != 0.0 {
                    let _ = g.addcmul_(p, &scalar(weight_decay));
                }
                let update = if momentum != 0.0 {
                    let buffer = match self.buffers.get_mut(name) {
                        Some(b) => {
                            let _ = b.g_mul_scalar_(momentum).g_add_(&g);
                            b.shallow_clone()
                        }
                        None => {
                            let b = g.detach().copy();
                            self.buffers.insert(name.clone(), b.shallow_clone());
                            b
                        }
                    };
                    if nesterov {
                        let _ = g.addcmul_(&buffer, &scalar(momentum));
                        g.shallow_clone()
                    } else {
                        buffer
                    }
                } else {
                    g.shallow_clone()
                };
                let _ = p.shallow_clone().addcmul_(&update, &scalar(-lr));
                let _ = g.zero_();
            }
        });
    }

    /// The momentum buffers, by parameter name.
    pub fn buffers(&self) -> &BTreeMap<String, Tensor> {
        &self.buffers
    }

    /// Restores buffers saved by [`Sgd::buffers`].
    pub fn restore(&mut self, buffers: BTreeMap<String, Tensor>) {
        self.buffers = buffers;
    }
}
