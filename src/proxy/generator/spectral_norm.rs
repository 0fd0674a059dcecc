//! Spectral normalisation (Miyato et al. 2018), the discriminator's Lipschitz control in the
//! projection-discriminator GAN ([`super::GanConfig::spectral_norm`]).
//!
//! A weight W, viewed as the matrix W_mat of its first dimension against all the others, is used
//! as W / σ(W_mat), σ the largest singular value, estimated by one step of power iteration per
//! forward pass with the left singular vector estimate u carried between passes:
//! v = W_matᵀu / ‖W_matᵀu‖, u ← W_mat v / ‖W_mat v‖, σ = uᵀ W_mat v. u and v are constants
//! for the gradient (as in the paper's Algorithm 1); σ carries the gradient into W.

use tch::{Kind, Tensor, nn};

/// The persistent u of one weight. It is a non-trainable variable of the variable store, so
/// checkpoints hold it and a resumed run continues the same iteration.
pub struct PowerIteration {
    u: Tensor,
}

fn unit(x: &Tensor) -> Tensor {
    x / (x.norm() + 1e-12)
}

impl PowerIteration {
    /// A random unit u for a weight whose first dimension is `rows`.
    pub fn new(p: nn::Path, rows: i64) -> Self {
        let u = p.zeros_no_train("u", &[rows]);
        tch::no_grad(|| {
            let start = Tensor::randn([rows], (Kind::Float, p.device()));
            u.shallow_clone().copy_(&unit(&start));
        });
        PowerIteration { u }
    }

    /// One power-iteration step on `weight`, then `weight / σ`.
    pub fn normalize(&self, weight: &Tensor) -> Tensor {
        let matrix = weight.flatten(1, -1);
        let (u, v) = tch::no_grad(|| {
            let v = unit(&matrix.tr().mv(&self.u));
            let u = unit(&matrix.mv(&v));
            self.u.shallow_clone().copy_(&u);
            (u, v)
        });
        let sigma = u.dot(&matrix.mv(&v));
        weight / sigma
    }
}
