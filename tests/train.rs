//! Natural training on tch (feature `torch`): CNN-4 on the embedded MNIST-10k split reaches at
//! least 97% clean test accuracy (and bf16 autocast lands within half a point of it), and the
//! run folder is complete.
#![cfg(feature = "torch")]

use proxyrobust::train::{TrainConfig, run};

mod common;
use common::binary;

#[test]
fn cnn4_reaches_97_percent_on_mnist10k() {
    let dir = tempfile::tempdir().unwrap();
    let config = TrainConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/mnist_cnn4.toml"
    )))
    .unwrap();
    let outcome = run(&config, dir.path(), false, proxyrobust::train::Start::Fresh).unwrap();
    assert!(
        outcome.final_test_accuracy >= 0.97,
        "test accuracy {}",
        outcome.final_test_accuracy
    );
    assert_eq!(outcome.epochs.len(), config.epochs);

    // The same recipe under bf16 autocast ends within half a point of fp32's clean accuracy.
    let bf16 = TrainConfig {
        precision: proxyrobust::train::precision::Precision::Bf16,
        ..config.clone()
    };
    let bf16_dir = tempfile::tempdir().unwrap();
    let bf16_outcome = run(
        &bf16,
        bf16_dir.path(),
        false,
        proxyrobust::train::Start::Fresh,
    )
    .unwrap();
    assert!(
        (bf16_outcome.final_test_accuracy - outcome.final_test_accuracy).abs() <= 0.005,
        "bf16 {} against fp32 {}",
        bf16_outcome.final_test_accuracy,
        outcome.final_test_accuracy
    );
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert!(csv.starts_with(
        "epoch,lr,train_loss,train_accuracy,grad_norm,test_loss,test_accuracy,seconds\n"
    ));
    assert_eq!(csv.lines().count(), config.epochs + 1);
    let weights = std::fs::read(dir.path().join("weights.safetensors")).unwrap();
    // safetensors: an 8-byte little-endian header length, then a JSON header naming the tensors
    // with the PyTorch nn.Sequential keys of cnn4.
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&weights[8..8 + header_len]).unwrap();
    for key in [
        "\"0.weight\"",
        "\"2.bias\"",
        "\"5.weight\"",
        "\"7.weight\"",
        "\"11.weight\"",
        "\"11.bias\"",
    ] {
        assert!(header.contains(key), "missing {key} in {header}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["versions"]["libtorch"], "2.11.0");

    // `eval` on the saved weights reproduces the last epoch's test accuracy; PGD lowers it.
    let weights = dir.path().join("weights.safetensors");
    let attack = proxyrobust::attack::Pgd {
        norm: proxyrobust::theory::norm::Norm::Linf,
        epsilon: 0.1,
        step_size: 0.025,
        steps: 10,
        random_start: true,
        restarts: 1,
    };
    let settings = proxyrobust::eval::EvalSettings {
        pgd: Some(attack),
        autoattack: None,
        distance: None,
        each_attack: false,
        limit: 0,
        batch_size: 256,
        seed: 0,
    };
    let proxyrobust::train::LoadedClassifier {
        net, test, x, y, ..
    } = proxyrobust::train::load_classifier(&config, &weights).unwrap();
    let (report, _) =
        proxyrobust::eval::evaluate(&net, &x, &y, test.num_classes(), &settings, false).unwrap();
    assert!(
        (report.clean_accuracy - outcome.final_test_accuracy).abs() < 1e-12,
        "{} vs {}",
        report.clean_accuracy,
        outcome.final_test_accuracy
    );
    assert_eq!(report.clean_accuracy_per_class.len(), 10);
    assert!(report.clean_accuracy_per_class.iter().all(|a| *a > 0.9));
    let robust = report.pgd_robust_accuracy.unwrap();
    assert!(
        robust < report.clean_accuracy,
        "PGD at ε = 0.1 must hurt a naturally trained model: {robust}"
    );
    // Anything that is not safetensors is refused, with the file named.
    let pickle = dir.path().join("model.pt");
    std::fs::write(&pickle, b"\x80\x02}q\x00.").unwrap();
    let err = proxyrobust::train::load_classifier(&config, &pickle)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.pt") && err.contains("only safetensors"),
        "{err}"
    );
}

#[test]
fn train_config_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("model = \"cnn4\"\nepochs = 0\n[lr]\nbase = 0.1\n", "epochs"),
        (
            "model = \"resnet9\"\nepochs = 1\n[lr]\nbase = 0.1\n",
            "got \"resnet9\"",
        ),
        (
            "model = \"cnn4\"\nepochs = 2\n[lr]\nbase = -0.1\n",
            "lr.base",
        ),
        (
            "model = \"cnn4\"\nepochs = 2\ndevice = \"tpu\"\n[lr]\nbase = 0.1\n",
            "device",
        ),
        ("model = \"cnn4\"\nepochs = 2\n", "missing field `lr`"),
        (
            "model = \"cnn4\"\nepochs = 2\n[augment]\ncrop_padding = -1\n[lr]\nbase = 0.1\n",
            "augment.crop_padding",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let err = TrainConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains(needle) && err.contains("bad.toml"),
            "expected `{needle}` in {err}"
        );
    }
}

const SHORT: &str = "name = \"short\"\nmodel = \"cnn4\"\nepochs = 3\ntrain_subset = 3000\ncheckpoint_every_steps = 4\n[lr]\nbase = 0.05\n";

/// metrics.csv without the wall-clock column.
fn metrics_without_time(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

/// Starts a training run, waits for its first checkpoint, stops it with `signal`, resumes it
/// and returns the final metrics.
fn interrupted_and_resumed(
    config: &std::path::Path,
    out: &std::path::Path,
    signal: &str,
) -> Vec<String> {
    let mut child = binary()
        .args([
            "train",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = out.join("checkpoint.safetensors");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !checkpoint.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before it could be interrupted"
    );
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    if signal == "-KILL" {
        assert!(!exit.success(), "SIGKILL must end the run abruptly");
    } else {
        assert_eq!(
            exit.code(),
            Some(130),
            "Ctrl-C must save a checkpoint and exit with 130 (unfinished): {exit:?}"
        );
    }
    let resumed = binary()
        .args([
            "train",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--resume",
        ])
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    metrics_without_time(out)
}

/// A run killed with SIGKILL (or stopped by Ctrl-C) and resumed ends with the same metrics as an
/// uninterrupted run with the same seed, on CPU.
#[test]
fn resume_after_kill_or_ctrl_c_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut finals = Vec::new();
    // Without and with an exponential moving average of the weights (its state is checkpointed).
    for (label, extra) in [("plain", ""), ("ema", "ema_decay = 0.95\n")] {
        let config = dir.path().join(format!("short-{label}.toml"));
        std::fs::write(&config, format!("{extra}{SHORT}")).unwrap();
        let straight = dir.path().join(format!("straight-{label}"));
        let o = binary()
            .args([
                "train",
                config.to_str().unwrap(),
                "--out",
                straight.to_str().unwrap(),
                "--quiet",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let expected = metrics_without_time(&straight);
        assert_eq!(expected.len(), 4);
        for signal in ["-KILL", "-INT"] {
            let out = dir.path().join(format!("run-{label}{signal}"));
            assert_eq!(
                interrupted_and_resumed(&config, &out, signal),
                expected,
                "{label} after {signal}"
            );
        }
        finals.push(expected[3].clone());
    }
    assert_ne!(
        finals[0], finals[1],
        "the averaged model must be the one evaluated"
    );
    let config = dir.path().join("short-plain.toml");
    // Resuming needs a checkpoint; a foreign file is refused with one line.
    let empty = dir.path().join("empty");
    let o = binary()
        .args([
            "train",
            config.to_str().unwrap(),
            "--out",
            empty.to_str().unwrap(),
            "--resume",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no checkpoint to resume from"));
    std::fs::create_dir_all(&empty).unwrap();
    // The record of the config matches (copied from a finished run of it): only the checkpoint
    // is foreign.
    std::fs::copy(
        dir.path().join("straight-plain/run_config.json"),
        empty.join("run_config.json"),
    )
    .unwrap();
    std::fs::write(empty.join("checkpoint.safetensors"), b"not safetensors").unwrap();
    let o = binary()
        .args([
            "train",
            config.to_str().unwrap(),
            "--out",
            empty.to_str().unwrap(),
            "--resume",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a readable safetensors file"));
}

/// A config naming a user-supplied CIFAR-10 folder trains on tiny fake files in the real format,
/// and a missing folder is one clear line.
#[test]
fn trains_on_a_cifar10_folder_and_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar");
    std::fs::create_dir_all(&data).unwrap();
    let record = |label: u8| {
        std::iter::once(label)
            .chain((0..3072).map(|i| ((i * 7 + label as usize) % 256) as u8))
            .collect::<Vec<u8>>()
    };
    for i in 1..=5u8 {
        std::fs::write(
            data.join(format!("data_batch_{i}.bin")),
            (0..4)
                .flat_map(|k| record((i + k) % 10))
                .collect::<Vec<u8>>(),
        )
        .unwrap();
    }
    std::fs::write(
        data.join("test_batch.bin"),
        (0..4).flat_map(record).collect::<Vec<u8>>(),
    )
    .unwrap();
    let config = dir.path().join("cifar.toml");
    let text = format!(
        "model = \"resnet18\"\nepochs = 1\nbatch_size = 8\nnormalize = true\ndataset = {{ cifar10 = \"{}\" }}\n[augment]\ncrop_padding = 4\nflip = true\n[lr]\nbase = 0.01\n",
        data.display()
    );
    std::fs::write(&config, text).unwrap();
    let out = dir.path().join("run");
    let o = binary()
        .args([
            "train",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(metrics_without_time(&out).len(), 2);
    std::fs::write(
        &config,
        "model = \"cnn4\"\nepochs = 1\ndataset = { cifar10 = \"/nowhere\" }\n[lr]\nbase = 0.01\n",
    )
    .unwrap();
    let o = binary()
        .args([
            "train",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("dataset.cifar10") && err.contains("/nowhere/data_batch_1.bin does not exist"),
        "{err}"
    );
}

/// Every objective trains (one epoch on 256 digits), alone and with PORT on an npz of proxy
/// images; the metrics are finite and a config error names its field.
#[test]
fn objectives_and_port_train_and_bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _) = proxyrobust::data::mnist10k().unwrap();
    let npz = dir.path().join("proxy.npz");
    proxyrobust::data::write_image_npz(&npz, &train.take(300)).unwrap();
    let objectives = [
        "kind = \"natural\"",
        "kind = \"pgd\"\nnorm = \"linf\"\nepsilon = 0.1\nstep_size = 0.05\nsteps = 2",
        "kind = \"trades\"\nnorm = \"l2\"\nepsilon = 1.0\nstep_size = 0.5\nsteps = 2\nbeta = 6.0",
        "kind = \"fgsm\"\nnorm = \"linf\"\nepsilon = 0.1\nstep_size = 0.125",
        "kind = \"free\"\nnorm = \"linf\"\nepsilon = 0.1\nreplays = 2",
        "kind = \"gaussian-augmentation\"\nsigma = 0.25",
        "kind = \"stability\"\nsigma = 0.25\nbeta = 6.0",
    ];
    for (i, objective) in objectives.iter().enumerate() {
        for port in [false, true] {
            let synthetic = if port {
                format!(
                    "[synthetic]\nnpz = \"{}\"\nbatch_size = 32\ngamma = 0.4\n",
                    npz.display()
                )
            } else {
                String::new()
            };
            let config = dir.path().join(format!("c{i}{port}.toml"));
            std::fs::write(&config, format!("model = \"cnn2\"\nepochs = 1\nbatch_size = 64\ntrain_subset = 256\nlabel_smoothing = 0.1\n[objective]\n{objective}\n{synthetic}[lr]\nbase = 0.05\n")).unwrap();
            let out = dir.path().join(format!("run{i}{port}"));
            let o = binary()
                .args([
                    "train",
                    config.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                    "--quiet",
                ])
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{objective} port={port}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let metrics = metrics_without_time(&out);
            let loss: f64 = metrics[1].split(',').nth(2).unwrap().parse().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{objective}: {metrics:?}");
        }
    }
    for (body, needle) in [
        (
            "[objective]\nkind = \"pgd\"\nnorm = \"linf\"\nepsilon = -0.1\nstep_size = 0.05\nsteps = 2\n",
            "objective.epsilon",
        ),
        (
            "[objective]\nkind = \"free\"\nnorm = \"linf\"\nepsilon = 0.1\nreplays = 0\n",
            "objective.replays",
        ),
        (
            "[objective]\nkind = \"stability\"\nsigma = 0.0\nbeta = 6.0\n",
            "objective.sigma",
        ),
        (
            "[objective]\nkind = \"gaussian-augmentation\"\nsigma = -1.0\n",
            "objective.sigma",
        ),
        ("[synthetic]\ngamma = 0.4\n", "synthetic"),
        (
            "[synthetic]\nnpz = \"x.npz\"\ngamma = 1.5\n",
            "synthetic.gamma",
        ),
        ("ema_decay = 1.0\n", "ema_decay"),
    ] {
        let config = dir.path().join("bad.toml");
        std::fs::write(
            &config,
            format!("model = \"cnn2\"\nepochs = 1\n{body}[lr]\nbase = 0.05\n"),
        )
        .unwrap();
        let o = binary()
            .args([
                "train",
                config.to_str().unwrap(),
                "--out",
                dir.path().join("bad").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(needle) && err.lines().count() == 1,
            "{needle}: {err}"
        );
    }
}

#[test]
fn port_weights_split_gamma_between_real_and_synthetic() {
    let w = proxyrobust::train::port::aggregation_weights(0.4, 4, 8);
    assert_eq!(w.len(), 12);
    assert!((w[..4].iter().sum::<f64>() - 0.4).abs() < 1e-12);
    assert!((w[4..].iter().sum::<f64>() - 0.6).abs() < 1e-12);
}

/// A run folder is claimed, not clobbered: a fresh run refuses a folder holding a checkpoint,
/// `--resume` refuses a changed config (naming the fields), `--overwrite` replaces the run,
/// temporary files of dead processes are removed, and a diverging run stops with an error naming
/// the epoch and step.
#[test]
fn run_folders_are_claimed_and_a_non_finite_loss_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("model = \"cnn2\"\nbatch_size = 64\ntrain_subset = 128\n{body}"),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let one = write("one.toml", "epochs = 1\n[lr]\nbase = 0.05\n");
    let two = write("two.toml", "epochs = 2\nthreads = 1\n[lr]\nbase = 0.05\n");
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let train = |config: &str, extra: &[&str]| {
        let mut args = vec!["train", config, "--out", out_s, "--quiet"];
        args.extend(extra);
        binary().args(&args).output().unwrap()
    };
    assert!(train(&one, &[]).status.success());
    let stale = out.join(".metrics.csv.tmp-999999999.csv");
    std::fs::write(&stale, "half-written").unwrap();
    let refused = |o: std::process::Output, needle: &str| {
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{needle}: {err}");
        assert!(
            err.lines().count() == 1 && err.contains(needle),
            "{needle}: {err}"
        );
    };
    refused(train(&one, &[]), "already holds a checkpoint");
    // threads may change on resume; epochs may not (it moves the cosine schedule).
    refused(train(&two, &["--resume"]), "changed: epochs (1 → 2)");
    assert!(stale.exists(), "a refused run touches nothing");
    let o = train(&two, &["--overwrite"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        metrics_without_time(&out).len(),
        3,
        "two epochs after the overwrite"
    );
    assert!(
        !stale.exists(),
        "the dead process's temporary file is removed"
    );
    let o = train(&two, &["--resume"]);
    assert!(
        o.status.success(),
        "same config: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let diverging = write("nan.toml", "epochs = 2\n[lr]\nbase = 1e30\n");
    let out = dir.path().join("nan");
    let o = binary()
        .args([
            "train",
            &diverging,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    refused(o, "a finite loss; epoch 1 step");
}
