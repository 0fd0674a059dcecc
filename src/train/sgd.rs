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
    coefficients: Option<Coefficients>,
}

/// The update's coefficients as 0-dim tensors on the parameters' device, made once: the fused
/// `addcmul_` takes its factor as a tensor, and moving a host scalar to a GPU on every call
/// would synchronise the host with the device once per parameter. The learning rate is refilled
/// in place (`fill_`, a kernel with a scalar argument) at every step.
struct Coefficients {
    weight_decay: Tensor,
    momentum: Tensor,
    negative_lr: Tensor,
}

impl Coefficients {
    fn new(config: &SgdConfig, like: &Tensor) -> Self {
        let scalar = |v: f64| {
            Tensor::from(v)
                .to_kind(like.kind())
                .to_device(like.device())
        };
        Coefficients {
            weight_decay: scalar(config.weight_decay),
            momentum: scalar(config.momentum),
            negative_lr: scalar(0.0),
        }
    }

    /// `t` on `p`'s device and kind (a no-op where it already is).
    fn like(t: &Tensor, p: &Tensor) -> Tensor {
        if t.device() == p.device() && t.kind() == p.kind() {
            t.shallow_clone()
        } else {
            t.to_kind(p.kind()).to_device(p.device())
        }
    }
}

impl Sgd {
    pub fn new(config: SgdConfig) -> Self {
        Sgd {
            config,
            buffers: BTreeMap::new(),
            coefficients: None,
        }
    }

    /// One update of every parameter that has a gradient, then the gradients are zeroed; returns
    /// the gradient's L2 norm over all parameters before clipping (a 0-dim tensor on the
    /// parameters' device; `None` when no parameter has a gradient). With `max_grad_norm` > 0 the
    /// gradient is first scaled by `min(1, max_grad_norm / (‖g‖ + 1e-6))`, as PyTorch's
    /// `clip_grad_norm_`. Each `a += c·b` is one fused `addcmul_` with a 0-dim coefficient
    /// tensor, so an update reads and writes every parameter-sized tensor about five times (the
    /// gradient is updated in place), and nothing waits for the device.
    pub fn step(&mut self, parameters: &BTreeMap<String, Tensor>, lr: f64) -> Option<Tensor> {
        let SgdConfig {
            momentum,
            nesterov,
            weight_decay,
            max_grad_norm,
        } = self.config;
        let first = parameters.values().next()?;
        let coefficients = self
            .coefficients
            .get_or_insert_with(|| Coefficients::new(&self.config, first));
        tch::no_grad(|| {
            let norm = gradient_norm(parameters)?;
            if max_grad_norm > 0.0 {
                let scale = ((&norm + 1e-6).reciprocal() * max_grad_norm).clamp_max(1.0);
                for p in parameters.values() {
                    let mut g = p.grad();
                    if g.defined() {
                        let _ = g.g_mul_(&Coefficients::like(&scale, &g));
                    }
                }
            }
            let _ = coefficients.negative_lr.fill_(-lr);
            for (name, p) in parameters {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                if weight_decay != 0.0 {
                    let _ = g.addcmul_(p, &Coefficients::like(&coefficients.weight_decay, p));
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
                        let _ = g.addcmul_(&buffer, &Coefficients::like(&coefficients.momentum, p));
                        g.shallow_clone()
                    } else {
                        buffer
                    }
                } else {
                    g.shallow_clone()
                };
                let _ = p
                    .shallow_clone()
                    .addcmul_(&update, &Coefficients::like(&coefficients.negative_lr, p));
                let _ = g.zero_();
            }
            Some(norm)
        })
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

/// `‖g‖₂` over the gradients of all `parameters` together, as a 0-dim float tensor on their
/// device (`None` when none has a gradient).
fn gradient_norm(parameters: &BTreeMap<String, Tensor>) -> Option<Tensor> {
    let norms: Vec<Tensor> = parameters
        .values()
        .map(Tensor::grad)
        .filter(Tensor::defined)
        .map(|g| g.to_kind(tch::Kind::Float).norm())
        .collect();
    (!norms.is_empty()).then(|| Tensor::stack(&norms, 0).norm())
}
