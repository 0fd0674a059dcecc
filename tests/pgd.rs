//! PGD (feature `torch`): perturbations stay in the ε-ball and the [0, 1] box and raise the loss,
//! and on a linear model PGD fools exactly the points whose exact distance to the decision
//! boundary (theory::linear) is below ε. (The constant-model check of every attack, PGD
//! included, is in tests/attacks.rs.)
#![cfg(feature = "torch")]

mod common;

use faer::Mat;
use proxyrobust::attack::Pgd;
use proxyrobust::model::{Architecture, build};
use proxyrobust::theory::linear::LinearClassifier;
use proxyrobust::theory::norm::Norm;
use tch::nn::{self, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn images() -> (Tensor, Tensor) {
    let (train, _) = proxyrobust::data::mnist10k().unwrap();
    let few = train.take(64);
    let x = Tensor::from_slice(few.pixels())
        .view([64, 28, 28, 1])
        .permute([0, 3, 1, 2])
        .contiguous()
        .to_kind(Kind::Float)
        / 255.0;
    (x, Tensor::from_slice(few.labels()))
}

#[test]
fn perturbations_stay_in_the_ball_and_the_box() {
    let _generator = common::torch_generator();
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let net = build(&vs, Architecture::Cnn4, [1, 28, 28], 10).unwrap();
    let (x, y) = images();
    for (norm, eps, step) in [(Norm::Linf, 0.3, 0.05), (Norm::L2, 2.0, 0.5)] {
        let attack = Pgd {
            norm,
            epsilon: eps,
            step_size: step,
            steps: 10,
            random_start: true,
            restarts: 2,
        };
        let adv = attack.perturb(&net, &x, &y, false);
        assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
        let delta = (&adv - &x).reshape([64, -1]);
        let size = match norm {
            Norm::Linf => delta.abs().max_dim(1, false).0,
            _ => delta.norm_scalaropt_dim(2, [1], false),
        };
        assert!(
            size.max().double_value(&[]) <= eps * (1.0 + 1e-5),
            "{norm:?}: left the ε-ball"
        );
        // The attack raises the loss it ascends.
        let loss = |t: &Tensor| net.forward_t_loss(t, &y);
        assert!(
            loss(&adv) > loss(&x),
            "{norm:?}: PGD did not increase the loss"
        );
    }
}

trait Loss {
    fn forward_t_loss(&self, x: &Tensor, y: &Tensor) -> f64;
}

impl<M: nn::ModuleT> Loss for M {
    fn forward_t_loss(&self, x: &Tensor, y: &Tensor) -> f64 {
        tch::no_grad(|| {
            self.forward_t(x, false)
                .cross_entropy_for_logits(y)
                .double_value(&[])
        })
    }
}

/// Binary linear model z = (0, w·x + b): PGD-ℓ2 with enough steps finds an adversarial example
/// exactly for the points whose exact ℓ2 distance to the boundary is below ε.
#[test]
fn on_a_linear_model_pgd_matches_the_exact_distance() {
    let _generator = common::torch_generator();
    let d = 4;
    let w = [0.8f64, -0.5, 0.3, 0.6];
    let b = -0.55;
    let exact = LinearClassifier::new(
        Mat::from_fn(2, d, |r, c| if r == 1 { w[c] } else { 0.0 }),
        vec![0.0, b],
    )
    .unwrap();
    tch::manual_seed(3);
    let x = Tensor::rand([200, d as i64], (Kind::Double, Device::Cpu)) * 0.2 + 0.4;
    let xs: Vec<f64> = Vec::<f64>::try_from(x.reshape([-1])).unwrap();
    let points = Mat::from_fn(200, d, |i, j| xs[i * d + j]);
    let labels = exact.predict(points.as_ref());
    let distances = exact.distances_to_boundary(points.as_ref(), &labels, Norm::L2);
    let wt = Tensor::from_slice(&w).view([d as i64, 1]);
    let model = nn::func_t(move |x: &Tensor, _| {
        let z = x.matmul(&wt) + b;
        Tensor::cat(&[z.zeros_like(), z], 1)
    });
    let eps = 0.08;
    let attack = Pgd {
        norm: Norm::L2,
        epsilon: eps,
        step_size: 0.02,
        steps: 50,
        random_start: false,
        restarts: 1,
    };
    let y = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    let adv = attack.perturb(&model, &x, &y, false);
    let fooled: Vec<bool> = Vec::<i64>::try_from(
        model
            .forward_t(&adv, false)
            .argmax(-1, false)
            .ne_tensor(&y)
            .to_kind(Kind::Int64),
    )
    .unwrap()
    .iter()
    .map(|&v| v == 1)
    .collect();
    let mut checked = 0;
    for (i, dist) in distances.iter().enumerate() {
        if *dist < 0.99 * eps {
            assert!(fooled[i], "point {i} at distance {dist} < ε was not fooled");
            checked += 1;
        } else if *dist > eps {
            assert!(!fooled[i], "point {i} at distance {dist} > ε was fooled");
            checked += 1;
        }
    }
    assert!(checked > 150);
    assert!(
        fooled.iter().any(|f| *f) && fooled.iter().any(|f| !*f),
        "both cases occur"
    );
}
