//! The classifier of a training config: its network on [0, 1] inputs, weights read from
//! safetensors (PyTorch's names), and the splits as tensors.

use std::collections::BTreeMap;
use std::path::Path;

use tch::nn::{self, VarStore};
use tch::{Device, Kind, Tensor};

use super::TrainConfig;
use crate::config::Validate;
use crate::data::ImageDataset;
use crate::error::{Error, Result};
use crate::model;

/// A trained classifier with the test split of its config, ready for evaluation.
pub struct LoadedClassifier {
    /// Holds the weights; `net` reads them from here.
    pub vs: VarStore,
    pub net: nn::SequentialT,
    /// The config's test split (shape, classes, pixels).
    pub test: ImageDataset,
    /// The test images as NCHW floats in [0, 1] on the config's device.
    pub x: Tensor,
    /// The test labels (int64) on the same device.
    pub y: Tensor,
}

/// The model of `config` on [0, 1] inputs: with `normalize`, inputs are first standardised by
/// the dataset's per-channel mean and deviation (constants, not parameters, so weights files
/// keep the model's own names and attacks still act in pixel space). Its forward passes compute
/// in `config.precision` ([`super::precision`]).
pub fn classifier(
    config: &TrainConfig,
    vs: &VarStore,
    input: [i64; 3],
    classes: i64,
) -> Result<nn::SequentialT> {
    let parts = classifier_parts(config, vs, input, classes)?;
    Ok(super::precision::with_precision(
        parts.features.add(parts.head),
        config.precision,
        vs.device(),
    ))
}

/// [`classifier`] split before its last layer ([`model::Parts`]); the normalisation, if any,
/// is part of `features`.
pub fn classifier_parts(
    config: &TrainConfig,
    vs: &VarStore,
    input: [i64; 3],
    classes: i64,
) -> Result<model::Parts> {
    let parts = model::build_parts(vs, config.model, input, classes)?;
    if !config.normalize {
        return Ok(parts);
    }
    let info = config.dataset.info()?;
    let channels = info.mean.len() as i64;
    let as_tensor = |v: &[f64]| {
        Tensor::from_slice(v)
            .to_kind(Kind::Float)
            .view([1, channels, 1, 1])
            .to_device(vs.device())
    };
    let (mean, std) = (as_tensor(&info.mean), as_tensor(&info.std));
    Ok(model::Parts {
        features: nn::seq_t()
            .add_fn(move |x| (x - &mean) / &std)
            .add(parts.features),
        head: parts.head,
    })
}

/// The (C, H, W) input shape of a dataset's images.
pub fn input_shape(data: &ImageDataset) -> [i64; 3] {
    let [h, w, c] = data.shape().map(|v| v as i64);
    [c, h, w]
}

/// Images as a float tensor in [0, 1], NCHW, and labels as int64.
pub fn tensors(data: &ImageDataset, device: Device) -> (Tensor, Tensor) {
    (
        images_tensor(data.pixels(), data.len(), data.shape(), device),
        Tensor::from_slice(data.labels()).to_device(device),
    )
}

/// `n` uint8 images of `shape` (H, W, C), row-major, as NCHW floats in [0, 1] on `device`.
pub fn images_tensor(pixels: &[u8], n: usize, shape: [usize; 3], device: Device) -> Tensor {
    let [h, w, c] = shape.map(|v| v as i64);
    let x = Tensor::from_slice(pixels)
        .view([n as i64, h, w, c])
        .permute([0, 3, 1, 2])
        .contiguous()
        .to_kind(Kind::Float)
        / 255.0;
    x.to_device(device)
}

/// Reads a safetensors file (anything else, pickles included, is refused) into a name → tensor map.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    Ok(Tensor::read_safetensors(path)
        .map_err(|e| {
            Error::file(
                path,
                format!(
                    "not a readable safetensors file ({e}); only safetensors weights are accepted"
                ),
            )
        })?
        .into_iter()
        .collect())
}

/// Copies `tensors[prefix + name]` into every parameter, checking presence and shape.
pub(crate) fn load_parameters(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    parameters: &BTreeMap<String, Tensor>,
    prefix: &str,
) -> Result<()> {
    tch::no_grad(|| {
        for (name, p) in parameters {
            let key = format!("{prefix}{name}");
            let saved = tensors.get(&key).ok_or_else(|| {
                Error::file(path, format!("missing `{key}`: weights of another model?"))
            })?;
            if saved.size() != p.size() {
                return Err(Error::file(
                    path,
                    format!(
                        "`{key}` has shape {:?}, the model expects {:?}",
                        saved.size(),
                        p.size()
                    ),
                ));
            }
            p.shallow_clone().copy_(saved);
        }
        Ok(())
    })
}

/// The model of `config` with the safetensors `weights` loaded (PyTorch names), and the
/// dataset's test split as tensors on the config's device.
pub fn load_classifier(config: &TrainConfig, weights: &Path) -> Result<LoadedClassifier> {
    config.validate()?;
    let device = config.device.resolve()?;
    let (train, test) = config.dataset.load()?;
    let vs = VarStore::new(device);
    let net = classifier(config, &vs, input_shape(&train), train.num_classes() as i64)?;
    let parameters: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    load_parameters(weights, &read_safetensors(weights)?, &parameters, "")?;
    let (x, y) = tensors(&test, device);
    Ok(LoadedClassifier {
        vs,
        net,
        test,
        x,
        y,
    })
}

/// The penultimate-layer feature map of the classifier of `config` with the safetensors
/// `weights` loaded (the whole model's parameters, the head's included, must be present).
pub fn load_features(
    config: &TrainConfig,
    weights: &Path,
    input: [i64; 3],
    classes: i64,
) -> Result<(VarStore, nn::SequentialT)> {
    let vs = VarStore::new(config.device.resolve()?);
    let parts = classifier_parts(config, &vs, input, classes)?;
    let parameters: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    load_parameters(weights, &read_safetensors(weights)?, &parameters, "")?;
    Ok((vs, parts.features))
}

/// The weights file of a config's default run folder: `runs/<name>/weights.safetensors`.
pub fn default_weights(config: &TrainConfig) -> std::path::PathBuf {
    Path::new("runs")
        .join(&config.name)
        .join("weights.safetensors")
}
