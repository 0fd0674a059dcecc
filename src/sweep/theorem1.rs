//! Theorem 1 on Gaussian class conditionals, done exactly (paper Appendix A.5, Figure 4).
//!
//! A real distribution `D` with `K` Gaussian classes in `d` dimensions and a linear classifier
//! `h` (the LDA rule or an adversarially trained one) are fixed. Each proxy `D~` perturbs the
//! class means, `m~ = m + t·δ`, and/or the covariances, `S~ = (I + tE) S (I + tE)ᵀ`, at a
//! strength `t` from a log-spaced grid. For each proxy the sweep records the closed-form
//! `cwd` by W2, its lower bound `Σ_y Pr[y]‖m_y − m~_y‖`, `Rob(h, D)` and `Rob(h, D~)` with
//! confidence intervals, and `|ΔRob|` from paired samples (common random numbers). Theorem 1
//! asserts `|Rob(h, D) − Rob(h, D~)| ≤ cwd(D, D~)`; with the Euclidean W2 this holds for ℓ2 and ℓ∞
//! robustness, and for ℓ1 after multiplying by `√d` ([`Norm::euclidean_domination_factor`]).
//! A violation is reported only when the whole interval of `|ΔRob|` lies above the bound.
//!
//! With `classifier.kind = "network"` (feature `torch`) `h` is the paper's own choice for Figure
//! 4: a four-layer convolutional network adversarially trained on samples of `D`, whose `Rob` is
//! estimated by minimal adversarial distances ([`super::network`]); the report then also gives
//! the attacks' calibration against exact distances on a linear classifier and their
//! disagreement per proxy.

use std::path::Path;

use faer::Mat;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::{SweepOutcome, expect_sweep, shards};
use crate::config::{
    Part, Validate, at_least, at_most, fits_in_memory, non_negative_finite, positive_finite,
};
use crate::error::{Error, Result};
use crate::report::{self, Axes, BLUE, GREEN, Labels, ORANGE, Series};
use crate::stats::Estimate;
use crate::theory::gaussian::{
    ClassConditionalGaussians, Gaussian, conditional_mean_distance, conditional_wasserstein,
    standard_normal_matrix,
};
use crate::theory::linear::{
    AdversarialTraining, CommonDraws, LinearClassifier, Norm, adversarial_linear_classifier,
    lda_classifier,
};

/// `experiments/theorem1_gaussian.toml`, field by field.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theorem1Config {
    /// Must be `"theorem1"`.
    pub sweep: String,
    /// Run name (default run folder `runs/<name>`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Seed of every random draw in the sweep.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub real: RealModel,
    #[serde(default)]
    pub classifier: ClassifierConfig,
    #[serde(default)]
    pub proxies: ProxyFamily,
    #[serde(default)]
    pub evaluation: Evaluation,
}

fn default_name() -> String {
    "theorem1_gaussian".into()
}

/// The real distribution: `K` classes, means `m_y ~ N(0, mean_scale² I)`, covariances
/// `S_y = cov_scale · A Aᵀ/d + cov_floor · I` with `A` standard normal, equal class weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealModel {
    pub classes: usize,
    pub dim: usize,
    pub mean_scale: f64,
    pub cov_scale: f64,
    pub cov_floor: f64,
    /// One covariance for all classes (then the LDA rule is the Bayes classifier).
    pub shared_covariance: bool,
}

impl RealModel {
    /// Field checks under `section.`: at least 2 classes (at most 10^4), dimension ≥ 1,
    /// `classes × dim²` covariance entries that fit in memory, positive scales.
    pub fn validate(&self, section: &str) -> Result<()> {
        let field = |name: &str| format!("{section}.{name}");
        at_least(&field("classes"), self.classes, 2)?;
        at_most(&field("classes"), self.classes, 10_000)?;
        at_least(&field("dim"), self.dim, 1)?;
        fits_in_memory(
            &field("dim"),
            "classes × dim × dim (the covariances)",
            &[self.classes, self.dim, self.dim],
        )?;
        positive_finite(&field("mean_scale"), self.mean_scale)?;
        non_negative_finite(&field("cov_scale"), self.cov_scale)?;
        positive_finite(&field("cov_floor"), self.cov_floor)
    }

    /// `samples_per_class` points of every class fit in memory.
    pub fn fits_samples(&self, field: &str, samples_per_class: usize) -> Result<()> {
        fits_in_memory(
            field,
            "samples per class × classes × dim",
            &[samples_per_class, self.classes, self.dim],
        )
    }
}

impl Default for RealModel {
    fn default() -> Self {
        RealModel {
            classes: 10,
            dim: 128,
            mean_scale: 0.35,
            cov_scale: 1.0,
            cov_floor: 0.1,
            shared_covariance: false,
        }
    }
}

/// Which linear classifier `h` to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassifierKind {
    /// Linear discriminant analysis on the true parameters (pooled covariance).
    Lda,
    /// Adversarially trained linear classifier on samples of the real distribution.
    Adversarial,
    /// A network (`[classifier.network]`) adversarially trained on samples of the real
    /// distribution; `Rob` by minimal adversarial distances (feature `torch`).
    Network,
}

/// `[classifier]`: the kind; its training set size for `adversarial` and `network`;
/// `[classifier.training]` for `adversarial`, `[classifier.network]` for `network`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierConfig {
    pub kind: ClassifierKind,
    pub train_samples_per_class: usize,
    pub training: AdversarialTraining,
    pub network: NetworkClassifier,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            kind: ClassifierKind::Adversarial,
            train_samples_per_class: 500,
            training: AdversarialTraining::default(),
            network: NetworkClassifier::default(),
        }
    }
}

/// `[classifier.network]`: the network, its PGD adversarial training on samples of `D`, and the
/// minimal-distance search that estimates its `Rob` (Definition 1). The `d` coordinates of a
/// sample are laid out as a one-channel `height × width` image, row by row. Radii are in the
/// distribution's own units.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkClassifier {
    /// Any model of `model::` that takes `1 × height × width` inputs (Appendix A.5: CNN-4).
    pub model: crate::model::Architecture,
    /// `[height, width]`, with `height × width = real.dim`.
    pub shape: [usize; 2],
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate (SGD with momentum 0.9, cosine decay).
    pub lr: f64,
    /// PGD adversarial-training radius, in the norm of `[evaluation]` (0: natural training).
    pub epsilon: f64,
    /// PGD steps in training (step 2.5·ε/steps, random start).
    pub train_steps: usize,
    /// The largest radius the minimal-distance search tries; points not broken within it count
    /// as `max_radius` (a lower estimate; their number is reported).
    pub max_radius: f64,
    pub fab_iterations: usize,
    pub bisection_steps: usize,
    /// PGD steps at each radius of the bisection.
    pub pgd_steps: usize,
    /// Points attacked at a time.
    pub attack_batch: usize,
    /// libtorch CPU threads (0: its default).
    pub threads: usize,
    pub device: crate::config::Device,
}

impl Default for NetworkClassifier {
    fn default() -> Self {
        NetworkClassifier {
            model: crate::model::Architecture::Cnn4,
            shape: [8, 16],
            epochs: 50,
            batch_size: 128,
            lr: 0.004,
            epsilon: 0.5,
            train_steps: 7,
            max_radius: 8.0,
            fab_iterations: 100,
            bisection_steps: 10,
            pgd_steps: 20,
            attack_batch: 500,
            threads: 0,
            device: crate::config::Device::default(),
        }
    }
}

impl NetworkClassifier {
    /// Field checks under `classifier.network.`, for inputs of dimension `dim`.
    pub fn validate(&self, dim: usize) -> Result<()> {
        let [h, w] = self.shape;
        if h.checked_mul(w) != Some(dim) {
            return Err(Error::invalid(
                "classifier.network.shape",
                format!("[height, width] with height × width = real.dim = {dim}, got [{h}, {w}]"),
            ));
        }
        at_least("classifier.network.epochs", self.epochs, 1)?;
        at_least("classifier.network.batch_size", self.batch_size, 1)?;
        positive_finite("classifier.network.lr", self.lr)?;
        non_negative_finite("classifier.network.epsilon", self.epsilon)?;
        at_least("classifier.network.train_steps", self.train_steps, 1)?;
        positive_finite("classifier.network.max_radius", self.max_radius)?;
        at_least("classifier.network.fab_iterations", self.fab_iterations, 1)?;
        at_least(
            "classifier.network.bisection_steps",
            self.bisection_steps,
            1,
        )?;
        at_least("classifier.network.pgd_steps", self.pgd_steps, 1)?;
        at_least("classifier.network.attack_batch", self.attack_batch, 1)?;
        at_most(
            "classifier.network.attack_batch",
            self.attack_batch,
            1_000_000,
        )
    }
}

/// How a proxy perturbs the real distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Perturbation {
    /// Shift every class mean.
    Mean,
    /// Deform every covariance.
    Covariance,
    /// Both at once.
    Both,
    /// Shift every class mean straight toward the classifier's nearest decision boundary (ℓ2),
    /// the direction in which robustness drops fastest: these proxies approach the bound, as
    /// the construction of Theorem 7 does.
    Boundary,
}

impl Perturbation {
    fn name(self) -> &'static str {
        match self {
            Perturbation::Mean => "mean",
            Perturbation::Covariance => "covariance",
            Perturbation::Both => "both",
            Perturbation::Boundary => "boundary",
        }
    }
}

/// `[proxies]`: `count` proxies at strengths log-spaced in `[min_strength, max_strength]`,
/// cycling through `kinds`. At strength `t`, means move by `t · mean_shift · δ` with
/// `δ ~ N(0, I/d)` (so `‖Δm‖ ≈ t · mean_shift`; for `boundary`, `δ` is the unit vector toward
/// the nearest decision boundary) and covariances become `(I + tE) S (I + tE)ᵀ` with
/// `E_ij ~ N(0, cov_shift²/d)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyFamily {
    pub count: usize,
    pub min_strength: f64,
    pub max_strength: f64,
    pub mean_shift: f64,
    pub cov_shift: f64,
    pub kinds: Vec<Perturbation>,
}

impl Default for ProxyFamily {
    fn default() -> Self {
        ProxyFamily {
            count: 60,
            min_strength: 1e-3,
            max_strength: 1.0,
            mean_shift: 10.0,
            cov_shift: 1.0,
            kinds: vec![
                Perturbation::Mean,
                Perturbation::Covariance,
                Perturbation::Both,
                Perturbation::Boundary,
            ],
        }
    }
}

/// `[evaluation]`: the robustness metric and the Monte-Carlo budget.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Evaluation {
    pub norm: Norm,
    pub samples_per_class: usize,
    pub confidence: f64,
}

impl Default for Evaluation {
    fn default() -> Self {
        Evaluation {
            norm: Norm::L2,
            samples_per_class: 10000,
            confidence: 0.95,
        }
    }
}

impl Validate for Theorem1Config {
    /// Checks every field; errors name it.
    fn validate(&self) -> Result<()> {
        expect_sweep(&self.sweep, "theorem1")?;
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(Error::invalid(
                "name",
                "a non-empty name without path separators",
            ));
        }
        let r = &self.real;
        r.validate("real")?;
        if self.classifier.kind != ClassifierKind::Lda {
            let n = self.classifier.train_samples_per_class;
            at_least("classifier.train_samples_per_class", n, 1)?;
            r.fits_samples("classifier.train_samples_per_class", n)?;
        }
        match self.classifier.kind {
            ClassifierKind::Lda => {}
            ClassifierKind::Adversarial => self.classifier.training.validate()?,
            ClassifierKind::Network => self.validate_network()?,
        }
        let p = &self.proxies;
        at_least("proxies.count", p.count, 1)?;
        at_most("proxies.count", p.count, 100_000)?;
        positive_finite("proxies.min_strength", p.min_strength)?;
        positive_finite("proxies.max_strength", p.max_strength)?;
        if p.max_strength < p.min_strength {
            return Err(Error::invalid(
                "proxies.max_strength",
                format!(
                    "a value ≥ proxies.min_strength ({}), got {}",
                    p.min_strength, p.max_strength
                ),
            ));
        }
        non_negative_finite("proxies.mean_shift", p.mean_shift)?;
        non_negative_finite("proxies.cov_shift", p.cov_shift)?;
        if p.kinds.is_empty() {
            return Err(Error::invalid(
                "proxies.kinds",
                "at least one of \"mean\", \"covariance\", \"both\", \"boundary\"",
            ));
        }
        at_least(
            "evaluation.samples_per_class",
            self.evaluation.samples_per_class,
            2,
        )?;
        r.fits_samples(
            "evaluation.samples_per_class",
            self.evaluation.samples_per_class,
        )?;
        if !(self.evaluation.confidence > 0.0 && self.evaluation.confidence < 1.0) {
            return Err(Error::invalid(
                "evaluation.confidence",
                format!("a level in (0, 1), got {}", self.evaluation.confidence),
            ));
        }
        Ok(())
    }
}

impl Theorem1Config {
    /// The checks a network classifier adds: a build with libtorch, an ℓ2 or ℓ∞ metric (the
    /// attacks' norms), proxies that need no linear decision boundary, its own fields.
    fn validate_network(&self) -> Result<()> {
        if !cfg!(feature = "torch") {
            return Err(Error::invalid(
                "classifier.kind",
                "\"lda\" or \"adversarial\" (\"network\" needs a build with the torch feature)",
            ));
        }
        if self.evaluation.norm == Norm::L1 {
            return Err(Error::invalid(
                "evaluation.norm",
                "\"l2\" or \"linf\" with a network classifier (the attacks' norms)",
            ));
        }
        if self.proxies.kinds.contains(&Perturbation::Boundary) {
            return Err(Error::invalid(
                "proxies.kinds",
                "\"mean\", \"covariance\" or \"both\" with a network classifier (\"boundary\" follows a linear classifier's boundary)",
            ));
        }
        self.classifier.network.validate(self.real.dim)
    }

    /// The proxy strengths: `count` values log-spaced from `min_strength` to `max_strength`.
    pub fn strengths(&self) -> Vec<f64> {
        let p = &self.proxies;
        if p.count == 1 {
            return vec![p.min_strength];
        }
        let (a, b) = (p.min_strength.ln(), p.max_strength.ln());
        (0..p.count)
            .map(|i| (a + (b - a) * i as f64 / (p.count - 1) as f64).exp())
            .collect()
    }
}

/// One CSV row per proxy; see `docs/outputs.md` for the meaning of each column.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProxyRow {
    pub proxy: usize,
    pub perturbation: String,
    pub strength: f64,
    pub cwd_w2: f64,
    pub bound: f64,
    pub mean_distance: f64,
    pub rob_real: f64,
    pub rob_real_half_width: f64,
    pub rob_proxy: f64,
    pub rob_proxy_half_width: f64,
    pub delta_rob: f64,
    pub delta_rob_half_width: f64,
    pub holds: bool,
    pub holds_point: bool,
    /// Network only: mean |FAB − bisection| over the proxy's points both attacks broke.
    pub attack_disagreement: Option<f64>,
    /// Network only: the proxy's points neither attack broke within `max_radius`.
    pub unbroken: Option<usize>,
}

/// Draws the real distribution of `config.real`.
pub fn real_distribution(model: &RealModel, rng: &mut StdRng) -> Result<ClassConditionalGaussians> {
    let d = model.dim;
    let random_cov = |rng: &mut StdRng| -> Result<Mat<f64>> {
        let a = standard_normal_matrix(d, d, rng);
        let mut s = faer::Scale(model.cov_scale / d as f64) * (&a * a.transpose());
        for i in 0..d {
            s[(i, i)] += model.cov_floor;
        }
        Ok(symmetric_part(&s))
    };
    let shared = if model.shared_covariance {
        Some(random_cov(rng)?)
    } else {
        None
    };
    let mut classes = Vec::with_capacity(model.classes);
    for _ in 0..model.classes {
        let mean = standard_normal_matrix(1, d, rng)
            .row(0)
            .iter()
            .map(|v| v * model.mean_scale)
            .collect();
        let cov = match &shared {
            Some(s) => s.clone(),
            None => random_cov(rng)?,
        };
        classes.push(Gaussian::new(mean, cov)?);
    }
    ClassConditionalGaussians::uniform(classes)
}

fn symmetric_part(s: &Mat<f64>) -> Mat<f64> {
    Mat::from_fn(s.nrows(), s.ncols(), |i, j| 0.5 * (s[(i, j)] + s[(j, i)]))
}

/// The proxy of `real` at `strength` with the given perturbation, drawn from `rng`.
/// `boundary` needs the linear `classifier` whose boundary it follows.
pub fn proxy_distribution(
    real: &ClassConditionalGaussians,
    classifier: Option<&LinearClassifier>,
    family: &ProxyFamily,
    kind: Perturbation,
    strength: f64,
    rng: &mut StdRng,
) -> Result<ClassConditionalGaussians> {
    let d = real.dim();
    let scale = 1.0 / (d as f64).sqrt();
    let mut classes = Vec::with_capacity(real.num_classes());
    for (y, g) in real.classes().iter().enumerate() {
        let mut mean = g.mean().to_vec();
        let direction: Vec<f64> = match kind {
            Perturbation::Covariance => vec![0.0; d],
            Perturbation::Mean | Perturbation::Both => standard_normal_matrix(1, d, rng)
                .row(0)
                .iter()
                .map(|v| v * scale)
                .collect(),
            Perturbation::Boundary => match classifier {
                Some(h) => toward_boundary(h, &mean, y)?,
                None => {
                    return Err(Error::invalid(
                        "proxies.kinds",
                        "a linear classifier for \"boundary\" proxies",
                    ));
                }
            },
        };
        for (m, v) in mean.iter_mut().zip(&direction) {
            *m += strength * family.mean_shift * v;
        }
        let cov = if matches!(kind, Perturbation::Covariance | Perturbation::Both) {
            let mut deform = faer::Scale(strength * family.cov_shift * scale)
                * standard_normal_matrix(d, d, rng);
            for i in 0..d {
                deform[(i, i)] += 1.0;
            }
            symmetric_part(&(&deform * g.cov() * deform.transpose()))
        } else {
            g.cov().to_owned()
        };
        classes.push(Gaussian::new(mean, cov)?);
    }
    ClassConditionalGaussians::new(classes, real.probs().to_vec())
}

/// The ℓ2 unit vector from `mean` toward its nearest input labelled other than `y` (zero if the
/// mean is already misclassified).
fn toward_boundary(classifier: &LinearClassifier, mean: &[f64], y: usize) -> Result<Vec<f64>> {
    let x = Mat::from_fn(1, mean.len(), |_, j| mean[j]);
    let nearest = classifier.nearest_adversarial(x.as_ref(), &[y], Norm::L2)?;
    let step: Vec<f64> = (0..mean.len()).map(|j| nearest[(0, j)] - mean[j]).collect();
    let length = Norm::L2.of(&step);
    Ok(step
        .iter()
        .map(|v| if length > 0.0 { v / length } else { 0.0 })
        .collect())
}

/// The linear classifier `h` of the sweep (a network is built by [`super::network`]).
pub fn build_classifier(
    config: &ClassifierConfig,
    real: &ClassConditionalGaussians,
    rng: &mut StdRng,
) -> Result<LinearClassifier> {
    match config.kind {
        ClassifierKind::Lda => lda_classifier(real),
        ClassifierKind::Network => Err(Error::invalid(
            "classifier.kind",
            "\"lda\" or \"adversarial\" for a linear classifier",
        )),
        ClassifierKind::Adversarial => {
            let n = config.train_samples_per_class;
            let (k, d) = (real.num_classes(), real.dim());
            let mut x = Mat::<f64>::zeros(n * k, d);
            let mut labels = Vec::with_capacity(n * k);
            for y in 0..k {
                let xs = real.class(y).sample(n, rng);
                x.as_mut().subrows_mut(y * n, n).copy_from(&xs);
                labels.extend(std::iter::repeat_n(y, n));
            }
            adversarial_linear_classifier(x.as_ref(), &labels, k, &config.training)
        }
    }
}

/// The classifier `h` whose robustness the sweep compares on `D` and each `D~`.
enum Robustness {
    /// Exact distances to the decision boundary ([`CommonDraws::class_distances`]).
    Linear(LinearClassifier),
    /// Upper estimates by minimal adversarial distances.
    #[cfg(feature = "torch")]
    Network(Box<super::network::NetworkRobustness>),
}

/// Per-class distances of the draws mapped to one distribution, and for a network how much its
/// two attacks disagree.
struct ClassDistances {
    per_class: Vec<Vec<f64>>,
    attack: Option<super::AttackSpread>,
}

impl Robustness {
    fn linear(&self) -> Option<&LinearClassifier> {
        match self {
            Robustness::Linear(h) => Some(h),
            #[cfg(feature = "torch")]
            Robustness::Network(_) => None,
        }
    }

    fn class_distances(
        &self,
        draws: &CommonDraws,
        dist: &ClassConditionalGaussians,
        norm: Norm,
    ) -> Result<ClassDistances> {
        match self {
            Robustness::Linear(h) => Ok(ClassDistances {
                per_class: draws.class_distances(h, dist, norm)?,
                attack: None,
            }),
            #[cfg(feature = "torch")]
            Robustness::Network(net) => {
                let measured = net.class_distances(&draws.samples(dist)?);
                Ok(ClassDistances {
                    attack: Some(measured.spread()),
                    per_class: measured.estimates,
                })
            }
        }
    }
}

/// The proxy of index `i`: its perturbation, strength and distribution (a seeded draw of its
/// own, so the same `i` always gives the same proxy).
fn proxy_at(
    config: &Theorem1Config,
    real: &ClassConditionalGaussians,
    linear: Option<&LinearClassifier>,
    strengths: &[f64],
    i: usize,
) -> Result<(Perturbation, ClassConditionalGaussians)> {
    let kind = config.proxies.kinds[i % config.proxies.kinds.len()];
    let mut proxy_rng =
        StdRng::seed_from_u64(config.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1)));
    let proxy = proxy_distribution(
        real,
        linear,
        &config.proxies,
        kind,
        strengths[i],
        &mut proxy_rng,
    )?;
    Ok((kind, proxy))
}

/// `h` and the shared evaluation draws. A linear `h` is built before the draws (the order of
/// the random stream the exact sweep has always used); a network is trained after them, on a
/// unit box that holds every evaluation point of `D` and of every proxy.
fn classifier_and_draws(
    config: &Theorem1Config,
    real: &ClassConditionalGaussians,
    rng: &mut StdRng,
    progress: bool,
) -> Result<(Robustness, CommonDraws, Option<super::Calibration>)> {
    let eval = &config.evaluation;
    let draws_for = |rng: &mut StdRng| {
        CommonDraws::new(real.num_classes(), real.dim(), eval.samples_per_class, rng)
    };
    if config.classifier.kind != ClassifierKind::Network {
        let h = build_classifier(&config.classifier, real, rng)?;
        let draws = draws_for(rng)?;
        return Ok((Robustness::Linear(h), draws, None));
    }
    #[cfg(feature = "torch")]
    {
        let draws = draws_for(rng)?;
        let n = config.classifier.train_samples_per_class;
        let train: Vec<Mat<f64>> = (0..real.num_classes())
            .map(|y| real.class(y).sample(n, rng))
            .collect();
        let strengths = config.strengths();
        let mut extent = super::Extent::default();
        train.iter().for_each(|x| extent.include(x));
        draws.samples(real)?.iter().for_each(|x| extent.include(x));
        for i in 0..strengths.len() {
            let (_, proxy) = proxy_at(config, real, None, &strengths, i)?;
            draws
                .samples(&proxy)?
                .iter()
                .for_each(|x| extent.include(x));
        }
        let settings = &config.classifier.network;
        let net = super::network::NetworkRobustness::train(
            settings,
            eval.norm,
            &train,
            extent,
            config.seed,
            progress,
        )?;
        let calibration = net.calibrate(&lda_classifier(real)?, &draws.samples(real)?)?;
        Ok((Robustness::Network(Box::new(net)), draws, Some(calibration)))
    }
    #[cfg(not(feature = "torch"))]
    {
        let _ = progress;
        config.validate_network()?;
        Err(Error::invalid(
            "classifier.kind",
            "\"lda\" or \"adversarial\" (\"network\" needs a build with the torch feature)",
        ))
    }
}

/// Runs the sweep and writes `theorem1.csv`, `theorem1.png`/`.svg`, `report.md`, `real.npz` and
/// `manifest.json` under `run_dir`.
pub fn run(config: &Theorem1Config, run_dir: &Path, progress: bool) -> Result<SweepOutcome> {
    run_part(config, run_dir, progress, Part::All)
}

/// What every proxy's row shares: the real distribution's robustness under `h`, its accuracy
/// and the estimator's figures (`shards/common.json` of a split sweep).
#[derive(Serialize, Deserialize)]
struct Common {
    rob_real: Estimate,
    accuracy: f64,
    estimator: Estimator,
}

/// [`run`] in `part`s: a shard (`Part::Shard(i, n)`) trains or builds `h` as the whole sweep
/// does and evaluates proxies `i, i + n, …`, recording them under `run_dir/shards/`; the merge
/// writes the outputs from every proxy's record, exactly those of one run (each proxy's draws
/// depend only on the seed and its index).
pub fn run_part(
    config: &Theorem1Config,
    run_dir: &Path,
    progress: bool,
    part: Part,
) -> Result<SweepOutcome> {
    config.validate()?;
    let mut manifest = super::manifest(config, config.seed)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let real = real_distribution(&config.real, &mut rng)?;
    let eval = &config.evaluation;
    let factor = eval.norm.euclidean_domination_factor(real.dim());
    let strengths = config.strengths();
    let bar = report::progress(
        shards::rows_in(part, strengths.len()),
        "theorem 1 proxies",
        progress,
    );
    let (common, rows) = if part == Part::Merge {
        let common: Common = shards::read(run_dir, "common.json")
            .ok_or_else(|| shards::missing_records(run_dir, "common.json"))?;
        (
            common,
            shards::read_rows(run_dir, "proxy", strengths.len())?,
        )
    } else {
        let (classifier, draws, calibration) =
            classifier_and_draws(config, &real, &mut rng, progress)?;
        let real_measured = classifier.class_distances(&draws, &real, eval.norm)?;
        let real_distances = real_measured.per_class;
        let common = Common {
            rob_real: Estimate::stratified(&real_distances, real.probs(), eval.confidence)?,
            accuracy: real_distances
                .iter()
                .zip(real.probs())
                .map(|(d, p)| p * fraction_positive(d))
                .sum::<f64>(),
            estimator: Estimator {
                real: real_measured.attack,
                calibration,
            },
        };
        let rows = shards::rows(run_dir, part, "proxy", strengths.len(), &bar, |i| {
            let (kind, proxy) = proxy_at(config, &real, classifier.linear(), &strengths, i)?;
            let cwd = conditional_wasserstein(&real, &proxy)?.cwd;
            let proxy_measured = classifier.class_distances(&draws, &proxy, eval.norm)?;
            let proxy_distances = proxy_measured.per_class;
            let rob_proxy = Estimate::stratified(&proxy_distances, proxy.probs(), eval.confidence)?;
            let paired: Vec<Vec<f64>> = real_distances
                .iter()
                .zip(&proxy_distances)
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x - y).collect())
                .collect();
            let delta = Estimate::stratified(&paired, real.probs(), eval.confidence)?;
            let bound = factor * cwd;
            let delta_abs = delta.mean.abs();
            let row = ProxyRow {
                proxy: i,
                perturbation: kind.name().into(),
                strength: strengths[i],
                cwd_w2: cwd,
                bound,
                mean_distance: conditional_mean_distance(&real, &proxy)?,
                rob_real: common.rob_real.mean,
                rob_real_half_width: common.rob_real.half_width,
                rob_proxy: rob_proxy.mean,
                rob_proxy_half_width: rob_proxy.half_width,
                delta_rob: delta_abs,
                delta_rob_half_width: delta.half_width,
                holds: delta_abs - delta.half_width <= bound,
                holds_point: delta_abs <= bound,
                attack_disagreement: proxy_measured.attack.map(|a| a.disagreement),
                unbroken: proxy_measured.attack.map(|a| a.unbroken),
            };
            bar.set_message(format!("cwd {cwd:.3e} |ΔRob| {delta_abs:.3e}"));
            Ok(row)
        })?;
        (common, rows)
    };
    bar.finish_and_clear();
    if let Part::Shard(..) = part {
        shards::record(run_dir, "common.json", &common)?;
        return Ok(shards::shard_outcome(
            run_dir,
            "Theorem 1",
            rows.len(),
            strengths.len(),
            rows.iter().filter(|r| !r.holds).count(),
        ));
    }
    let Common {
        rob_real,
        accuracy,
        estimator,
    } = common;

    report::create_run_dir(run_dir)?;
    report::write_csv(&run_dir.join("theorem1.csv"), &rows)?;
    plot(run_dir, &rows, eval.norm, config.classifier.kind)?;
    crate::npz::write_class_conditionals(&run_dir.join("real.npz"), &real)?;
    let violations: Vec<&ProxyRow> = rows.iter().filter(|r| !r.holds).collect();
    let markdown = report_markdown(config, &rows, &rob_real, accuracy, factor, &estimator);
    report::atomic_write(&run_dir.join("report.md"), markdown.as_bytes())?;
    if let Some(c) = &estimator.calibration {
        manifest = manifest.with("calibration", c)?;
    }
    manifest.write(
        run_dir,
        &[
            "theorem1.csv",
            "theorem1.png",
            "theorem1.svg",
            "real.npz",
            "report.md",
        ],
    )?;
    let max_ratio = rows
        .iter()
        .map(|r| r.delta_rob / r.bound)
        .fold(0.0, f64::max);
    Ok(SweepOutcome {
        run_dir: run_dir.to_owned(),
        checks: rows.len(),
        violations: violations.len(),
        summary: format!(
            "Theorem 1: {} proxies, {} violations; Rob(h, D) = {:.4} ± {:.4}; max |ΔRob|/bound = {:.3}",
            rows.len(),
            violations.len(),
            rob_real.mean,
            rob_real.half_width,
            max_ratio
        ),
    })
}

/// What the report says about a network's distance estimates: its attacks' disagreement on the
/// real points, and their calibration on a linear classifier whose distances are exact.
#[derive(Serialize, Deserialize)]
struct Estimator {
    real: Option<super::AttackSpread>,
    calibration: Option<super::Calibration>,
}

fn fraction_positive(values: &[f64]) -> f64 {
    values.iter().filter(|v| **v > 0.0).count() as f64 / values.len() as f64
}

fn plot(run_dir: &Path, rows: &[ProxyRow], norm: Norm, kind: ClassifierKind) -> Result<()> {
    let observed: Vec<(f64, f64)> = rows.iter().map(|r| (r.bound, r.delta_rob)).collect();
    let lower: Vec<(f64, f64)> = rows.iter().map(|r| (r.bound, r.mean_distance)).collect();
    let disagreement: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.attack_disagreement.map(|a| (r.bound, a)))
        .filter(|(_, a)| *a > 0.0)
        .collect();
    let mut series = vec![
        Series {
            name: "|ΔRob| (Monte Carlo, paired)",
            points: &observed,
            color: BLUE,
            line: false,
        },
        Series {
            name: "Σ p_y ‖Δmean_y‖ (lower bound on cwd)",
            points: &lower,
            color: ORANGE,
            line: false,
        },
    ];
    if !disagreement.is_empty() {
        series.push(Series {
            name: "mean |FAB − bisection| on the proxy's points",
            points: &disagreement,
            color: GREEN,
            line: false,
        });
    }
    let classifier = match kind {
        ClassifierKind::Network => "trained network",
        _ => "linear classifier",
    };
    report::plot(
        &run_dir.join("theorem1"),
        &Labels {
            title: &format!(
                "Theorem 1 on Gaussian classes, {classifier} ({} robustness)",
                norm.name()
            ),
            x: "bound: conditional Wasserstein distance (W2)",
            y: "observed |Rob(h, D) - Rob(h, D~)|",
        },
        &series,
        Axes {
            log: true,
            diagonal: true,
        },
    )
}

fn report_markdown(
    config: &Theorem1Config,
    rows: &[ProxyRow],
    rob_real: &Estimate,
    accuracy: f64,
    factor: f64,
    estimator: &Estimator,
) -> String {
    use std::fmt::Write;
    let eval = &config.evaluation;
    let mut s = String::new();
    let _ = writeln!(s, "# Theorem 1: bound vs observed ({})\n", config.name);
    let _ = writeln!(
        s,
        "Real distribution: {} Gaussian classes in d = {}; classifier: {:?}; metric: {}; {} Monte-Carlo samples per class; {:.0}% intervals; seed {}.\n",
        config.real.classes,
        config.real.dim,
        config.classifier.kind,
        eval.norm.name(),
        eval.samples_per_class,
        100.0 * eval.confidence,
        config.seed
    );
    let _ = writeln!(
        s,
        "- Clean accuracy of h on D (Monte Carlo): {:.4}",
        accuracy
    );
    let _ = writeln!(
        s,
        "- Rob(h, D) = {:.5} ± {:.5}",
        rob_real.mean, rob_real.half_width
    );
    let _ = writeln!(s, "- Bound = {factor:.4} × cwd_W2 (1 for ℓ2/ℓ∞, √d for ℓ1)");
    write_estimator(&mut s, config, estimator);
    let holds = rows.iter().filter(|r| r.holds).count();
    let holds_point = rows.iter().filter(|r| r.holds_point).count();
    let _ = writeln!(
        s,
        "- Proxies: {}; bound holds within the interval for {holds}, by the point estimate for {holds_point}",
        rows.len()
    );
    let max = rows
        .iter()
        .max_by(|a, b| (a.delta_rob / a.bound).total_cmp(&(b.delta_rob / b.bound)));
    if let Some(r) = max {
        let _ = writeln!(
            s,
            "- Largest |ΔRob| / bound: {:.4} (proxy {}, {}, strength {:.3e})",
            r.delta_rob / r.bound,
            r.proxy,
            r.perturbation,
            r.strength
        );
    }
    let _ = writeln!(s, "\n## Violations\n");
    let violations: Vec<&ProxyRow> = rows.iter().filter(|r| !r.holds).collect();
    if violations.is_empty() {
        let _ = writeln!(
            s,
            "None: for every proxy, |ΔRob| minus its interval half-width is at most the bound."
        );
    } else {
        let table = report::markdown_table(
            &[
                "proxy",
                "perturbation",
                "strength",
                "bound",
                "abs ΔRob",
                "half-width",
            ],
            violations.iter().map(|r| {
                vec![
                    r.proxy.to_string(),
                    r.perturbation.to_string(),
                    format!("{:.3e}", r.strength),
                    format!("{:.4e}", r.bound),
                    format!("{:.4e}", r.delta_rob),
                    format!("{:.2e}", r.delta_rob_half_width),
                ]
            }),
        );
        s.push_str(&table);
    }
    let table = report::markdown_table(
        &[
            "proxy",
            "perturbation",
            "strength",
            "cwd (W2)",
            "mean lower bound",
            "Rob(h, D~)",
            "abs ΔRob ± hw",
            "ratio",
        ],
        rows.iter().map(|r| {
            vec![
                r.proxy.to_string(),
                r.perturbation.to_string(),
                format!("{:.3e}", r.strength),
                format!("{:.4e}", r.cwd_w2),
                format!("{:.4e}", r.mean_distance),
                format!("{:.4} ± {:.4}", r.rob_proxy, r.rob_proxy_half_width),
                format!("{:.3e} ± {:.1e}", r.delta_rob, r.delta_rob_half_width),
                format!("{:.3}", r.delta_rob / r.bound),
            ]
        }),
    );
    let _ = write!(s, "\n## All proxies\n\n{table}");
    s
}

/// The report's paragraph on a network's distance estimates (nothing for a linear `h`, whose
/// distances are exact).
fn write_estimator(s: &mut String, config: &Theorem1Config, estimator: &Estimator) {
    use std::fmt::Write;
    if config.classifier.kind != ClassifierKind::Network {
        return;
    }
    let net = &config.classifier.network;
    let _ = writeln!(
        s,
        "\nRob is estimated for the network ({}, inputs laid out as 1 × {} × {}, PGD-{} adversarial training at ε = {} for {} epochs) as the mean minimal adversarial distance: the smaller of FAB's ({} iterations) and a PGD bisection's ({} halvings of [0, {}], PGD-{} at each radius) upper bounds; a point neither breaks counts as {}.\n",
        net.model,
        net.shape[0],
        net.shape[1],
        net.train_steps,
        net.epsilon,
        net.epochs,
        net.fab_iterations,
        net.bisection_steps,
        net.max_radius,
        net.pgd_steps,
        net.max_radius
    );
    if let Some(spread) = &estimator.real {
        let _ = writeln!(
            s,
            "- On the real points: mean |FAB − bisection| = {:.4e}, {} of {} unbroken",
            spread.disagreement, spread.unbroken, spread.points
        );
    }
    if let Some(c) = &estimator.calibration {
        let _ = writeln!(
            s,
            "- Calibration on the LDA classifier (exact distances known, {} points, mean exact distance {:.4}): the estimate exceeds the exact distance by {:.3}% on average (FAB alone {:.3}%, bisection alone {:.3}%), at most {:.3}%; {} unbroken",
            c.points,
            c.mean_exact,
            100.0 * c.mean_relative_gap,
            100.0 * c.fab_relative_gap,
            100.0 * c.bisection_relative_gap,
            100.0 * c.max_relative_gap,
            c.unbroken
        );
    }
}
