//! The GAN generator ([`super::GanConfig`]) on tch: a class-conditional DCGAN (Radford et al.
//! 2016) at the two image sizes of the toolkit's defaults (28 and 32 pixels: the generator starts
//! at a quarter of the side) with a projection discriminator (Miyato & Koyama 2018).
//!
//! Generator: [z, embed(y)] → linear → (2·width, H/4, W/4) → BN, ReLU → 4×4 transposed conv,
//! stride 2 → (width, H/2, W/2) → BN, ReLU → 4×4 transposed conv, stride 2 → (C, H, W) → tanh.
//! Discriminator: 4×4 conv, stride 2 → LeakyReLU(0.2) → 4×4 conv, stride 2 → LeakyReLU(0.2) →
//! features φ(x); D(x, y) = w·φ(x) + embed(y)·φ(x), every weight of D spectrally normalised
//! (Miyato et al. 2018, [`super::spectral_norm`]) unless `spectral_norm = false`.

use std::collections::BTreeMap;

use tch::nn::{self, Module, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

use super::run::{Generative, SampleNoise};
use super::spectral_norm::PowerIteration;
use super::{GanConfig, GanLoss, SampleSettings};
use crate::error::Result;
use crate::train::adam::Adam;

/// Discriminator loss on its logits for real and generated images (means over the batch).
pub fn discriminator_loss(loss: GanLoss, real: &Tensor, fake: &Tensor) -> Tensor {
    match loss {
        GanLoss::Hinge => {
            (real.neg() + 1.0).relu().mean(Kind::Float) + (fake + 1.0).relu().mean(Kind::Float)
        }
        GanLoss::NonSaturating => {
            (-real).softplus().mean(Kind::Float) + fake.softplus().mean(Kind::Float)
        }
    }
}

/// The mode-seeking term (Mao et al. 2019) for images `a`, `b` generated from latents `za`,
/// `zb` with the same labels: `1 / (mean|a − b| / mean|za − zb| + 1e-5)`, large when different
/// latents give the same image.
pub fn mode_seeking_loss(a: &Tensor, b: &Tensor, za: &Tensor, zb: &Tensor) -> Tensor {
    let ratio = (a - b).abs().mean(Kind::Float) / (za - zb).abs().mean(Kind::Float);
    (ratio + 1e-5).reciprocal()
}

/// Generator loss on the discriminator's logits for generated images.
pub fn generator_loss(loss: GanLoss, fake: &Tensor) -> Tensor {
    match loss {
        GanLoss::Hinge => -fake.mean(Kind::Float),
        GanLoss::NonSaturating => (-fake).softplus().mean(Kind::Float),
    }
}

struct Generator {
    latent: i64,
    start: [i64; 3],
    embedding: nn::Embedding,
    project: nn::Linear,
    body: nn::SequentialT,
}

impl Generator {
    fn new(p: nn::Path, config: &GanConfig, image: [i64; 3], classes: i64) -> Self {
        let (width, latent) = (config.width as i64, config.latent as i64);
        let [c, h, w] = image;
        let start = [2 * width, h / 4, w / 4];
        let up = nn::ConvTransposeConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let body = nn::seq_t()
            .add(nn::batch_norm2d(&p / "bn0", 2 * width, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::conv_transpose2d(&p / "up1", 2 * width, width, 4, up))
            .add(nn::batch_norm2d(&p / "bn1", width, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::conv_transpose2d(&p / "up2", width, c, 4, up))
            .add_fn(|x| x.tanh());
        Generator {
            latent,
            start,
            embedding: nn::embedding(&p / "embedding", classes, latent, Default::default()),
            project: nn::linear(
                &p / "project",
                2 * latent,
                start.iter().product(),
                Default::default(),
            ),
            body,
        }
    }

    fn forward(&self, z: &Tensor, y: &Tensor, train: bool) -> Tensor {
        let input = Tensor::cat(&[z, &self.embedding.forward(y)], 1);
        let [c, h, w] = self.start;
        let x = self.project.forward(&input).view([-1, c, h, w]);
        self.body.forward_t(&x, train)
    }
}

/// LeakyReLU with slope 0.2 (DCGAN's): max(x, 0.2·x).
fn leaky_relu(x: &Tensor) -> Tensor {
    x.maximum(&(x * 0.2))
}

struct Discriminator {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    linear: nn::Linear,
    embedding: nn::Embedding,
    /// Power iterations of conv1, conv2, linear and embedding when spectrally normalised.
    spectral: Option<[PowerIteration; 4]>,
    minibatch_std: bool,
}

impl Discriminator {
    fn new(p: nn::Path, config: &GanConfig, image: [i64; 3], classes: i64) -> Self {
        let width = config.width as i64;
        let [c, h, w] = image;
        let down = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let maps = 2 * width + i64::from(config.minibatch_std);
        let dim = maps * (h / 4) * (w / 4);
        // The projection starts at the scale of the linear head (uniform ±1/√dim), not at
        // tch's N(0, 1) embedding default, which would put the initial logits in the hundreds.
        let bound = 1.0 / (dim as f64).sqrt();
        let projection = nn::EmbeddingConfig {
            ws_init: nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
            ..Default::default()
        };
        let spectral = config.spectral_norm.then(|| {
            let sn = &p / "spectral_norm";
            [
                PowerIteration::new(&sn / "conv1", width),
                PowerIteration::new(&sn / "conv2", 2 * width),
                PowerIteration::new(&sn / "linear", 1),
                PowerIteration::new(&sn / "embedding", classes),
            ]
        });
        Discriminator {
            conv1: nn::conv2d(&p / "conv1", c, width, 4, down),
            conv2: nn::conv2d(&p / "conv2", width, 2 * width, 4, down),
            linear: nn::linear(&p / "linear", dim, 1, Default::default()),
            embedding: nn::embedding(&p / "embedding", classes, dim, projection),
            spectral,
            minibatch_std: config.minibatch_std,
        }
    }

    /// Weight `index` (conv1, conv2, linear, embedding), spectrally normalised when configured.
    fn weight(&self, index: usize, weight: &Tensor) -> Tensor {
        match &self.spectral {
            Some(iterations) => iterations[index].normalize(weight),
            None => weight.shallow_clone(),
        }
    }

    /// Logits (N,): φ(x) = two stride-2 4×4 convolutions with LeakyReLU(0.2) (and, with
    /// `minibatch_std`, one more map holding mean over features of their standard deviation over
    /// the batch), flattened; D(x, y) = w·φ(x) + b + embed(y)·φ(x).
    fn forward(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let conv = |x: &Tensor, index: usize, layer: &nn::Conv2D| {
            leaky_relu(&x.conv2d(
                &self.weight(index, &layer.ws),
                layer.bs.as_ref(),
                [2, 2],
                [1, 1],
                [1, 1],
                1,
            ))
        };
        let features = conv(&conv(x, 0, &self.conv1), 1, &self.conv2);
        let phi = if self.minibatch_std {
            let size = features.size();
            let (n, h, w) = (size[0], size[2], size[3]);
            let spread = (features.var_dim(0, false, false) + 1e-8)
                .sqrt()
                .mean(Kind::Float);
            Tensor::cat(&[&features, &spread.expand([n, 1, h, w], false)], 1)
        } else {
            features
        };
        let phi = phi.flatten(1, -1);
        let head = phi.linear(&self.weight(2, &self.linear.ws), self.linear.bs.as_ref());
        let projection =
            Tensor::embedding(&self.weight(3, &self.embedding.ws), y, -1, false, false);
        head.squeeze_dim(1) + (projection * &phi).sum_dim_intlist(1, false, Kind::Float)
    }
}

/// Both networks, their variable stores and optimisers.
pub(super) struct Gan {
    config: GanConfig,
    generator_vs: VarStore,
    generator: Generator,
    discriminator_vs: VarStore,
    discriminator: Discriminator,
    generator_adam: Adam,
    discriminator_adam: Adam,
}

fn variables(vs: &VarStore) -> BTreeMap<String, Tensor> {
    vs.variables().into_iter().collect()
}

impl Gan {
    pub(super) fn new(
        config: &GanConfig,
        shape: [usize; 3],
        classes: usize,
        device: Device,
    ) -> Self {
        let image = [shape[2], shape[0], shape[1]].map(|v| v as i64);
        let (generator_vs, discriminator_vs) = (VarStore::new(device), VarStore::new(device));
        Gan {
            generator: Generator::new(generator_vs.root(), config, image, classes as i64),
            discriminator: Discriminator::new(
                discriminator_vs.root(),
                config,
                image,
                classes as i64,
            ),
            generator_vs,
            discriminator_vs,
            generator_adam: Adam::new(config.optimizer.clone()),
            discriminator_adam: Adam::new(config.optimizer.clone()),
            config: config.clone(),
        }
    }

    fn latent(&self, n: i64, device: Device) -> Tensor {
        Tensor::randn([n, self.generator.latent], (Kind::Float, device))
    }
}

impl Generative for Gan {
    /// A discriminator step on real images and fresh fakes, then a generator step on new fakes
    /// of the same labels; returns the discriminator's loss.
    fn step(&mut self, x: &Tensor, y: &Tensor) -> f64 {
        let (n, device) = (x.size()[0], x.device());
        let loss = self.config.loss;
        let fake = tch::no_grad(|| self.generator.forward(&self.latent(n, device), y, true));
        let d_loss = discriminator_loss(
            loss,
            &self.discriminator.forward(x, y),
            &self.discriminator.forward(&fake, y),
        );
        d_loss.backward();
        self.discriminator_adam
            .step(&variables(&self.discriminator_vs), self.config.lr);
        let z = self.latent(n, device);
        let fake = self.generator.forward(&z, y, true);
        let adversarial = generator_loss(loss, &self.discriminator.forward(&fake, y));
        let g_loss = if self.config.mode_seeking > 0.0 {
            let other = self.latent(n, device);
            let second = self.generator.forward(&other, y, true);
            adversarial + mode_seeking_loss(&fake, &second, &z, &other) * self.config.mode_seeking
        } else {
            adversarial
        };
        g_loss.backward();
        self.generator_adam
            .step(&variables(&self.generator_vs), self.config.lr);
        // The generator step also left gradients on the discriminator: clear them.
        for (_, v) in variables(&self.discriminator_vs) {
            let mut g = v.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        d_loss.double_value(&[])
    }

    fn variables(&self) -> Vec<(&'static str, BTreeMap<String, Tensor>)> {
        vec![
            ("generator/", variables(&self.generator_vs)),
            ("discriminator/", variables(&self.discriminator_vs)),
        ]
    }

    fn optimizers(&self) -> Vec<(&'static str, &Adam)> {
        vec![
            ("generator-adam/", &self.generator_adam),
            ("discriminator-adam/", &self.discriminator_adam),
        ]
    }

    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Adam)> {
        vec![
            ("generator-adam/", &mut self.generator_adam),
            ("discriminator-adam/", &mut self.discriminator_adam),
        ]
    }

    fn sampling_store(&self) -> &VarStore {
        &self.generator_vs
    }

    fn generate(&self, y: &Tensor, noise: &mut SampleNoise, _: &SampleSettings) -> Result<Tensor> {
        let n = y.size()[0];
        let latent = self.generator.latent;
        let z = noise.draw(latent as usize, &[n, latent], y.device());
        Ok(self.generator.forward(&z, y, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The discriminator's logit for one image in a batch of its copies against the same image
    /// in a batch of different ones: equal without the minibatch-std map (each logit depends on
    /// its own image alone), different with it (the batch's spread is a feature).
    #[test]
    fn minibatch_std_makes_a_logit_depend_on_the_batch_spread() {
        for minibatch_std in [false, true] {
            tch::manual_seed(0);
            let config: GanConfig = toml::from_str(&format!(
                "width = 4\nlatent = 4\nspectral_norm = false\nminibatch_std = {minibatch_std}"
            ))
            .unwrap();
            let vs = VarStore::new(Device::Cpu);
            let d = Discriminator::new(vs.root(), &config, [1, 8, 8], 2);
            let image = Tensor::rand([1, 1, 8, 8], (Kind::Float, Device::Cpu));
            let copies = image.repeat([4, 1, 1, 1]);
            let mixed = Tensor::cat(
                &[
                    &image,
                    &Tensor::rand([3, 1, 8, 8], (Kind::Float, Device::Cpu)),
                ],
                0,
            );
            let y = Tensor::zeros([4], (Kind::Int64, Device::Cpu));
            let logit = |batch: &Tensor| d.forward(batch, &y).double_value(&[0]);
            let shift = (logit(&copies) - logit(&mixed)).abs();
            if minibatch_std {
                assert!(shift > 1e-4, "{shift}");
            } else {
                assert!(shift < 1e-6, "{shift}");
            }
        }
    }
}
