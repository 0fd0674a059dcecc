//! The network classifier of the Theorem 1 sweep: Figure 4 as the paper ran it (Appendix A.5), a
//! four-layer convolutional network adversarially trained on samples of the real Gaussian
//! classes, with `Rob(h, ·)` of Definition 1 estimated by minimal adversarial distances.
//!
//! The network sees each `d`-dimensional sample as a one-channel `height × width` image (row by
//! row), mapped into the unit box by one affine map `x ↦ (x − lo)·s` with the same scale `s` on
//! every coordinate. The box holds every training and evaluation point of `D` and of every proxy,
//! padded by the largest radius searched, so the attacks' box constraint never binds and every
//! ℓp distance is the original one times `s`: distances are converted back before they are
//! reported. The network's first operation maps the box back to the original coordinates, so it
//! learns at the data's own scale.
//!
//! A point's distance is the smaller of two upper bounds ([`MinimalDistance`]): FAB's minimal
//! perturbation and a PGD bisection over the radius. How far the two disagree is reported per
//! proxy, and [`NetworkRobustness::calibrate`] measures the same estimator against exact distances
//! on a linear classifier (`theory::linear`), so a reader sees how much of an observed |ΔRob|
//! could be attack error.

use faer::Mat;
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use super::theorem1::NetworkClassifier;
use super::{AttackSpread, Calibration, Extent};
use crate::attack::{MinimalDistance, Threat};
use crate::error::{Error, Result};
use crate::theory::linear::LinearClassifier;
use crate::theory::norm::Norm;
use crate::train::SgdConfig;
use crate::train::objective::Objective;
use crate::train::tensors::{FitSchedule, fit};

/// `x ↦ (x − lo)·scale`, the same scale on every coordinate.
#[derive(Clone, Copy, Debug)]
struct UnitBox {
    lo: f64,
    scale: f64,
}

impl UnitBox {
    /// The box around `extent` padded by `pad` on every side.
    fn around(extent: Extent, pad: f64) -> Result<Self> {
        let (lo, hi) = extent
            .range
            .ok_or_else(|| Error::invalid("samples", "at least one point"))?;
        let (lo, hi) = (lo - pad, hi + pad);
        if !(hi > lo && (hi - lo).is_finite()) {
            return Err(Error::invalid(
                "samples",
                format!("finite coordinates, got a range [{lo}, {hi}]"),
            ));
        }
        Ok(UnitBox {
            lo,
            scale: 1.0 / (hi - lo),
        })
    }

    /// The rows of `x` in the box as an N × 1 × H × W float tensor on the CPU.
    fn tensor(&self, x: &Mat<f64>, shape: [i64; 3]) -> Tensor {
        let n = x.nrows();
        let mut values = Vec::with_capacity(n * x.ncols());
        for i in 0..n {
            values.extend(x.row(i).iter().map(|v| ((v - self.lo) * self.scale) as f32));
        }
        Tensor::from_slice(&values).view([n as i64, shape[0], shape[1], shape[2]])
    }
}

/// Minimal distances of one distribution's points, per class, in the distribution's units.
pub struct MeasuredDistances {
    /// Per point: the smaller upper bound, or `max_radius` where neither attack broke it.
    pub estimates: Vec<Vec<f64>>,
    spread: AttackSpread,
}

impl MeasuredDistances {
    /// How far the two attacks disagree on these points.
    pub fn spread(&self) -> AttackSpread {
        self.spread
    }
}

/// A network trained on samples of `D`, with its minimal-distance search.
pub struct NetworkRobustness {
    _vs: nn::VarStore,
    net: nn::SequentialT,
    unit: UnitBox,
    search: MinimalDistance,
    max_radius: f64,
    shape: [i64; 3],
    batch: usize,
    device: tch::Device,
}

impl NetworkRobustness {
    /// Trains `settings.model` on `train` (one n × d matrix per class) by PGD at
    /// `settings.epsilon` in `norm`, in the box around `extent`.
    pub fn train(
        settings: &NetworkClassifier,
        norm: Norm,
        train: &[Mat<f64>],
        extent: Extent,
        seed: u64,
        progress: bool,
    ) -> Result<Self> {
        let device = settings.device.start(settings.threads)?;
        let unit = UnitBox::around(extent, settings.max_radius.max(settings.epsilon))?;
        let shape = [1, settings.shape[0] as i64, settings.shape[1] as i64];
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(device);
        let (lo, scale) = (unit.lo, unit.scale);
        let net = nn::seq_t()
            .add_fn(move |x| x / scale + lo)
            .add(crate::model::build(
                &vs,
                settings.model,
                shape,
                train.len() as i64,
            )?);
        let x = Tensor::cat(
            &train
                .iter()
                .map(|m| unit.tensor(m, shape))
                .collect::<Vec<_>>(),
            0,
        );
        let y = Tensor::cat(
            &train
                .iter()
                .enumerate()
                .map(|(k, m)| {
                    Tensor::full(
                        [m.nrows() as i64],
                        k as i64,
                        (Kind::Int64, tch::Device::Cpu),
                    )
                })
                .collect::<Vec<_>>(),
            0,
        );
        let epsilon = settings.epsilon * unit.scale;
        let objective = if epsilon > 0.0 {
            Objective::Pgd {
                norm,
                epsilon,
                step_size: 2.5 * epsilon / settings.train_steps as f64,
                steps: settings.train_steps,
            }
        } else {
            Objective::Natural
        };
        let spinner = crate::report::progress(1, "training the network on D", progress);
        fit(
            &net,
            &vs,
            (&x, &y),
            &objective,
            &FitSchedule {
                epochs: settings.epochs,
                batch_size: settings.batch_size,
                lr: settings.lr,
                optimizer: SgdConfig::default(),
            },
            device,
            seed,
        );
        spinner.finish_and_clear();
        Ok(NetworkRobustness {
            _vs: vs,
            net,
            unit,
            search: MinimalDistance {
                threat: Threat { norm, epsilon: 0.0 },
                max_radius: settings.max_radius * unit.scale,
                fab_iterations: settings.fab_iterations,
                bisection_steps: settings.bisection_steps,
                pgd_steps: settings.pgd_steps,
            },
            max_radius: settings.max_radius,
            shape,
            batch: settings.attack_batch,
            device,
        })
    }

    /// Minimal distances of the points `samples[y]` (label `y`) to the network's boundary.
    pub fn class_distances(&self, samples: &[Mat<f64>]) -> MeasuredDistances {
        let found = self.measure(&self.net, samples);
        let all = found.iter().flatten();
        let unbroken = all.clone().filter(|d| !d.upper.is_finite()).count();
        let pairs: Vec<(f64, f64)> = all.map(|d| (d.fab, d.bisection)).collect();
        MeasuredDistances {
            estimates: found
                .iter()
                .map(|class| class.iter().map(|d| d.upper.min(self.max_radius)).collect())
                .collect(),
            spread: spread(&pairs, unbroken),
        }
    }

    /// The same estimator on `linear`, whose distances are exact, at the points `samples[y]`.
    pub fn calibrate(
        &self,
        linear: &LinearClassifier,
        samples: &[Mat<f64>],
    ) -> Result<Calibration> {
        let model = linear_in_box(linear, self.unit, self.device);
        let norm = self.search.threat.norm;
        let (mut exact_sum, mut gaps, mut fab_gaps, mut bisection_gaps) =
            (0.0, Vec::new(), Vec::new(), Vec::new());
        let mut unbroken = 0;
        let found = self.measure(&model, samples);
        for (y, (x, measured)) in samples.iter().zip(found).enumerate() {
            let exact = linear.distances_to_boundary(x.as_ref(), &vec![y; x.nrows()], norm);
            for (e, d) in exact.iter().zip(measured) {
                if !(*e > 0.0 && e.is_finite()) {
                    continue;
                }
                if !d.upper.is_finite() {
                    unbroken += 1;
                    continue;
                }
                exact_sum += e;
                gaps.push((d.upper - e) / e);
                fab_gaps.extend(d.fab.is_finite().then(|| (d.fab - e) / e));
                bisection_gaps.extend(d.bisection.is_finite().then(|| (d.bisection - e) / e));
            }
        }
        if gaps.is_empty() {
            return Err(Error::invalid(
                "classifier.network.max_radius",
                "a radius within which the calibration classifier's points can be broken",
            ));
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        Ok(Calibration {
            points: gaps.len(),
            mean_exact: exact_sum / gaps.len() as f64,
            mean_relative_gap: mean(&gaps),
            max_relative_gap: gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            fab_relative_gap: mean(&fab_gaps),
            bisection_relative_gap: mean(&bisection_gaps),
            unbroken,
        })
    }

    /// Both attacks' distances under `model` of the rows of `samples[y]` (label `y`), in the
    /// distribution's units, per class. All classes are attacked together, `batch` at a time.
    fn measure(&self, model: &impl ModuleT, samples: &[Mat<f64>]) -> Vec<Vec<PointDistance>> {
        let inputs = Tensor::cat(
            &samples
                .iter()
                .map(|m| self.unit.tensor(m, self.shape))
                .collect::<Vec<_>>(),
            0,
        );
        let labels: Vec<i64> = samples
            .iter()
            .enumerate()
            .flat_map(|(y, m)| std::iter::repeat_n(y as i64, m.nrows()))
            .collect();
        let labels = Tensor::from_slice(&labels);
        let n = inputs.size()[0];
        let mut flat = Vec::with_capacity(n as usize);
        tch::manual_seed(0);
        for start in (0..n).step_by(self.batch) {
            let len = (self.batch as i64).min(n - start);
            let xb = inputs.narrow(0, start, len).to_device(self.device);
            let yb = labels.narrow(0, start, len).to_device(self.device);
            let d = self.search.measure(model, &xb, &yb);
            let host = crate::host::to_f64s;
            let (fab, bisection, upper) = (host(&d.fab), host(&d.bisection), host(&d.upper_bound));
            flat.extend((0..len as usize).map(|i| PointDistance {
                fab: fab[i] / self.unit.scale,
                bisection: bisection[i] / self.unit.scale,
                upper: upper[i] / self.unit.scale,
            }));
        }
        let mut flat = flat.into_iter();
        samples
            .iter()
            .map(|m| flat.by_ref().take(m.nrows()).collect())
            .collect()
    }
}

/// One point's distances (∞ where an attack found nothing within the largest radius).
struct PointDistance {
    fab: f64,
    bisection: f64,
    upper: f64,
}

/// Mean |FAB − bisection| over the points both broke.
fn spread(pairs: &[(f64, f64)], unbroken: usize) -> AttackSpread {
    let both: Vec<f64> = pairs
        .iter()
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (a - b).abs())
        .collect();
    AttackSpread {
        disagreement: both.iter().sum::<f64>() / both.len().max(1) as f64,
        unbroken,
        points: pairs.len(),
    }
}

/// `h` as a module on box inputs: with `x = lo + x_box/s`, the logits `W x + b` are
/// `(W/s) x_box + (b + lo·W·1)`.
fn linear_in_box(h: &LinearClassifier, unit: UnitBox, device: tch::Device) -> nn::FuncT<'static> {
    let (k, d) = (h.num_classes(), h.dim());
    let w = h.weights();
    let weights: Vec<f32> = (0..d)
        .flat_map(|j| (0..k).map(move |c| (w[(c, j)] / unit.scale) as f32))
        .collect();
    let bias: Vec<f32> = (0..k)
        .map(|c| (h.bias()[c] + unit.lo * (0..d).map(|j| w[(c, j)]).sum::<f64>()) as f32)
        .collect();
    let weights = Tensor::from_slice(&weights)
        .view([d as i64, k as i64])
        .to_device(device);
    let bias = Tensor::from_slice(&bias).to_device(device);
    nn::func_t(move |x, _| x.flatten(1, -1).matmul(&weights) + &bias)
}
