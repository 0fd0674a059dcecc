//! Development aid: times forward+backward w.r.t. the input, a PGD-10 step and an eval forward of
//! a model in both memory layouts (model::layout), three rounds alternating:
//! `cargo run --release --features torch --example layout_probe -- cnn4 1,28,28 128 [REPS] [cpu|cuda]`.
use proxyrobust::attack::Pgd;
use proxyrobust::model::layout::Layout;
use proxyrobust::model::{Architecture, build_in_layout};
use proxyrobust::theory::norm::Norm;
use std::time::Instant;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch: Architecture = args[1].parse().unwrap();
    let shape: Vec<i64> = args[2].split(',').map(|v| v.parse().unwrap()).collect();
    let batch: i64 = args[3].parse().unwrap();
    let reps: usize = args.get(4).map(|v| v.parse().unwrap()).unwrap_or(10);
    let device = if args.get(5).is_some_and(|d| d == "cuda") {
        Device::Cuda(0)
    } else {
        Device::Cpu
    };
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    // One warm-up call, then the mean over `reps` calls.
    let milliseconds_per_call = |f: &dyn Fn() -> Tensor| {
        let _ = f();
        sync();
        let t = Instant::now();
        for _ in 0..reps {
            let _ = f();
        }
        sync();
        t.elapsed().as_secs_f64() / reps as f64 * 1e3
    };
    tch::set_num_threads(2);
    for round in 0..3 {
        for layout in [Layout::Contiguous, Layout::ChannelsLast] {
            tch::manual_seed(0);
            let vs = VarStore::new(device);
            let net =
                build_in_layout(&vs, arch, [shape[0], shape[1], shape[2]], 10, layout).unwrap();
            let x = Tensor::rand([batch, shape[0], shape[1], shape[2]], (Kind::Float, device));
            let y = Tensor::randint(10, [batch], (Kind::Int64, device));
            let fb = || {
                let d = x.zeros_like().set_requires_grad(true);
                let loss = net.forward_t(&(&x + &d), true).cross_entropy_for_logits(&y);
                Tensor::run_backward(&[loss], &[&d], false, false).remove(0)
            };
            let fb_ms = milliseconds_per_call(&fb);
            let pgd = Pgd {
                norm: Norm::Linf,
                epsilon: 0.3,
                step_size: 0.01,
                steps: 10,
                random_start: true,
                restarts: 1,
            };
            let t = Instant::now();
            let _ = pgd.perturb(&net, &x, &y, true);
            sync();
            let pgd_ms = t.elapsed().as_secs_f64() / 10.0 * 1e3;
            let fwd = || tch::no_grad(|| net.forward_t(&x, false));
            let fwd_ms = milliseconds_per_call(&fwd);
            println!(
                "round {round} {layout:?}: fwd+bwd(input) {fb_ms:.2} ms, PGD step {pgd_ms:.2} ms, eval forward {fwd_ms:.2} ms"
            );
        }
    }
}
