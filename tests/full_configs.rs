//! The full-scale configs of experiments/full/ (Tables 1 and 2): each one validates, refuses to
//! start without its data with a line saying where to put it, and trains for one step on tiny
//! fake files in the real formats placed where it expects them (feature `torch`).
#![cfg(feature = "torch")]

use std::path::Path;

use ndarray::{Array1, Array2, Array4};
use ndarray_npy::{NpzWriter, WriteNpyExt};

fn write_npz(path: &Path, arrays: impl FnOnce(&mut NpzWriter<std::fs::File>)) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = NpzWriter::new(std::fs::File::create(path).unwrap());
    arrays(&mut w);
    w.finish().unwrap();
}

/// Tiny files in every format the configs name, under `root/data/`.
fn fake_data(root: &Path) {
    let data = root.join("data");
    let cifar = |labels: &[u8], coarse: bool| -> Vec<u8> {
        labels
            .iter()
            .flat_map(|&l| {
                let head = if coarse { vec![0, l] } else { vec![l] };
                head.into_iter()
                    .chain((0..3072).map(move |i| ((i * 3 + l as usize) % 256) as u8))
            })
            .collect()
    };
    std::fs::create_dir_all(data.join("cifar10")).unwrap();
    for i in 1..=5 {
        std::fs::write(
            data.join(format!("cifar10/data_batch_{i}.bin")),
            cifar(&[0, 1, 2], false),
        )
        .unwrap();
    }
    std::fs::write(data.join("cifar10/test_batch.bin"), cifar(&[3, 4], false)).unwrap();
    std::fs::create_dir_all(data.join("cifar100")).unwrap();
    std::fs::write(data.join("cifar100/train.bin"), cifar(&[5, 50, 99], true)).unwrap();
    std::fs::write(data.join("cifar100/test.bin"), cifar(&[7, 8], true)).unwrap();
    // CelebA: four faces, three for training and one for testing.
    let celeba = data.join("celeba");
    std::fs::create_dir_all(celeba.join("img_align_celeba")).unwrap();
    let mut attributes = "4\nMale Smiling\n".to_string();
    let mut partition = String::new();
    for i in 0..4 {
        image::RgbImage::from_pixel(178, 218, image::Rgb([40 * i as u8, 90, 200]))
            .save(celeba.join(format!("img_align_celeba/{i}.jpg")))
            .unwrap();
        attributes += &format!(
            "{i}.jpg {} {}\n",
            if i % 2 == 0 { 1 } else { -1 },
            if i < 2 { 1 } else { -1 }
        );
        partition += &format!("{i}.jpg {}\n", if i == 3 { 2 } else { 0 });
    }
    std::fs::write(celeba.join("list_attr_celeba.txt"), attributes).unwrap();
    std::fs::write(celeba.join("list_eval_partition.txt"), partition).unwrap();
    // Downsampled ImageNet: two images per file.
    for name in (1..=10)
        .map(|i| format!("train_data_batch_{i}.npz"))
        .chain(["val_data.npz".to_string()])
    {
        write_npz(&data.join("imagenet64").join(name), |w| {
            w.add_array("data", &Array2::<u8>::from_elem((2, 3 * 64 * 64), 77))
                .unwrap();
            w.add_array("labels", &Array1::<i64>::from(vec![1, 1000]))
                .unwrap();
        });
    }
    // Synthetic sets: the seed repository's .bin with .npy labels, and npz.
    std::fs::create_dir_all(data.join("synthetic")).unwrap();
    for (name, classes) in [("cifar10-ddpm", 10u8), ("cifar100-ddpm", 100)] {
        std::fs::write(
            data.join(format!("synthetic/{name}.bin")),
            vec![128u8; 4 * 3072],
        )
        .unwrap();
        Array1::<u8>::from(vec![0, 1, 2, classes - 1])
            .write_npy(
                std::fs::File::create(data.join(format!("synthetic/{name}-labels.npy"))).unwrap(),
            )
            .unwrap();
    }
    for (name, classes) in [("celeba", 4i64), ("imagenet64", 1000)] {
        write_npz(&data.join(format!("synthetic/{name}.npz")), |w| {
            w.add_array("image", &Array4::<u8>::from_elem((3, 64, 64, 3), 100))
                .unwrap();
            w.add_array("label", &Array1::<i64>::from(vec![0, 1, classes - 1]))
                .unwrap();
        });
    }
}

#[test]
fn full_scale_configs_validate_refuse_missing_data_and_run_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let configs =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/full")).unwrap();
    let mut names: Vec<_> = configs
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 7);
    let binary = env!("CARGO_BIN_EXE_proxyrobust");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for config in &names {
        // Validates as it is.
        proxyrobust::train::TrainConfig::load(config)
            .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        // Without data: one line naming the missing path and what to put there.
        let o = std::process::Command::new(binary)
            .current_dir(&empty)
            .args(["train", config.to_str().unwrap(), "--out", "run", "--quiet"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", config.display());
        assert!(
            err.lines().count() == 1 && err.contains("does not exist; put"),
            "{}: {err}",
            config.display()
        );
    }
    fake_data(dir.path());
    for config in &names {
        // One step: the fake sets are smaller than a batch; WideResNets trained on CPU with a
        // small synthetic batch to keep the test short.
        let text = std::fs::read_to_string(config)
            .unwrap()
            .replace("epochs = 200", "epochs = 1")
            .replace("epochs = 50", "epochs = 1")
            .replace("batch_size = 128\ngamma", "batch_size = 2\ngamma")
            .replace("device = \"auto\"", "device = \"cpu\"")
            .replace("steps = 10", "steps = 1");
        let local = dir.path().join(config.file_name().unwrap());
        std::fs::write(&local, text).unwrap();
        let o = std::process::Command::new(binary)
            .current_dir(dir.path())
            // One folder for every config: each run replaces the previous one.
            .args([
                "train",
                local.to_str().unwrap(),
                "--out",
                "run",
                "--quiet",
                "--overwrite",
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            config.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let metrics = std::fs::read_to_string(dir.path().join("run/metrics.csv")).unwrap();
        assert_eq!(
            metrics.lines().count(),
            2,
            "{}: {metrics}",
            config.display()
        );
    }
}
