//! Image classification datasets held as uint8 pixels, NHWC, with integer labels.
//!
//! Formats: the npz layout of synthetic sets (`image` uint8 (N, H, W, C), `label` integer (N,)),
//! which is also how the embedded MNIST-10k default is stored ([`mnist10k`]); CIFAR-10/100
//! binary batches, MNIST IDX and the seed repository's memory-mapped `.bin` ([`formats`]).
//! A malformed file is one error naming the file, the key and what was expected.

pub mod augment;
pub mod formats;

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array4};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpzError};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Labeled images: `pixels` holds N·H·W·C bytes in NHWC order.
#[derive(Clone, Debug)]
pub struct ImageDataset {
    pixels: Vec<u8>,
    labels: Vec<i64>,
    shape: [usize; 3],
    num_classes: usize,
}

impl ImageDataset {
    /// Validates sizes and labels in `0..num_classes`.
    pub fn new(pixels: Vec<u8>, labels: Vec<i64>, shape: [usize; 3], num_classes: usize) -> Result<Self> {
        let per_image: usize = shape.iter().product();
        if per_image == 0 || pixels.len() != labels.len() * per_image {
            return Err(Error::invalid("images", format!("{} labels × {per_image} bytes per image, got {} bytes", labels.len(), pixels.len())));
        }
        if let Some(y) = labels.iter().find(|&&y| y < 0 || y as usize >= num_classes) {
            return Err(Error::invalid("labels", format!("labels in 0..{num_classes}, got {y}")));
        }
        Ok(ImageDataset { pixels, labels, shape, num_classes })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// (H, W, C).
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Raw NHWC bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Labels.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// The first `n` images (all if fewer).
    pub fn take(&self, n: usize) -> ImageDataset {
        let n = n.min(self.len());
        let per_image: usize = self.shape.iter().product();
        ImageDataset { pixels: self.pixels[..n * per_image].to_vec(), labels: self.labels[..n].to_vec(), shape: self.shape, num_classes: self.num_classes }
    }
}

/// Which dataset a config names: `dataset = "mnist10k"`, or a table such as
/// `dataset = { cifar10 = "/data/cifar-10-batches-bin" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum DatasetSource {
    /// The embedded 8,000/2,000 MNIST split (data/README.md).
    Mnist10k,
    /// CIFAR-10 binary version: a folder with `data_batch_1.bin` … `data_batch_5.bin` and
    /// `test_batch.bin`.
    Cifar10(PathBuf),
    /// CIFAR-100 binary version: a folder with `train.bin` and `test.bin`.
    Cifar100(PathBuf),
    /// MNIST in IDX: a folder with `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
    /// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`.
    Mnist(PathBuf),
}

impl DatasetSource {
    /// The training and test splits.
    pub fn load(&self) -> Result<(ImageDataset, ImageDataset)> {
        use formats::{Cifar, read_cifar, read_idx};
        match self {
            DatasetSource::Mnist10k => mnist10k(),
            DatasetSource::Cifar10(dir) => {
                let train: Vec<PathBuf> = (1..=5).map(|i| dir.join(format!("data_batch_{i}.bin"))).collect();
                let test = [dir.join("test_batch.bin")];
                require(dir, "cifar10", train.iter().chain(&test), "the CIFAR-10 binary version (cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html), extracted")?;
                Ok((read_cifar(&train, Cifar::Ten)?, read_cifar(&test, Cifar::Ten)?))
            }
            DatasetSource::Cifar100(dir) => {
                let (train, test) = ([dir.join("train.bin")], [dir.join("test.bin")]);
                require(dir, "cifar100", train.iter().chain(&test), "the CIFAR-100 binary version (cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html), extracted")?;
                Ok((read_cifar(&train, Cifar::Hundred)?, read_cifar(&test, Cifar::Hundred)?))
            }
            DatasetSource::Mnist(dir) => {
                let f = |name: &str| dir.join(name);
                let names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
                let files: Vec<PathBuf> = names.iter().map(|n| f(n)).collect();
                require(dir, "mnist", files.iter(), "the four uncompressed MNIST IDX files")?;
                Ok((read_idx(&files[0], &files[1])?, read_idx(&files[2], &files[3])?))
            }
        }
    }
}

/// One line saying which file is missing and where to put what, for a user-supplied dataset.
fn require<'a>(dir: &Path, field: &str, files: impl Iterator<Item = &'a PathBuf>, what: &str) -> Result<()> {
    for file in files {
        if !file.is_file() {
            return Err(Error::invalid(
                format!("dataset.{field}"),
                format!("{} does not exist; put {what} in {}", file.display(), dir.display()),
            ));
        }
    }
    Ok(())
}

/// The embedded MNIST-10k split: `(train, test)`, 8,000 and 2,000 digits, 28 × 28 × 1, 10 classes.
pub fn mnist10k() -> Result<(ImageDataset, ImageDataset)> {
    let train = include_bytes!("../../data/mnist10k-train.npz");
    let test = include_bytes!("../../data/mnist10k-test.npz");
    let read = |bytes: &'static [u8], name: &str| read_image_npz_from(std::io::Cursor::new(bytes), Path::new(name), 10);
    Ok((read(train, "data/mnist10k-train.npz")?, read(test, "data/mnist10k-test.npz")?))
}

/// Reads the npz layout of synthetic sets: `image` uint8 (N, H, W, C) and `label` (N,) of
/// uint8 or int64, labels below `num_classes`.
pub fn read_image_npz(path: &Path, num_classes: usize) -> Result<ImageDataset> {
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    read_image_npz_from(file, path, num_classes)
}

fn read_image_npz_from<R: Read + Seek>(reader: R, path: &Path, num_classes: usize) -> Result<ImageDataset> {
    let mut npz = NpzReader::new(reader).map_err(|e| Error::file(path, format!("not a valid .npz archive ({e})")))?;
    let names = npz.names().map_err(|e| Error::file(path, format!("unreadable .npz archive ({e})")))?;
    for key in ["image", "label"] {
        if !names.iter().any(|n| n == key) {
            return Err(Error::file(path, format!("missing key `{key}` (expected `image` uint8 (N, H, W, C) and `label` (N,); found: {})", names.join(", "))));
        }
    }
    let images: Array4<u8> = npz.by_name("image").map_err(|e| npz_error(path, "image", "uint8 of shape (N, H, W, C)", e))?;
    let labels: Vec<i64> = match npz.by_name::<ndarray::OwnedRepr<u8>, ndarray::Ix1>("label") {
        Ok(l) => l.iter().map(|&v| v as i64).collect(),
        Err(_) => {
            let l: Array1<i64> = npz.by_name("label").map_err(|e| npz_error(path, "label", "uint8 or int64 of shape (N,)", e))?;
            l.to_vec()
        }
    };
    let (n, h, w, c) = images.dim();
    if labels.len() != n {
        return Err(Error::file(path, format!("`label` has {} entries, expected {n} (one per image)", labels.len())));
    }
    let pixels = images.as_standard_layout().iter().copied().collect();
    ImageDataset::new(pixels, labels, [h, w, c], num_classes).map_err(|e| e.in_file(path))
}

fn npz_error(path: &Path, key: &str, expected: &str, error: ReadNpzError) -> Error {
    match error {
        ReadNpzError::Npy(ReadNpyError::WrongDescriptor(d)) => Error::file(path, format!("key `{key}` has dtype {d}, expected {expected}")),
        ReadNpzError::Npy(ReadNpyError::WrongNdim(_, got)) => Error::file(path, format!("key `{key}` has {got} dimensions, expected {expected}")),
        other => Error::file(path, format!("key `{key}` is unreadable ({other}), expected {expected}")),
    }
}
