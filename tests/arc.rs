//! ARC on networks (feature `torch`): adversarially trained discriminators on vector sets whose
//! ARC is known in closed form (Theorem 2's concentric spheres, ARC = |r − r̃|/4).
#![cfg(feature = "torch")]

use std::path::Path;

use ndarray::Array2;
use ndarray_npy::NpzWriter;
use proxyrobust::theory::norm::Norm;
use proxyrobust::theory::sphere::ConcentricSpheres;
use rand::SeedableRng;

mod common;
use common::binary;

fn write_vectors(path: &Path, points: &faer::Mat<f64>) {
    let array = Array2::from_shape_fn((points.nrows(), points.ncols()), |(i, j)| points[(i, j)]);
    let mut w = NpzWriter::new(std::fs::File::create(path).unwrap());
    w.add_array("x", &array).unwrap();
    w.finish().unwrap();
}

/// Two concentric ℓ2 spheres of radii `r` and `r_tilde` in `dim` dimensions, `n` points each.
fn spheres(dir: &Path, dim: usize, r: f64, r_tilde: f64, n: usize) -> (String, String) {
    let spheres = ConcentricSpheres::new(dim, r, r_tilde, Norm::L2).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (real, proxy) = (dir.join("real.npz"), dir.join("proxy.npz"));
    write_vectors(&real, &spheres.sample(n, r, &mut rng));
    write_vectors(&proxy, &spheres.sample(n, r_tilde, &mut rng));
    (
        real.to_str().unwrap().into(),
        proxy.to_str().unwrap().into(),
    )
}

fn config(dir: &Path, body: &str) -> String {
    let path = dir.join("arc.toml");
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().into()
}

#[test]
fn network_arc_of_concentric_spheres_is_a_quarter_of_the_radius_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (real, proxy) = spheres(dir.path(), 2, 1.0, 1.4, 1000);
    let config = config(
        dir.path(),
        "name = \"spheres\"\nmodel = \"mlp\"\nnorm = \"l2\"\nseeds = [0]\nheld_out = 300\nepochs = 20\nladder_epochs = 6\nlr = 0.05\n\
         train_steps = 5\neval_steps = 10\nthreads = 1\nepsilons = [0.0, 0.05, 0.1, 0.15, 0.18, 0.22, 0.25, 0.3, 0.4]\n",
    );
    let out = dir.path().join("out");
    let o = binary()
        .args([
            "arc",
            &real,
            &proxy,
            "--config",
            &config,
            "--out",
            out.to_str().unwrap(),
            "--json",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arc = summary["arc_mean"].as_f64().unwrap();
    let curve: Vec<f64> = summary["mean_robust_accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (arc - 0.1).abs() <= 0.01,
        "ARC {arc}, closed form 0.1; curve {curve:?}"
    );
    assert!(curve[0] > 0.98 && curve[8] < 0.56, "{curve:?}");
    let table = std::fs::read_to_string(out.join("curve.csv")).unwrap();
    assert!(
        table.starts_with("seed,epsilon,robust_accuracy\n0,0.0,"),
        "{table}"
    );
    for f in [
        "summary.json",
        "robust_discrimination.png",
        "robust_discrimination.svg",
        "manifest.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
}

#[test]
fn the_full_scale_config_validates_and_bad_configs_name_the_field() {
    let full =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/full/arc/cifar10_resnet18.toml");
    let paper: proxyrobust::arc::ArcConfig = proxyrobust::config::load(&full).unwrap();
    assert_eq!((paper.epsilons.len(), paper.held_out), (7, 10_000));
    let dir = tempfile::tempdir().unwrap();
    let (real, proxy) = spheres(dir.path(), 2, 1.0, 1.4, 50);
    let base = "name = \"s\"\nmodel = \"mlp\"\nnorm = \"l2\"\nseeds = [0]\nepochs = 1\nlr = 0.05\n";
    for (body, field) in [
        ("held_out = 10\nepsilons = [0.0, 0.2, 0.1]\n", "epsilons"),
        ("held_out = 10\nepsilons = [-0.1]\n", "epsilons"),
        ("held_out = 60\nepsilons = [0.0]\n", "held_out"),
        (
            "held_out = 10\nepsilons = [0.0]\nladder_epochs = 0\n",
            "ladder_epochs",
        ),
        (
            "held_out = 10\nepsilons = [0.0]\nmodel = \"cnn4\"\n",
            "model",
        ),
    ] {
        let text = if body.contains("model =") {
            base.replace("model = \"mlp\"\n", "") + body
        } else {
            format!("{base}{body}")
        };
        let config = config(dir.path(), &text);
        let out = dir.path().join("bad");
        let o = binary()
            .args([
                "arc",
                &real,
                &proxy,
                "--config",
                &config,
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{body}: {err}");
        assert!(
            err.lines().count() == 1 && err.contains(field),
            "{body}: {err}"
        );
        assert!(!out.exists(), "{body}");
    }
}
