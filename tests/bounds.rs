//! Bounds from trained networks (feature `torch`): the Theorem 1 sweep with a trained network
//! end to end on a tiny config, the minimal-distance estimator calibrated against exact distances
//! on a linear classifier, and the `bounds` report on a proxy set equal to the real points
//! (|ΔRob| = 0, proximity estimates 0) and the OT estimate shrinking with the subsample size.
#![cfg(feature = "torch")]

use std::path::Path;

use proxyrobust::bounds::subsample_cwd_w1;
use proxyrobust::theory::norm::Norm;
use tch::Tensor;

mod common;
use common::binary;

const TINY_SWEEP: &str = r#"
sweep = "theorem1"
name = "tiny_network"
seed = 3
[real]
classes = 3
dim = 16
mean_scale = 1.0
[classifier]
kind = "network"
train_samples_per_class = 100
[classifier.network]
model = "cnn2"
shape = [4, 4]
epochs = 15
lr = 0.01
epsilon = 0.3
train_steps = 3
max_radius = 6.0
fab_iterations = 30
bisection_steps = 8
pgd_steps = 10
threads = 1
[proxies]
count = 4
min_strength = 0.01
max_strength = 1.0
kinds = ["mean", "covariance", "both"]
[evaluation]
norm = "l2"
samples_per_class = 15
"#;

#[test]
fn the_network_sweep_writes_its_report_and_its_estimator_is_calibrated_on_a_linear_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, TINY_SWEEP).unwrap();
    let out = dir.path().join("out");
    let o = binary()
        .args([
            "sweep",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in [
        "theorem1.csv",
        "theorem1.png",
        "theorem1.svg",
        "report.md",
        "manifest.json",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let csv = std::fs::read_to_string(out.join("theorem1.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with("holds,holds_point,attack_disagreement,unbroken"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 5, "one row per proxy: {csv}");
    for row in csv.lines().skip(1) {
        let fields: Vec<&str> = row.split(',').collect();
        let disagreement: f64 = fields[15].parse().unwrap();
        assert!(disagreement >= 0.0 && disagreement.is_finite(), "{row}");
        assert_eq!(fields[12], "true", "Theorem 1 holds for every proxy: {row}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("Calibration on the LDA classifier"),
        "{report}"
    );

    // On the linear classifier the estimate (two upper bounds) meets the exact distances to
    // within the bisection's resolution, 6 · 2^-8 ≈ 0.023, on a mean distance of order 1.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let c = &manifest["calibration"];
    let gap = c["mean_relative_gap"].as_f64().unwrap();
    let max = c["max_relative_gap"].as_f64().unwrap();
    assert!(c["points"].as_u64().unwrap() >= 30, "{c}");
    assert!((-1e-3..0.02).contains(&gap), "mean relative gap {gap}: {c}");
    assert!(max < 0.1, "largest relative gap {max}: {c}");
    assert_eq!(c["unbroken"].as_u64(), Some(0), "{c}");
}

#[test]
fn a_network_sweep_refuses_what_it_cannot_estimate() {
    let dir = tempfile::tempdir().unwrap();
    for (edit, needle) in [
        (
            ("shape = [4, 4]", "shape = [4, 5]"),
            "classifier.network.shape",
        ),
        (
            (
                "kinds = [\"mean\", \"covariance\", \"both\"]",
                "kinds = [\"boundary\"]",
            ),
            "proxies.kinds",
        ),
        (("norm = \"l2\"", "norm = \"l1\""), "evaluation.norm"),
        (
            ("max_radius = 6.0", "max_radius = -1.0"),
            "classifier.network.max_radius",
        ),
    ] {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, TINY_SWEEP.replace(edit.0, edit.1)).unwrap();
        let out = dir.path().join("out");
        common::refused(
            &[
                "sweep",
                config.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            needle,
        );
        assert!(!out.exists(), "{needle}: nothing written");
    }
}

/// A CNN-2 trained for one epoch on 200 digits, in `dir/model`; returns its config.
fn tiny_classifier(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("tiny.toml");
    std::fs::write(
        &config,
        "name = \"tiny\"\nmodel = \"cnn2\"\ntrain_subset = 200\nepochs = 1\nbatch_size = 50\nthreads = 1\n[lr]\nbase = 0.05\n",
    )
    .unwrap();
    let o = binary()
        .args([
            "train",
            config.to_str().unwrap(),
            "--out",
            dir.join("model").to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    config
}

#[test]
fn a_proxy_set_equal_to_the_real_points_shows_no_gap_and_no_distance() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_classifier(dir.path());
    // The proxy: the test split in reverse order. Its last 100 images are the first 100 test
    // digits the report evaluates on the real side, and as sets the two are identical.
    let (_, test) = proxyrobust::data::DatasetSource::Mnist10k.load().unwrap();
    let per: usize = test.shape().iter().product();
    let order: Vec<usize> = (0..test.len()).rev().collect();
    let reversed = proxyrobust::data::ImageDataset::new(
        order
            .iter()
            .flat_map(|&i| test.pixels()[i * per..(i + 1) * per].to_vec())
            .collect(),
        order.iter().map(|&i| test.labels()[i]).collect(),
        test.shape(),
        test.num_classes(),
    )
    .unwrap();
    let proxy = dir.path().join("same.npz");
    proxyrobust::data::write_image_npz(&proxy, &reversed).unwrap();
    let out = dir.path().join("bounds");
    let o = binary()
        .args([
            "bounds",
            config.to_str().unwrap(),
            proxy.to_str().unwrap(),
            "--weights",
            dir.path()
                .join("model/weights.safetensors")
                .to_str()
                .unwrap(),
            "--points",
            "100",
            "--eps",
            "0.1",
            "--autoattack-norm",
            "linf",
            "--ot-per-class",
            "1000",
            "--out",
            out.to_str().unwrap(),
            "--json",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (real, proxy) = (&summary["real"], &summary["proxy"]);
    let rob = |side: &serde_json::Value| side["rob"]["mean"].as_f64().unwrap();
    assert!((rob(real) - rob(proxy)).abs() < 1e-9, "{summary}");
    assert!(
        summary["delta_rob"]["mean"].as_f64().unwrap().abs() < 1e-9,
        "{summary}"
    );
    assert_eq!(real["clean_accuracy"], proxy["clean_accuracy"], "{summary}");
    assert!(summary["delta_rob"]["half_width"].as_f64().unwrap() > 0.0);
    // Whole classes on both sides: exact OT matches every point with itself. The fitted
    // Gaussians are equal, so their W2 is 0 up to the round-off of the matrix square roots of
    // rank-deficient covariances (against about 5 between digits of different sets).
    for estimate in summary["proximity"].as_array().unwrap() {
        let value = estimate["value"].as_f64().unwrap();
        match estimate["name"].as_str().unwrap() {
            "ot_w1" => assert_eq!(value, 0.0, "{estimate}"),
            _ => assert!(value.abs() < 0.05, "{estimate}"),
        }
    }
    for file in ["bounds.json", "report.md", "samples.csv", "manifest.json"] {
        assert!(out.join(file).exists(), "{file}");
    }
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert_eq!(
        samples.lines().count(),
        201,
        "header, 100 real and 100 proxy rows"
    );
}

#[test]
fn the_subsample_ot_estimate_shrinks_with_the_subsample_size() {
    let _generator = common::torch_generator();
    // Two samples of one distribution (uniform in the unit square, two classes): the W1 of
    // independent subsamples of k points falls towards 0 as k grows.
    tch::manual_seed(0);
    let cloud = |n: i64| -> Vec<Tensor> {
        (0..2)
            .map(|_| Tensor::rand([n, 2], (tch::Kind::Double, tch::Device::Cpu)))
            .collect()
    };
    let (a, b) = (cloud(400), cloud(400));
    let at = |k: usize| subsample_cwd_w1(&a, &b, &[0.5, 0.5], k, 5, 1, Norm::L2).unwrap();
    let (small, medium, large) = (at(5), at(40), at(400));
    assert!(
        small > medium && medium > large && large > 0.0,
        "{small} > {medium} > {large} > 0"
    );
    // Identical sets, whole classes: a permutation, distance 0.
    assert_eq!(
        subsample_cwd_w1(&a, &a, &[0.5, 0.5], 400, 2, 1, Norm::L2).unwrap(),
        0.0
    );
    // One point per class, (0, 0) against (0.3, 0.4) and (1, 1) against (1, 0): the ground
    // metric is the norm asked for, 0.4·0.5 + 1·0.5 in ℓ∞ and 0.5·0.5 + 1·0.5 in ℓ2.
    let point = |x: f64, y: f64| Tensor::from_slice(&[x, y]).reshape([1, 2]);
    let (real, proxy) = (
        [point(0.0, 0.0), point(1.0, 1.0)],
        [point(0.3, 0.4), point(1.0, 0.0)],
    );
    for (norm, expected) in [(Norm::Linf, 0.7), (Norm::L2, 0.75)] {
        let w1 = subsample_cwd_w1(&real, &proxy, &[0.5, 0.5], 1, 1, 0, norm).unwrap();
        assert!((w1 - expected).abs() < 1e-12, "{norm:?}: {w1}");
    }
}
