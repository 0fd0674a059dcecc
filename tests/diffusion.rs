//! The diffusion proxy (feature `torch`): sampling is deterministic for a seed with DDIM η = 0
//! and independent of the batch size; a tiny model trained for 2,500 steps (about 30 s) on two
//! well-separated clusters samples each class from its own cluster by DDIM and by DDPM; resume
//! continues a run; bad settings get one line.
#![cfg(feature = "torch")]

use std::path::Path;

use proxyrobust::config::Validate;
use proxyrobust::data::{ImageDataset, read_image_npz, write_image_npz};
use proxyrobust::proxy::diffusion::{DiffusionConfig, SampleSettings, Sampler, sample, train};

/// Two classes of 8×8 grey images: class 0 dark (near 40), class 1 bright (near 215), one in
/// four of class 1.
fn two_clusters(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..256u32 {
        let class = (i % 4 == 0) as i64;
        let base: i32 = if class == 1 { 215 } else { 40 };
        pixels.extend((0..64u32).map(|p| (base + ((i * 7 + p * 13) % 21) as i32 - 10) as u8));
        labels.push(class);
    }
    let set = ImageDataset::new(pixels, labels, [8, 8, 1], 2).unwrap();
    let (train, test) = (dir.join("train.npz"), dir.join("test.npz"));
    write_image_npz(&train, &set).unwrap();
    write_image_npz(&test, &set.take(16)).unwrap();
    (train, test)
}

fn config(dir: &Path, steps: usize) -> DiffusionConfig {
    let (train, test) = two_clusters(dir);
    let text = format!(
        "name = \"toy\"\nsteps = {steps}\nbatch_size = 32\nlr = 2e-3\nwidth = 8\ntimesteps = 100\nema_decay = 0.9\ncheckpoint_every_steps = 100\ndevice = \"cpu\"\ndataset = {{ npz = {{ train = \"{}\", test = \"{}\", classes = 2 }} }}\n",
        train.display(),
        test.display()
    );
    let path = dir.join("toy.toml");
    std::fs::write(&path, text).unwrap();
    proxyrobust::config::load(&path).unwrap()
}

fn settings(out: &Path, count: usize, batch: usize) -> SampleSettings {
    SampleSettings {
        count,
        out: out.to_owned(),
        sampler: Sampler::Ddim,
        sampling_steps: 10,
        eta: 0.0,
        guidance: 1.0,
        batch,
        seed: 7,
    }
}

#[test]
fn ddim_is_deterministic_and_independent_of_the_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 2);
    let run = dir.path().join("run");
    train(&config, &run, false, false).unwrap();
    let weights = run.join("weights.safetensors");
    let files: Vec<_> = [(5, "a"), (5, "b"), (2, "c")]
        .into_iter()
        .map(|(batch, name)| {
            let out = dir.path().join(format!("{name}.npz"));
            sample(&config, &weights, &settings(&out, 5, batch), false).unwrap();
            read_image_npz(&out, 2).unwrap()
        })
        .collect();
    assert_eq!(files[0].len(), 5);
    assert_eq!(
        files[0].pixels(),
        files[1].pixels(),
        "same seed, same batch"
    );
    assert_eq!(files[0].labels(), files[2].labels());
    // Batches of 2 and of 5: the same noise per sample; the network's arithmetic may differ in
    // the last bits between batch sizes, so at most one grey level apart.
    let worst = files[0]
        .pixels()
        .iter()
        .zip(files[2].pixels())
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(worst <= 1, "pixels differ by {worst} between batch sizes");
}

#[test]
fn a_trained_toy_model_samples_each_class_from_its_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 2500);
    let run = dir.path().join("run");
    let trained = train(&config, &run, false, false).unwrap();
    assert!(trained.final_loss < 0.05, "loss {}", trained.final_loss);
    for sampler in [Sampler::Ddim, Sampler::Ddpm] {
        let out = dir.path().join("samples.npz");
        let mut request = settings(&out, 40, 40);
        request.sampler = sampler;
        sample(&config, &run.join("weights.safetensors"), &request, false).unwrap();
        each_class_in_its_cluster(&read_image_npz(&out, 2).unwrap(), sampler);
    }
}

fn each_class_in_its_cluster(samples: &ImageDataset, sampler: Sampler) {
    // One in four of the training images is of class 1, so 10 of the 40 samples.
    assert_eq!(samples.labels().iter().filter(|&&l| l == 1).count(), 10);
    for i in 0..samples.len() {
        let mean = samples.pixels()[i * 64..(i + 1) * 64]
            .iter()
            .map(|&p| p as f64)
            .sum::<f64>()
            / 64.0;
        let expected = if samples.labels()[i] == 1 {
            215.0
        } else {
            40.0
        };
        assert!(
            (mean - expected).abs() < 40.0,
            "{sampler:?} sample {i} of class {}: mean {mean}",
            samples.labels()[i]
        );
    }
}

#[test]
fn resume_continues_and_bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), 100);
    let run = dir.path().join("run");
    train(&config, &run, false, false).unwrap();
    config.steps = 200;
    let resumed = train(&config, &run, false, true).unwrap();
    assert_eq!(resumed.steps, 200);
    let rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
    let mut bad = config.clone();
    bad.timesteps = 10;
    assert!(
        bad.validate()
            .unwrap_err()
            .to_string()
            .contains("timesteps")
    );
    bad = config.clone();
    bad.unconditional_probability = 1.5;
    assert!(
        bad.validate()
            .unwrap_err()
            .to_string()
            .contains("unconditional_probability")
    );
    let out = dir.path().join("x.npz");
    let mut s = settings(&out, 4, 2);
    s.sampling_steps = 1000;
    let message = sample(&config, &run.join("weights.safetensors"), &s, false)
        .unwrap_err()
        .to_string();
    assert!(message.contains("--sampling-steps"), "{message}");
    assert!(!out.exists());
}
