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

/// `n` 8×8 grey images near `level` (±10), labelled `i % 2`.
fn images(n: usize, level: impl Fn(usize) -> u8) -> proxyrobust::data::ImageDataset {
    let pixels = (0..n)
        .flat_map(|i| {
            let base = level(i) as i32;
            (0..64).map(move |p| (base + ((i * 7 + p * 13) % 21) as i32 - 10).clamp(0, 255) as u8)
        })
        .collect();
    let labels = (0..n).map(|i| (i % 2) as i64).collect();
    proxyrobust::data::ImageDataset::new(pixels, labels, [8, 8, 1], 2).unwrap()
}

/// Scores against a real set of dark images, of a proxy set half dark (like the real images)
/// and half bright: the bright half scores high, the dark half low; scores lie in [0, 1] and
/// never above the clean score; the groups and the selection follow the score order; scoring
/// again from the saved discriminator gives the same scores.
#[test]
fn synthetic_scores_single_out_the_proxy_samples_unlike_real_ones() {
    use proxyrobust::data::{read_image_npz, write_image_npz};
    let dir = tempfile::tempdir().unwrap();
    let (real, proxy) = (dir.path().join("real.npz"), dir.path().join("proxy.npz"));
    write_image_npz(&real, &images(240, |_| 60)).unwrap();
    let bright = |i: usize| i.is_multiple_of(3);
    write_image_npz(&proxy, &images(240, |i| if bright(i) { 200 } else { 60 })).unwrap();
    let config = config(
        dir.path(),
        "name = \"score\"\nmodel = \"mlp\"\nnorm = \"linf\"\nseeds = [0]\nheld_out = 40\nepochs = 6\nlr = 0.05\n\
         train_steps = 3\neval_steps = 5\nthreads = 1\nepsilons = [0.0, 0.05]\n",
    );
    let score = |out: &Path, extra: &[&str]| -> Vec<(f64, f64)> {
        let mut args = vec![
            "score",
            real.to_str().unwrap(),
            proxy.to_str().unwrap(),
            "--config",
            &config,
            "--epsilon",
            "0.05",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend(extra);
        let o = binary().args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out.join("scores.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                (f[2].parse().unwrap(), f[3].parse().unwrap())
            })
            .collect()
    };
    let out = dir.path().join("scored");
    let rows = score(&out, &["--groups", "3", "--select", "60"]);
    assert_eq!(rows.len(), 240);
    for (i, &(clean, worst)) in rows.iter().enumerate() {
        assert!(
            (0.0..=1.0).contains(&worst) && worst <= clean,
            "sample {i}: {worst} vs {clean}"
        );
    }
    let mean = |pick: bool| {
        let v: Vec<f64> = (0..240)
            .filter(|&i| bright(i) == pick)
            .map(|i| rows[i].1)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    // Dark proxies are real-like: the best discriminator gives them (2/3·200)/(2/3·200 + 200)
    // = 0.4 on a balanced split of 200 per side; bright ones are proxies for sure.
    assert!(
        mean(true) > 0.7 && mean(false) < 0.5,
        "bright {} dark {}",
        mean(true),
        mean(false)
    );
    let brightness = |path: &Path| -> Vec<f64> {
        let set = read_image_npz(path, 2).unwrap();
        set.pixels()
            .chunks(64)
            .map(|c| c.iter().map(|&p| p as f64).sum::<f64>() / 64.0)
            .collect()
    };
    // 240 in three groups of 80: the 80 bright samples are the last group.
    let last = brightness(&out.join("groups/group-2.npz"));
    assert_eq!(last.len(), 80);
    assert!(
        last.iter().filter(|&&b| b > 128.0).count() >= 72,
        "{last:?}"
    );
    let selected = brightness(&out.join("selected.npz"));
    assert_eq!(selected.len(), 60);
    assert!(selected.iter().all(|&b| b < 128.0), "{selected:?}");
    assert_eq!(brightness(&out.join("random.npz")).len(), 60);
    let weights = out.join("discriminator.safetensors");
    let again = score(
        &dir.path().join("again"),
        &["--weights", weights.to_str().unwrap()],
    );
    assert_eq!(again, rows, "the saved discriminator scores the same");
}

/// The ε grid in shards: without a ladder each (seed, ε) is a cell; two shards and the merge
/// write the curve a single run writes, and a merge with cells missing is refused naming them;
/// a rerun skips the cells already done, for any seed list holding their seed.
#[test]
fn grid_shards_merge_into_the_curve_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (real, proxy) = spheres(dir.path(), 2, 1.0, 1.4, 300);
    let config = config(
        dir.path(),
        "name = \"shards\"\nmodel = \"mlp\"\nnorm = \"l2\"\nseeds = [0, 1]\nheld_out = 100\nepochs = 3\nlr = 0.05\n\
         train_steps = 3\neval_steps = 5\nthreads = 1\nepsilons = [0.0, 0.1, 0.2]\n",
    );
    let arc = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec![
            "arc",
            real.as_str(),
            proxy.as_str(),
            "--config",
            config.as_str(),
            "--quiet",
            "--out",
        ];
        let out = out.to_str().unwrap().to_string();
        args.push(&out);
        args.extend(extra);
        binary().args(&args).output().unwrap()
    };
    assert!(arc("whole", &[]).status.success());
    let first = arc("split", &["--shard", "0/2"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let refused = arc("split", &["--merge"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("3 of 6 are not: seed 0 ε 0.1, seed 1 ε 0, seed 1 ε 0.2"),
        "{err}"
    );
    assert!(arc("split", &["--shard", "1/2"]).status.success());
    assert!(arc("split", &["--merge"]).status.success());
    let read = |out: &str| std::fs::read_to_string(dir.path().join(out).join("curve.csv")).unwrap();
    assert_eq!(read("split"), read("whole"));
    assert_eq!(read("whole").lines().count(), 7);
    // A second run finds every cell done under the same settings and recomputes none (a cell
    // records its own time, so a recomputed one would differ); a changed config redoes them.
    let cell = || std::fs::read_to_string(dir.path().join("whole/cells/s1-e1.json")).unwrap();
    let before = cell();
    assert!(arc("whole", &[]).status.success());
    assert_eq!(cell(), before, "a finished cell was recomputed");
    // The seed list is not part of a cell's settings: seed 1 alone reuses its cells.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("seeds = [0, 1]", "seeds = [1]")).unwrap();
    assert!(arc("whole", &[]).status.success());
    assert_eq!(
        cell(),
        before,
        "a cell was recomputed for another seed list"
    );
    assert_eq!(
        read("whole").lines().count(),
        4,
        "the curve of seed 1 alone"
    );
    std::fs::write(&config, &text).unwrap();
    std::fs::write(&config, text.replace("epochs = 3", "epochs = 4")).unwrap();
    assert!(arc("whole", &[]).status.success());
    assert_ne!(cell(), before, "a cell of other settings was reused");
}
