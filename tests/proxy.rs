//! Proxy generators: label distribution, moments of the fitted models, reproducibility,
//! refusals, the `proxy` command; and (feature `torch`) the pseudo-labelling rule.

use proxyrobust::data::ImageDataset;
use proxyrobust::proxy::{ProxyKind, class_counts, fit_and_sample, proxy_set};

/// Two classes of 3×3 grey images: class 0 dark around 60, class 1 bright around 180, with a
/// deterministic spread.
fn toy() -> ImageDataset {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..300u32 {
        let class = (i % 3 == 0) as i64;
        let base = if class == 1 { 180 } else { 60 };
        pixels.extend((0..9u32).map(|p| (base + ((i * 7 + p * 13) % 41) as i32 - 20) as u8));
        labels.push(class);
    }
    ImageDataset::new(pixels, labels, [3, 3, 1], 2).unwrap()
}

fn class_mean(data: &ImageDataset, class: i64) -> f64 {
    let values: Vec<f64> = (0..data.len())
        .filter(|&i| data.labels()[i] == class)
        .flat_map(|i| data.pixels()[i * 9..(i + 1) * 9].iter().map(|&p| p as f64))
        .collect();
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn class_counts_follow_the_real_label_distribution() {
    let data = toy();
    assert_eq!(class_counts(&data, 300), [200, 100]);
    assert_eq!(class_counts(&data, 7).iter().sum::<usize>(), 7);
}

#[test]
fn every_generator_keeps_labels_and_class_means_and_repeats_with_its_seed() {
    let data = toy();
    for kind in [
        ProxyKind::Gaussian,
        ProxyKind::PcaMixture {
            dimensions: 9,
            components: 2,
        },
        ProxyKind::Interpolation { neighbours: 3 },
    ] {
        let samples = fit_and_sample(kind, &data, 3000, 1).unwrap();
        assert_eq!(samples.len(), 3000);
        assert_eq!(
            samples.labels().iter().filter(|&&l| l == 1).count(),
            1000,
            "{kind:?}"
        );
        for class in [0, 1] {
            let (real, proxy) = (class_mean(&data, class), class_mean(&samples, class));
            assert!(
                (real - proxy).abs() < 1.5,
                "{kind:?} class {class}: real mean {real}, proxy {proxy}"
            );
        }
        assert_eq!(
            fit_and_sample(kind, &data, 50, 9).unwrap().pixels(),
            fit_and_sample(kind, &data, 50, 9).unwrap().pixels()
        );
    }
    // Interpolations never leave the range their class spans.
    let inter = fit_and_sample(ProxyKind::Interpolation { neighbours: 3 }, &data, 500, 2).unwrap();
    for i in 0..inter.len() {
        let range = if inter.labels()[i] == 1 {
            160..=200
        } else {
            40..=80
        };
        assert!(
            inter.pixels()[i * 9..(i + 1) * 9]
                .iter()
                .all(|p| range.contains(p))
        );
    }
}

#[test]
fn bad_settings_are_refused_with_the_field() {
    let data = toy();
    for (kind, count, needle) in [
        (ProxyKind::Gaussian, 0, "count"),
        (
            ProxyKind::PcaMixture {
                dimensions: 0,
                components: 2,
            },
            10,
            "dimensions",
        ),
        (
            ProxyKind::PcaMixture {
                dimensions: 10,
                components: 2,
            },
            10,
            "dimensions",
        ),
        (
            ProxyKind::PcaMixture {
                dimensions: 3,
                components: 0,
            },
            10,
            "components",
        ),
        (ProxyKind::Interpolation { neighbours: 0 }, 10, "neighbours"),
    ] {
        let message = fit_and_sample(kind, &data, count, 0)
            .unwrap_err()
            .to_string();
        assert!(message.contains(needle), "{kind:?}: {message}");
    }
}

/// The oracle is the real images after the classifier's split, unchanged and in order; it
/// refuses a split that leaves none, and a fitted generator is fitted on the split alone.
#[test]
fn the_oracle_is_the_real_images_beyond_the_split() {
    let data = toy();
    let oracle = proxy_set(ProxyKind::Oracle, &data, 100, 50, 0).unwrap();
    assert_eq!(oracle.len(), 50);
    assert_eq!(oracle.labels(), &data.labels()[100..150]);
    assert_eq!(oracle.pixels(), &data.pixels()[100 * 9..150 * 9]);
    // Fewer remain than asked for: all that remain.
    assert_eq!(
        proxy_set(ProxyKind::Oracle, &data, 280, 50, 0)
            .unwrap()
            .len(),
        20
    );
    for split in [0, 300] {
        let message = proxy_set(ProxyKind::Oracle, &data, split, 10, 0)
            .unwrap_err()
            .to_string();
        assert!(message.contains("train_subset"), "{message}");
    }
    assert!(fit_and_sample(ProxyKind::Oracle, &data, 10, 0).is_err());
    // A generator sees only the split: fitted on the first 30 images (class 1 is every third).
    let fitted = proxy_set(ProxyKind::Gaussian, &data, 30, 300, 0).unwrap();
    assert_eq!(fitted.labels().iter().filter(|&&l| l == 1).count(), 100);
}

#[test]
fn proxy_command_writes_a_labelled_npz() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.npz");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_proxyrobust"))
        .args([
            "proxy",
            "interpolation",
            "--count",
            "40",
            "--train-subset",
            "200",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let set = proxyrobust::data::read_image_npz(&out, 10).unwrap();
    assert_eq!((set.len(), set.shape()), (40, [28, 28, 1]));
    // The oracle: the 40 real digits after the first 200 of the embedded split.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_proxyrobust"))
        .args(["proxy", "oracle", "--count", "40", "--train-subset", "200"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (train, _) = proxyrobust::data::mnist10k().unwrap();
    let oracle = proxyrobust::data::read_image_npz(&out, 10).unwrap();
    assert_eq!(oracle.labels(), &train.labels()[200..240]);
    // Without a split there is nothing the classifier does not see: one line, exit 2.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_proxyrobust"))
        .args([
            "proxy",
            "oracle",
            "--count",
            "40",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("train_subset"));
}

#[cfg(feature = "torch")]
#[test]
fn two_classifiers_discard_only_unconfident_disagreements() {
    use tch::nn;
    use tch::{Kind, Tensor};
    // Image i carries its case in pixel 0; the classifiers read it.
    let x = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 3.0]).view([4, 1, 1, 1]);
    let logits = |table: [[f32; 2]; 4]| {
        move |x: &Tensor, _: bool| {
            let rows: Vec<f32> = Vec::<f32>::try_from(x.flatten(0, -1))
                .unwrap()
                .iter()
                .flat_map(|&v| table[v as usize])
                .collect();
            Tensor::from_slice(&rows).view([-1, 2])
                + x.flatten(1, -1)
                    .sum_dim_intlist(&[1i64][..], true, Kind::Float)
                    * 0.0
        }
    };
    // Cases: agree (both class 0); disagree, A confident; disagree, B confident; disagree, neither.
    let a = nn::func_t(logits([[3.0, 0.0], [5.0, 0.0], [0.2, 0.0], [0.2, 0.0]]));
    let b = nn::func_t(logits([[1.0, 0.0], [0.0, 0.3], [0.0, 5.0], [0.0, 0.3]]));
    let labels = proxyrobust::pseudo_label::pseudo_labels(&[&a, &b], &x, 0.9, 3).unwrap();
    assert_eq!(labels, [Some(0), Some(0), Some(1), None]);
    let single = proxyrobust::pseudo_label::pseudo_labels(&[&b], &x, 0.9, 4).unwrap();
    assert_eq!(single, [Some(0), Some(1), Some(1), Some(1)]);
}
