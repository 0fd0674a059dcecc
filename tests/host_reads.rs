//! No host synchronisation in the hot loops (feature `torch`): every copy of tensor values to the
//! host goes through `proxyrobust::host`, which counts them. A training run's count does not
//! depend on how many steps it takes (so a step makes none) for PGD, TRADES and free adversarial
//! training, with and without PORT's synthetic batches; PGD and APGD make none; and the files of
//! the training step and of those attacks read nothing to the host behind the counter's back.
//! (One test in its own binary: the counter is process-wide.)
#![cfg(feature = "torch")]

use proxyrobust::attack::{Apgd, ApgdLoss, Pgd, Threat};
use proxyrobust::host;
use proxyrobust::model::{Architecture, build};
use proxyrobust::theory::norm::Norm;
use proxyrobust::train::{Start, TrainConfig, run};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn proxy_npz(dir: &std::path::Path) -> std::path::PathBuf {
    let (train, _) = proxyrobust::data::mnist10k().unwrap();
    let npz = dir.join("proxy.npz");
    proxyrobust::data::write_image_npz(&npz, &train.take(200)).unwrap();
    npz
}

/// Host reads of one training run of `steps` steps (one epoch, batch 32).
fn reads_of_run(dir: &std::path::Path, objective: &str, synthetic: &str, steps: usize) -> u64 {
    let name = format!("run{}", dir.read_dir().unwrap().count());
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "model = \"cnn2\"\nepochs = 1\nbatch_size = 32\ntrain_subset = {}\nlog_every_steps = 1000\n[objective]\n{objective}\n{synthetic}[lr]\nbase = 0.05\n",
            32 * steps
        ),
    )
    .unwrap();
    let config = TrainConfig::load(&config).unwrap();
    let before = host::reads();
    run(&config, &dir.join(name), false, Start::Fresh).unwrap();
    host::reads() - before
}

#[test]
fn training_steps_and_attack_iterations_read_nothing_to_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let npz = proxy_npz(dir.path());
    let port = format!(
        "[synthetic]\nnpz = \"{}\"\nbatch_size = 16\ngamma = 0.4\n",
        npz.display()
    );
    for objective in [
        "kind = \"pgd\"\nnorm = \"linf\"\nepsilon = 0.1\nstep_size = 0.05\nsteps = 3",
        "kind = \"trades\"\nnorm = \"l2\"\nepsilon = 1.0\nstep_size = 0.5\nsteps = 3\nbeta = 6.0",
        "kind = \"free\"\nnorm = \"linf\"\nepsilon = 0.1\nreplays = 2",
    ] {
        for synthetic in ["", port.as_str()] {
            let short = reads_of_run(dir.path(), objective, synthetic, 2);
            let long = reads_of_run(dir.path(), objective, synthetic, 9);
            assert!(short > 0, "the epoch's metrics and evaluation are read");
            assert_eq!(
                short,
                long,
                "{objective} port={}: 7 more steps made {} more host reads",
                !synthetic.is_empty(),
                long as i64 - short as i64
            );
        }
    }

    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let net = build(&vs, Architecture::Cnn2, [1, 28, 28], 10).unwrap();
    let x = Tensor::rand([16, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [16], (Kind::Int64, Device::Cpu));
    let before = host::reads();
    let pgd = Pgd {
        norm: Norm::Linf,
        epsilon: 0.1,
        step_size: 0.02,
        steps: 20,
        random_start: true,
        restarts: 2,
    };
    let _ = pgd.perturb(&net, &x, &y, false);
    for loss in [ApgdLoss::CrossEntropy, ApgdLoss::TargetedDlr { targets: 3 }] {
        let apgd = Apgd {
            threat: Threat {
                norm: Norm::Linf,
                epsilon: 0.1,
            },
            loss,
            iterations: 20,
            restarts: 2,
        };
        let _ = apgd.perturb(&net, &x, &y);
    }
    assert_eq!(
        host::reads(),
        before,
        "PGD and APGD read nothing to the host"
    );

    // The counter sees only reads made through `host`; the training step's and the attacks'
    // files must not read tensors any other way (test modules excepted).
    for file in [
        "src/train/run.rs",
        "src/train/objective.rs",
        "src/train/port.rs",
        "src/train/sgd.rs",
        "src/train/ema.rs",
        "src/attack/pgd.rs",
        "src/attack/apgd.rs",
        "src/attack/threat.rs",
        "src/data/augment.rs",
    ] {
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for pattern in [
            "double_value",
            "int64_value",
            "f64::try_from",
            "f32::try_from",
            "i64::try_from",
            "bool::try_from",
            "Vec::<",
            "::try_from(Tensor",
            ".copy_data",
            "to_device(Device::Cpu)",
            "to_device(tch::Device::Cpu)",
        ] {
            assert!(
                !code.contains(pattern),
                "{file} reads a tensor to the host with {pattern}; use proxyrobust::host outside the hot loop"
            );
        }
    }
}
