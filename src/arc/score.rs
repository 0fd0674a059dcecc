//! Synthetic scores (paper Section 2.3, Figure 5, Table 11): how proxy-like each proxy sample
//! looks to a robust discriminator, its worst case over the ε-ball.
//!
//! score(x) = min over ‖δ‖ ≤ ε of D(x + δ)_proxy, the discriminator's probability that the
//! sample is a proxy one, minimised by PGD with restarts (the attack that drives the sample
//! towards the real class); the clean point belongs to the ball, so the score is also never above
//! the clean probability. A low score marks a sample that is hard to tell from real data even
//! at radius ε: the paper's adaptive sampling keeps the lowest-score samples.
//!
//! The discriminator is trained at ε as by `arc` (the first seed's balanced split, its held-out
//! Racc_ε reported), or read from the weights of an earlier `score` run. Every sample of the
//! proxy set is scored. Outputs: `scores.csv` (`index,label,clean_score,score`; `label` empty for
//! vector sets), `summary.json`, `discriminator.safetensors`, `manifest.json`; for labelled
//! image sets, `groups/group-G.npz` (G = 0 lowest), the score-sorted set cut into equal groups
//! (Figure 5, numpy.array_split sizes), and `selected.npz` with `random.npz`: the `select`
//! lowest-score samples and a seeded random subset of the same size (Table 11).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use super::{ArcConfig, load_pair, pgd, robust_discrimination, split, train_discriminator};
use crate::config::Validate;
use crate::data::{ImageDataset, read_image_npz, write_image_npz};
use crate::error::{Error, Result};
use crate::report;

/// The `score` command's settings beside the ARC config.
#[derive(Clone, Debug, clap::Args)]
pub struct ScoreFlags {
    /// The radius of the ball (the config's units: pixels in [0, 1] for images).
    #[arg(long, allow_negative_numbers = true)]
    pub epsilon: f64,
    /// A discriminator saved by an earlier `score` run (otherwise one is trained at ε).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Cut the score-sorted proxy set into this many equal groups (0: none).
    #[arg(long, default_value_t = 0)]
    pub groups: usize,
    /// Write the this many lowest-score samples, and as many random ones (0: none).
    #[arg(long, default_value_t = 0)]
    pub select: usize,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

/// One row of `scores.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreRow {
    pub index: usize,
    pub label: Option<i64>,
    pub clean_score: f64,
    pub score: f64,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreSummary {
    pub epsilon: f64,
    pub samples: usize,
    pub mean_clean_score: f64,
    pub mean_score: f64,
    /// Racc_ε of a discriminator trained here, on the first seed's held-out split.
    pub held_out_robust_accuracy: Option<f64>,
    pub groups: usize,
    pub selected: usize,
    pub seconds: f64,
}

impl std::fmt::Display for ScoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} samples scored at ε = {}: mean score {:.4} (clean {:.4})",
            self.samples, self.epsilon, self.mean_score, self.mean_clean_score
        )?;
        if let Some(racc) = self.held_out_robust_accuracy {
            write!(f, "; the discriminator's held-out Racc_ε {racc:.4}")?;
        }
        Ok(())
    }
}

impl ScoreFlags {
    fn validate(&self) -> Result<()> {
        crate::config::non_negative_finite("--epsilon", self.epsilon)?;
        crate::config::at_most("--groups", self.groups, 1000)
    }
}

/// The `score` command: scores every sample of `proxy` against `real` (see the module docs).
pub fn run(
    real: &Path,
    proxy: &Path,
    config: &ArcConfig,
    flags: &ScoreFlags,
    show: bool,
) -> Result<ScoreSummary> {
    config.validate()?;
    flags.validate()?;
    let device = config.device.start(config.threads)?;
    let mut manifest = report::Manifest::new("score", config, report::device_name(device))?
        .seed(&config.seeds)?
        .with("real", real)?
        .with("proxy", proxy)?
        .with("epsilon", flags.epsilon)?;
    let (real_set, proxy_set, scale) = load_pair(real, proxy, flags.epsilon, None)?;
    let labelled = labelled_images(proxy, flags)?;
    let clock = std::time::Instant::now();
    let epsilon = flags.epsilon * scale;
    let vs = tch::nn::VarStore::new(device);
    let net = crate::model::build(&vs, config.model, real_set.shape, 2)?;
    let held_out_robust_accuracy = match &flags.weights {
        Some(path) => {
            let tensors = crate::train::classifier::read_safetensors(path)?;
            let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
            crate::train::classifier::load_parameters(path, &tensors, &variables, "")?;
            None
        }
        None => {
            let seed = config.seeds[0];
            tch::manual_seed(seed as i64);
            let splits = split(&real_set, &proxy_set, config, seed)?;
            train_discriminator(
                &net,
                &vs,
                &splits,
                config,
                epsilon,
                config.epochs,
                device,
                seed,
            );
            Some(robust_discrimination(
                &net, &splits, config, epsilon, device,
            ))
        }
    };
    // The attack's random starts from one seed, whether the discriminator was trained here.
    tch::manual_seed(config.seeds[0] as i64);
    let (clean, worst) = scores(&net, &proxy_set.x, config, epsilon, device, show);
    let rows: Vec<ScoreRow> = (0..clean.len())
        .map(|i| ScoreRow {
            index: i,
            label: labelled.as_ref().map(|d| d.labels()[i]),
            clean_score: clean[i],
            score: worst[i],
        })
        .collect();
    report::create_run_dir(&flags.out)?;
    let mut written = vec![
        "scores.csv".to_string(),
        "summary.json".into(),
        "discriminator.safetensors".into(),
    ];
    if let Some(data) = &labelled {
        written.extend(write_subsets(data, &worst, flags, config.seeds[0])?);
    }
    report::write_csv(&flags.out.join("scores.csv"), &rows)?;
    report::atomic_write_path(&flags.out.join("discriminator.safetensors"), |tmp| {
        crate::model::layout::save_weights(&vs, tmp).map_err(|e| e.to_string())
    })?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let summary = ScoreSummary {
        epsilon: flags.epsilon,
        samples: rows.len(),
        mean_clean_score: mean(&clean),
        mean_score: mean(&worst),
        held_out_robust_accuracy,
        groups: flags.groups,
        selected: flags.select,
        seconds: clock.elapsed().as_secs_f64(),
    };
    report::write_json(&flags.out.join("summary.json"), &summary)?;
    let names: Vec<&str> = written.iter().map(String::as_str).collect();
    manifest.write(&flags.out, &names)?;
    Ok(summary)
}

/// The proxy set with its labels when groups or a selection are asked for (labelled images
/// only); labels are carried over as they are.
fn labelled_images(proxy: &Path, flags: &ScoreFlags) -> Result<Option<ImageDataset>> {
    if flags.groups == 0 && flags.select == 0 {
        return Ok(None);
    }
    let data = read_image_npz(proxy, usize::MAX).map_err(|e| {
        Error::file(
            proxy,
            format!("--groups and --select need labelled images (`image`, `label`): {e}"),
        )
    })?;
    if flags.select > data.len() {
        return Err(Error::invalid(
            "--select",
            format!(
                "at most the {} proxy samples, got {}",
                data.len(),
                flags.select
            ),
        ));
    }
    if flags.groups > data.len() {
        return Err(Error::invalid(
            "--groups",
            format!(
                "at most the {} proxy samples, got {}",
                data.len(),
                flags.groups
            ),
        ));
    }
    Ok(Some(data))
}

/// Clean and worst-case proxy probabilities of every sample of `x`, in batches of 500.
fn scores(
    net: &impl ModuleT,
    x: &Tensor,
    config: &ArcConfig,
    epsilon: f64,
    device: tch::Device,
    show: bool,
) -> (Vec<f64>, Vec<f64>) {
    let attack = pgd(
        config.norm,
        epsilon,
        config.eval_steps,
        config.eval_restarts,
    );
    let n = x.size()[0];
    let bar = report::progress((n as usize).div_ceil(500), "score", show);
    let proxy_probability = |input: &Tensor| {
        tch::no_grad(|| {
            net.forward_t(input, false)
                .softmax(-1, Kind::Float)
                .select(1, 1)
        })
    };
    let (mut clean, mut worst) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(500) {
        let xb = x.narrow(0, start, 500.min(n - start)).to_device(device);
        let proxy = Tensor::ones([xb.size()[0]], (Kind::Int64, device));
        let p_clean = proxy_probability(&xb);
        let p_worst = match &attack {
            Some(a) => proxy_probability(&a.perturb(net, &xb, &proxy, false)).minimum(&p_clean),
            None => p_clean.shallow_clone(),
        };
        clean.extend(
            Vec::<f64>::try_from(p_clean.to_kind(Kind::Double).to_device(tch::Device::Cpu))
                .expect("a vector"),
        );
        worst.extend(
            Vec::<f64>::try_from(p_worst.to_kind(Kind::Double).to_device(tch::Device::Cpu))
                .expect("a vector"),
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    (clean, worst)
}

/// The sample indices in ascending score order (ties by index).
pub fn ascending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    order
}

/// numpy.array_split of `items` into `groups` parts: the first `len % groups` parts one longer.
pub fn array_split<T: Clone>(items: &[T], groups: usize) -> Vec<Vec<T>> {
    let (size, extra) = (items.len() / groups, items.len() % groups);
    let mut parts = Vec::with_capacity(groups);
    let mut start = 0;
    for g in 0..groups {
        let len = size + usize::from(g < extra);
        parts.push(items[start..start + len].to_vec());
        start += len;
    }
    parts
}

/// Writes the groups and the selections; returns the files written, relative to the folder.
fn write_subsets(
    data: &ImageDataset,
    scores: &[f64],
    flags: &ScoreFlags,
    seed: u64,
) -> Result<Vec<String>> {
    let order = ascending(scores);
    let mut written = Vec::new();
    if flags.groups > 0 {
        std::fs::create_dir_all(flags.out.join("groups"))
            .map_err(|e| Error::file(&flags.out, format!("cannot create groups/: {e}")))?;
        for (g, indices) in array_split(&order, flags.groups).iter().enumerate() {
            let name = format!("groups/group-{g}.npz");
            write_image_npz(&flags.out.join(&name), &data.select(indices))?;
            written.push(name);
        }
    }
    if flags.select > 0 {
        write_image_npz(
            &flags.out.join("selected.npz"),
            &data.select(&order[..flags.select]),
        )?;
        let mut random: Vec<usize> = (0..data.len()).collect();
        random.shuffle(&mut StdRng::seed_from_u64(seed));
        write_image_npz(
            &flags.out.join("random.npz"),
            &data.select(&random[..flags.select]),
        )?;
        written.extend(["selected.npz".to_string(), "random.npz".into()]);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_split_matches_numpy() {
        // numpy.array_split(range(10), 3) → [0..4), [4..7), [7..10).
        let parts = array_split(&(0..10).collect::<Vec<_>>(), 3);
        assert_eq!(parts, vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
        let parts = array_split(&[1, 2], 4);
        assert_eq!(parts, vec![vec![1], vec![2], vec![], vec![]]);
    }

    #[test]
    fn ascending_orders_by_score_then_index() {
        assert_eq!(ascending(&[0.5, 0.1, 0.5, 0.0]), vec![3, 1, 0, 2]);
    }
}
