//! The diffusion generator ([`super::DdpmConfig`]) on tch: the U-Net ε_θ, its training step and
//! the reverse process (DDPM's ancestral steps or DDIM; Ho et al. 2020, Song et al. 2021).

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::run::{Generative, SampleNoise};
use super::schedule::NoiseSchedule;
use super::unet::UNet;
use super::{DdpmConfig, SampleSettings, Sampler};
use crate::error::Result;
use crate::train::adam::Adam;

/// The trained network, its moving average (what sampling uses) and the optimiser.
pub(super) struct Ddpm {
    config: DdpmConfig,
    /// (C, H, W) of the images.
    image: [i64; 3],
    schedule: NoiseSchedule,
    alpha_bars: Tensor,
    vs: VarStore,
    net: UNet,
    average_vs: VarStore,
    average: UNet,
    adam: Adam,
}

fn variables(vs: &VarStore) -> BTreeMap<String, Tensor> {
    vs.variables().into_iter().collect()
}

impl Ddpm {
    pub(super) fn new(
        config: &DdpmConfig,
        shape: [usize; 3],
        classes: usize,
        device: Device,
    ) -> Result<Self> {
        let unet = |vs: &VarStore| {
            UNet::new(
                &vs.root(),
                shape[2] as i64,
                classes as i64,
                config.width as i64,
            )
        };
        let (vs, average_vs) = (VarStore::new(device), VarStore::new(device));
        let (net, average) = (unet(&vs), unet(&average_vs));
        tch::no_grad(|| {
            let trained = variables(&vs);
            for (name, v) in variables(&average_vs) {
                v.shallow_clone().copy_(&trained[&name]);
            }
        });
        let schedule = NoiseSchedule::new(config.schedule, config.timesteps)?;
        Ok(Ddpm {
            alpha_bars: Tensor::from_slice(&schedule.alpha_bars)
                .to_kind(Kind::Float)
                .to_device(device),
            schedule,
            image: [shape[2], shape[0], shape[1]].map(|v| v as i64),
            config: config.clone(),
            vs,
            net,
            average_vs,
            average,
            adam: Adam::new(config.optimizer.clone()),
        })
    }

    /// The guided prediction `(1 + w) ε(x, t, y) − w ε(x, t, ∅)` of the averaged network.
    fn guided(&self, x: &Tensor, t: usize, y: &Tensor, guidance: f64) -> Tensor {
        let n = x.size()[0];
        let steps = Tensor::full([n], t as i64, (Kind::Int64, x.device()));
        let conditional = self.average.forward(x, &steps, y);
        if guidance == 0.0 {
            return conditional;
        }
        let null = Tensor::full([n], self.average.null_class(), (Kind::Int64, x.device()));
        conditional * (1.0 + guidance) - self.average.forward(x, &steps, &null) * guidance
    }

    /// x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t, clipped to the data range [−1, 1].
    fn predicted_data(&self, x: &Tensor, eps: &Tensor, t: usize) -> Tensor {
        let alpha_bar = self.schedule.alpha_bars[t];
        ((x - eps * (1.0 - alpha_bar).sqrt()) / alpha_bar.sqrt()).clamp(-1.0, 1.0)
    }
}

impl Generative for Ddpm {
    /// `‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t, y)‖²` with labels dropped to the null class with
    /// probability `unconditional_probability`; then the moving average follows.
    fn step(&mut self, x0: &Tensor, y: &Tensor) -> f64 {
        let (n, device) = (x0.size()[0], x0.device());
        let drop =
            Tensor::rand([n], (Kind::Float, device)).lt(self.config.unconditional_probability);
        let labels = y.masked_fill(&drop, self.net.null_class());
        let t = Tensor::randint(self.config.timesteps as i64, [n], (Kind::Int64, device));
        let noise = x0.randn_like();
        let alpha_bar = self.alpha_bars.index_select(0, &t).view([n, 1, 1, 1]);
        let xt = alpha_bar.sqrt() * x0 + (alpha_bar.ones_like() - &alpha_bar).sqrt() * &noise;
        let loss = self
            .net
            .forward(&xt, &t, &labels)
            .mse_loss(&noise, tch::Reduction::Mean);
        loss.backward();
        let parameters = variables(&self.vs);
        self.adam.step(&parameters, self.config.lr);
        let keep = if self.config.ema_decay > 0.0 {
            1.0 - self.config.ema_decay
        } else {
            1.0
        };
        tch::no_grad(|| {
            for (name, v) in variables(&self.average_vs) {
                let _ = v.shallow_clone().lerp_(&parameters[&name], keep);
            }
        });
        loss.double_value(&[])
    }

    fn variables(&self) -> Vec<(&'static str, BTreeMap<String, Tensor>)> {
        vec![
            ("model/", variables(&self.vs)),
            ("ema/", variables(&self.average_vs)),
        ]
    }

    fn optimizers(&self) -> Vec<(&'static str, &Adam)> {
        vec![("adam/", &self.adam)]
    }

    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Adam)> {
        vec![("adam/", &mut self.adam)]
    }

    /// The moving average (the trained weights themselves when `ema_decay` is 0).
    fn sampling_store(&self) -> &VarStore {
        &self.average_vs
    }

    fn generate(
        &self,
        y: &Tensor,
        noise: &mut SampleNoise,
        settings: &SampleSettings,
    ) -> Result<Tensor> {
        let device = self.average_vs.device();
        let [c, h, w] = self.image;
        let like = Tensor::zeros([y.size()[0], c, h, w], (Kind::Float, device));
        let mut x = noise.images(&like);
        let s = &self.schedule;
        match settings.sampler {
            Sampler::Ddpm => {
                for t in (0..s.len()).rev() {
                    let eps = self.guided(&x, t, y, settings.guidance);
                    let (c0, ct) = s.posterior_mean_coefficients(t);
                    x = self.predicted_data(&x, &eps, t) * c0 + &x * ct;
                    if t > 0 {
                        x += noise.images(&like) * s.posterior_variance(t).sqrt();
                    }
                }
            }
            Sampler::Ddim => {
                let steps = s.subsequence(settings.sampling_steps)?;
                for (i, &t) in steps.iter().enumerate() {
                    let eps = self.guided(&x, t, y, settings.guidance);
                    let (data, direction, sigma) =
                        s.ddim_coefficients(t, steps.get(i + 1).copied(), settings.eta);
                    // The direction uses the noise consistent with the clipped x̂_0 (as
                    // improved-diffusion does), not the raw prediction: at large t a small error
                    // in ε̂ moves x̂_0 far outside [−1, 1], and mixing the clipped x̂_0 with the raw
                    // ε̂ leaves the deterministic trajectory.
                    let x0 = self.predicted_data(&x, &eps, t);
                    let alpha_bar = s.alpha_bars[t];
                    let eps = (&x - &x0 * alpha_bar.sqrt()) / (1.0 - alpha_bar).sqrt();
                    x = x0 * data + &eps * direction;
                    if sigma > 0.0 {
                        x += noise.images(&like) * sigma;
                    }
                }
            }
        }
        Ok(x)
    }
}
