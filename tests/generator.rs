//! Generative proxies (feature `torch`): sampling is deterministic for a seed (DDIM with η = 0,
//! the GAN) and independent of the batch size; a tiny diffusion model trained for 2,500 steps
//! (about 30 s) on two well-separated clusters samples each class from its own cluster (nine in
//! ten at least) by DDIM and by DDPM; the GAN's losses on hand-made logits; spectral
//! normalisation on a weight with known singular values; resume continues a
//! run; bad settings get one line.
#![cfg(feature = "torch")]

mod common;

use std::path::Path;

use proxyrobust::config::Validate;
use proxyrobust::data::{ImageDataset, read_image_npz, write_image_npz};
use proxyrobust::proxy::generator::{
    GanLoss, GeneratorConfig, GeneratorModel, SampleSettings, Sampler, discriminator_loss,
    generator_loss, sample, train,
};
use proxyrobust::train::Start;

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

const DDPM: &str = "kind = \"ddpm\"\nlr = 2e-3\nwidth = 8\ntimesteps = 100\nema_decay = 0.9\n";
const GAN: &str = "kind = \"gan\"\nwidth = 8\nlatent = 8\n";

/// A generator config on the two-cluster set (28×28 would be slow; the GAN needs sides that are
/// multiples of 4, the U-Net of 4 as well). One libtorch thread: the thread count is global to
/// the process, and a test that changed it under another would change that one's round-off.
fn config_of(dir: &Path, steps: usize, model: &str) -> GeneratorConfig {
    let (train, test) = two_clusters(dir);
    let text = format!(
        "name = \"toy\"\nsteps = {steps}\nbatch_size = 32\ncheckpoint_every_steps = 100\ndevice = \"cpu\"\nthreads = 1\ndataset = {{ npz = {{ train = \"{}\", test = \"{}\", classes = 2 }} }}\n[model]\n{model}",
        train.display(),
        test.display()
    );
    let path = dir.join("toy.toml");
    std::fs::write(&path, text).unwrap();
    proxyrobust::config::load(&path).unwrap()
}

fn config(dir: &Path, steps: usize) -> GeneratorConfig {
    config_of(dir, steps, DDPM)
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
fn sampling_is_deterministic_and_independent_of_the_batch_size() {
    let _generator = common::torch_generator();
    for model in [DDPM, GAN] {
        deterministic_and_batch_independent(model);
    }
}

fn deterministic_and_batch_independent(model: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_of(dir.path(), 2, model);
    let run = dir.path().join("run");
    train(&config, &run, false, Start::Fresh).unwrap();
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
    let _generator = common::torch_generator();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 2500);
    let run = dir.path().join("run");
    let trained = train(&config, &run, false, Start::Fresh).unwrap();
    assert!(trained.final_loss < 0.05, "loss {}", trained.final_loss);
    for sampler in [Sampler::Ddim, Sampler::Ddpm] {
        let out = dir.path().join("samples.npz");
        let mut request = settings(&out, 40, 40);
        request.sampler = sampler;
        sample(&config, &run.join("weights.safetensors"), &request, false).unwrap();
        each_class_in_its_cluster(&read_image_npz(&out, 2).unwrap(), sampler);
    }
}

/// Each class's samples lie in that class's cluster (nearer its brightness than the other's),
/// nine in ten at least: a tiny model sampled in 10 DDIM steps puts the odd sample between the
/// clusters, and which one moves with round-off. A model that ignored the class would put
/// three in four of class 1's samples in the dark cluster.
fn each_class_in_its_cluster(samples: &ImageDataset, sampler: Sampler) {
    // One in four of the training images is of class 1, so 10 of the 40 samples.
    assert_eq!(samples.labels().iter().filter(|&&l| l == 1).count(), 10);
    let mut placed = [[0usize; 2]; 2];
    let mut means = Vec::new();
    for i in 0..samples.len() {
        let mean = samples.pixels()[i * 64..(i + 1) * 64]
            .iter()
            .map(|&p| p as f64)
            .sum::<f64>()
            / 64.0;
        let class = samples.labels()[i] as usize;
        let own = [40.0, 215.0][class];
        let other = [215.0, 40.0][class];
        placed[class][usize::from((mean - own).abs() < (mean - other).abs())] += 1;
        means.push(format!("{class}:{mean:.0}"));
    }
    for (class, [astray, home]) in placed.into_iter().enumerate() {
        assert!(
            home * 10 >= (home + astray) * 9,
            "{sampler:?}: {home} of {} samples of class {class} in its cluster (class:mean {})",
            home + astray,
            means.join(" ")
        );
    }
}

#[test]
fn resume_continues_and_bad_settings_are_refused() {
    let _generator = common::torch_generator();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), 100);
    let run = dir.path().join("run");
    train(&config, &run, false, Start::Fresh).unwrap();
    config.steps = 200;
    let resumed = train(&config, &run, false, Start::Resume).unwrap();
    assert_eq!(resumed.steps, 200);
    let rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
    let mut bad = config.clone();
    let GeneratorModel::Ddpm(m) = &mut bad.model else {
        unreachable!("a ddpm config")
    };
    m.timesteps = 10;
    let message = bad.validate().unwrap_err().to_string();
    assert!(message.contains("model.timesteps"), "{message}");
    bad = config.clone();
    let GeneratorModel::Ddpm(m) = &mut bad.model else {
        unreachable!("a ddpm config")
    };
    m.unconditional_probability = 1.5;
    let message = bad.validate().unwrap_err().to_string();
    assert!(
        message.contains("model.unconditional_probability"),
        "{message}"
    );
    // A model kind that does not exist, in a file: one line naming the file and the kind.
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "name = \"x\"\nsteps = 1\n[model]\nkind = \"vae\"\n").unwrap();
    let message = proxyrobust::config::load::<GeneratorConfig>(&path)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("bad.toml") && message.contains("vae"),
        "{message}"
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

/// Hinge and non-saturating losses on hand-made logits, from their definitions; the
/// mode-seeking term on hand-made images and latents.
#[test]
fn gan_losses_on_hand_made_logits() {
    // mean|a − b| = (1 + 2)/2 = 1.5 over mean|za − zb| = 1: 1/(1.5 + 1e-5).
    let ms = proxyrobust::proxy::generator::mode_seeking_loss(
        &tch::Tensor::from_slice(&[1.0f32, 2.0]),
        &tch::Tensor::from_slice(&[0.0f32, 0.0]),
        &tch::Tensor::from_slice(&[1.0f32, -1.0]),
        &tch::Tensor::from_slice(&[0.0f32, 0.0]),
    )
    .double_value(&[]);
    assert!((ms - 1.0 / (1.5 + 1e-5)).abs() < 1e-6, "{ms}");
    let real = tch::Tensor::from_slice(&[2.0f32, 0.5, -1.0]);
    let fake = tch::Tensor::from_slice(&[-2.0f32, 0.0, 1.5]);
    let value = |t: tch::Tensor| t.double_value(&[]);
    // Hinge D: mean(max(0, 1 − r)) = (0 + 0.5 + 2)/3; mean(max(0, 1 + f)) = (0 + 1 + 2.5)/3.
    let d = value(discriminator_loss(GanLoss::Hinge, &real, &fake));
    assert!((d - (2.5 / 3.0 + 3.5 / 3.0)).abs() < 1e-6, "{d}");
    // Hinge G: −mean(f) = −(−0.5)/3.
    assert!((value(generator_loss(GanLoss::Hinge, &fake)) + (-0.5 / 3.0)).abs() < 1e-6);
    let softplus = |x: f64| (1.0 + x.exp()).ln();
    let d = value(discriminator_loss(GanLoss::NonSaturating, &real, &fake));
    let expected = [2.0, 0.5, -1.0]
        .iter()
        .map(|r: &f64| softplus(-r))
        .sum::<f64>()
        / 3.0
        + [-2.0, 0.0, 1.5]
            .iter()
            .map(|f: &f64| softplus(*f))
            .sum::<f64>()
            / 3.0;
    assert!((d - expected).abs() < 1e-6, "{d} vs {expected}");
    let g = value(generator_loss(GanLoss::NonSaturating, &fake));
    let expected = [-2.0, 0.0, 1.5]
        .iter()
        .map(|f: &f64| softplus(-f))
        .sum::<f64>()
        / 3.0;
    assert!((g - expected).abs() < 1e-6, "{g} vs {expected}");
}

/// Spectral normalisation on a weight with hand-made singular values: W (4 × 3 × 1 × 1, a 1×1
/// convolution's layout) has orthogonal rows of norms 3, 2, 0.5 and 0, its columns then rotated by
/// θ = 0.3 (which keeps the singular values), so σ(W) = 3. Power iteration from a random u
/// reaches σ within 1e-4 after 30 passes, and the normalised weight is W / 3 entry by entry.
#[test]
fn spectral_norm_divides_by_the_largest_singular_value() {
    let _generator = common::torch_generator();
    use proxyrobust::proxy::generator::spectral_norm::PowerIteration;
    tch::manual_seed(7);
    let (c, s) = (0.3f64.cos(), 0.3f64.sin());
    // Rows (0, 3, 0), (2, 0, 0), (0, 0, 0.5), (0, 0, 0) times the rotation of columns 0 and 1.
    let rows = [
        [0.0, 3.0, 0.0],
        [2.0, 0.0, 0.0],
        [0.0, 0.0, 0.5],
        [0.0, 0.0, 0.0],
    ];
    let rotated: Vec<f32> = rows
        .iter()
        .flat_map(|r| [r[0] * c - r[1] * s, r[0] * s + r[1] * c, r[2]])
        .map(|v| v as f32)
        .collect();
    let weight = tch::Tensor::from_slice(&rotated).view([4, 3, 1, 1]);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let iteration = PowerIteration::new(vs.root(), 4);
    let mut normalised = iteration.normalize(&weight);
    for _ in 0..29 {
        normalised = iteration.normalize(&weight);
    }
    let sigma = (&weight / &normalised)
        .nan_to_num(0.0, None, None)
        .max()
        .double_value(&[]);
    assert!((sigma - 3.0).abs() < 1e-4, "σ {sigma}");
    let error = (&normalised - &weight / 3.0).abs().max().double_value(&[]);
    assert!(error < 1e-4, "{error}");
    // The u lives in the variable store (checkpoints carry it) and takes no gradient.
    let u = &vs.variables()["u"];
    assert!(!u.requires_grad());
    assert!((u.norm().double_value(&[]) - 1.0).abs() < 1e-5);
}

/// A GAN trains with its resume and writes samples of the right shape and labels, plain and
/// with the minibatch-standard-deviation map and the mode-seeking term.
#[test]
fn a_gan_trains_resumes_and_samples() {
    let _generator = common::torch_generator();
    for model in [
        GAN.to_string(),
        format!("{GAN}minibatch_std = true\nmode_seeking = 1.0\n"),
    ] {
        gan_trains_resumes_and_samples(&model);
    }
}

fn gan_trains_resumes_and_samples(model: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_of(dir.path(), 100, model);
    let run = dir.path().join("run");
    train(&config, &run, false, Start::Fresh).unwrap();
    config.steps = 200;
    assert_eq!(
        train(&config, &run, false, Start::Resume).unwrap().steps,
        200
    );
    let out = dir.path().join("gan.npz");
    sample(
        &config,
        &run.join("weights.safetensors"),
        &settings(&out, 12, 5),
        false,
    )
    .unwrap();
    let samples = read_image_npz(&out, 2).unwrap();
    assert_eq!((samples.len(), samples.shape()), (12, [8, 8, 1]));
    assert_eq!(samples.labels().iter().filter(|&&l| l == 1).count(), 3);
}

/// The mode-seeking term reaches the generator's update: from the same seed (so the same latent
/// draws, the second latent batch included), a weight of 1 moves the generator's weights away
/// from where a weight of 1e-12 leaves them, while 1e-12 and 2e-12 end within round-off of each
/// other (the difference comes from the term's size, not from the extra draws). Each training
/// runs as its own `proxyrobust generator train` process: libtorch's random generator is global
/// to a process, and the tests running beside this one draw from it.
#[test]
fn the_mode_seeking_term_changes_the_generator_step() {
    let weights = |lambda: f64| {
        let dir = tempfile::tempdir().unwrap();
        config_of(dir.path(), 3, &format!("{GAN}mode_seeking = {lambda:e}\n"));
        let run = dir.path().join("run");
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_proxyrobust"))
            .args(["generator", "train", "--quiet", "--out"])
            .arg(&run)
            .arg(dir.path().join("toy.toml"))
            .status()
            .unwrap();
        assert!(status.success());
        tch::Tensor::read_safetensors(run.join("weights.safetensors")).unwrap()
    };
    let distance = |a: &[(String, tch::Tensor)], b: &[(String, tch::Tensor)]| {
        a.iter()
            .zip(b)
            .map(|((na, ta), (nb, tb))| {
                assert_eq!(na, nb);
                (ta - tb).abs().max().double_value(&[])
            })
            .fold(0.0, f64::max)
    };
    let sorted = |lambda: f64| {
        let mut w = weights(lambda);
        w.sort_by(|a, b| a.0.cmp(&b.0));
        w
    };
    let (tiny, twice_tiny, one) = (sorted(1e-12), sorted(2e-12), sorted(1.0));
    let (effect, noise) = (distance(&tiny, &one), distance(&tiny, &twice_tiny));
    assert!(
        effect > 1e-5,
        "weight 1 moved the generator by only {effect}"
    );
    assert!(noise < effect * 1e-3, "{noise} against {effect}");
}

/// `quality` on two proxy sets of real digits: copies of the classifier's own training images
/// sit at distance 0 from the real split (memorisation reads as 0), the oracle's unseen digits
/// at the distance real test digits are; the grid has one row of 28-pixel images per class.
#[test]
fn quality_reads_memorisation_and_real_data_as_such() {
    let _generator = common::torch_generator();
    use proxyrobust::proxy::{ProxyKind, proxy_set};
    use proxyrobust::train::TrainConfig;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "name = \"q\"\nmodel = \"cnn2\"\nepochs = 8\ntrain_subset = 300\ndevice = \"cpu\"\n[lr]\nbase = 0.05\n",
    )
    .unwrap();
    let config = TrainConfig::load(&path).unwrap();
    let run = dir.path().join("run");
    proxyrobust::train::run(&config, &run, false, proxyrobust::train::Start::Fresh).unwrap();
    let weights = Some(run.join("weights.safetensors"));
    let (train, _) = proxyrobust::data::mnist10k().unwrap();
    let copies = dir.path().join("copies.npz");
    write_image_npz(&copies, &train.take(200)).unwrap();
    let oracle = dir.path().join("oracle.npz");
    write_image_npz(
        &oracle,
        &proxy_set(ProxyKind::Oracle, &train, 300, 200, 0).unwrap(),
    )
    .unwrap();
    let out = dir.path().join("q");
    let memorised =
        proxyrobust::proxy::quality::run(&copies, &config, weights.clone(), &out, 200, 200, None)
            .unwrap();
    assert_eq!(memorised.nearest_real_distance, 0.0);
    assert!(memorised.test_nearest_real_distance > 3.0, "{memorised}");
    let fresh =
        proxyrobust::proxy::quality::run(&oracle, &config, weights.clone(), &out, 200, 200, None)
            .unwrap();
    let ratio = fresh.nearest_real_distance / fresh.test_nearest_real_distance;
    assert!((0.85..1.15).contains(&ratio), "{fresh}");
    assert!(
        (fresh.classifier_accuracy - fresh.classifier_test_accuracy).abs() < 0.15,
        "{fresh}"
    );
    // Against the first 100 digits only, half of the 200 copies are in the split (distance 0)
    // and half are fresh digits: about half the distance of real test images.
    let half = proxyrobust::proxy::quality::run(
        &copies,
        &config,
        weights.clone(),
        &out,
        200,
        200,
        Some(100),
    )
    .unwrap();
    let ratio = half.nearest_real_distance / half.test_nearest_real_distance;
    assert!((0.3..0.7).contains(&ratio), "{half}");
    // Classifier-feature FID (CNN-2's 32·7·7 = 1,568 features): the real split itself sits at
    // 0, unseen real digits where real test digits are, a Gaussian proxy (which matches the
    // pixel means and covariances, so only the features tell it apart) beyond both. With 200
    // points in 1,568 dimensions the estimation bias is most of each value (the floor).
    let same = proxyrobust::proxy::quality::run(
        &copies,
        &config,
        weights.clone(),
        &out,
        200,
        200,
        Some(200),
    )
    .unwrap();
    assert_eq!(same.feature_dimension, 1568);
    assert!(same.fid.abs() < 1e-6 * same.test_fid, "{same}");
    let ratio = fresh.fid / fresh.test_fid;
    assert!((0.7..1.4).contains(&ratio), "{fresh}");
    let gaussian = dir.path().join("gaussian.npz");
    write_image_npz(
        &gaussian,
        &proxy_set(ProxyKind::Gaussian, &train, 300, 200, 0).unwrap(),
    )
    .unwrap();
    let far = proxyrobust::proxy::quality::run(&gaussian, &config, weights, &out, 200, 200, None)
        .unwrap();
    assert!(
        far.fid > 1.25 * far.test_fid && far.fid > 1.25 * fresh.fid,
        "{far} / {fresh}"
    );
    // Unseen real digits score as real test digits do under the classifier's Inception score.
    let ratio = fresh.inception_score / fresh.test_inception_score;
    assert!(
        (0.8..1.25).contains(&ratio) && fresh.test_inception_score > 2.0,
        "{fresh}"
    );
    let grid = image::open(out.join("grid.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (280, 280));
}

/// The Inception score's limiting cases and a hand-computed value: one constant prediction
/// scores 1, confident predictions spread evenly over four classes score 4, and rows (½, ½) and
/// (1, 0) score exp(mean KL to the marginal (¾, ¼)) = 1.2408064788027995 (Python:
/// `math.exp((0.5*log(0.5/0.75) + 0.5*log(0.5/0.25) + log(1/0.75)) / 2)`).
#[test]
fn inception_score_limits_and_a_hand_computed_value() {
    use proxyrobust::proxy::quality::inception_score;
    use tch::Tensor;
    let rows = |v: &[f64], k: i64| Tensor::from_slice(v).view([-1, k]);
    let constant = inception_score(&rows(&[0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0], 3));
    assert!((constant - 1.0).abs() < 1e-12, "{constant}");
    let eye = Tensor::eye(4, (tch::Kind::Double, tch::Device::Cpu)).repeat([3, 1]);
    assert!((inception_score(&eye) - 4.0).abs() < 1e-12);
    let value = inception_score(&rows(&[0.5, 0.5, 1.0, 0.0], 2));
    assert!((value - 1.2408064788027995).abs() < 1e-12, "{value}");
}

/// The shipped generator configs and the generative PORT experiment parse and validate.
#[test]
fn shipped_configs_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for (name, kind) in [("mnist_ddpm.toml", "ddpm"), ("mnist_gan.toml", "gan")] {
        let config: GeneratorConfig = proxyrobust::config::load(&root.join(name)).unwrap();
        assert_eq!(config.model.name(), kind);
    }
    let experiment =
        proxyrobust::experiment::PortExperiment::load(&root.join("mnist_port_generative.toml"))
            .unwrap();
    assert_eq!(experiment.proxy_sets.len(), 2);
}
