//! Image classification datasets held as uint8 pixels, NHWC, with integer labels.
//!
//! Formats: the npz layout of synthetic sets (`image` uint8 (N, H, W, C), `label` integer (N,)),
//! which is also how the embedded MNIST-10k default is stored ([`mnist10k`]); CIFAR-10/100
//! binary batches, MNIST IDX and the seed repository's memory-mapped `.bin` ([`formats`]).
//! A malformed file is one error naming the file, the key and what was expected.

pub mod augment;
pub mod folders;
pub mod formats;

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array4};
use ndarray_npy::NpzReader;
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
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<i64>,
        shape: [usize; 3],
        num_classes: usize,
    ) -> Result<Self> {
        let per_image = shape
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .unwrap_or(0);
        if per_image == 0 || Some(pixels.len()) != labels.len().checked_mul(per_image) {
            return Err(Error::invalid(
                "images",
                format!(
                    "{} labels × {per_image} bytes per image, got {} bytes",
                    labels.len(),
                    pixels.len()
                ),
            ));
        }
        if let Some(y) = labels.iter().find(|&&y| y < 0 || y as usize >= num_classes) {
            return Err(Error::invalid(
                "labels",
                format!("labels in 0..{num_classes}, got {y}"),
            ));
        }
        Ok(ImageDataset {
            pixels,
            labels,
            shape,
            num_classes,
        })
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

    /// The images of `parts` one after another; shapes and class counts must agree.
    pub fn concat(parts: Vec<ImageDataset>) -> Result<ImageDataset> {
        let mut parts = parts.into_iter();
        let mut all = parts
            .next()
            .ok_or_else(|| Error::invalid("images", "at least one part to concatenate"))?;
        for part in parts {
            if part.shape != all.shape || part.num_classes != all.num_classes {
                return Err(Error::invalid(
                    "images",
                    format!(
                        "parts of one shape and class count, got {:?}/{} and {:?}/{}",
                        all.shape, all.num_classes, part.shape, part.num_classes
                    ),
                ));
            }
            all.pixels.extend(part.pixels);
            all.labels.extend(part.labels);
        }
        Ok(all)
    }

    /// The first `n` images (all if fewer).
    pub fn take(&self, n: usize) -> ImageDataset {
        self.range(0, n)
    }

    /// Images `start..end` (clamped to the set).
    pub fn range(&self, start: usize, end: usize) -> ImageDataset {
        let end = end.min(self.len());
        let start = start.min(end);
        let per_image: usize = self.shape.iter().product();
        ImageDataset {
            pixels: self.pixels[start * per_image..end * per_image].to_vec(),
            labels: self.labels[start..end].to_vec(),
            shape: self.shape,
            num_classes: self.num_classes,
        }
    }

    /// The images at `indices`, in that order (each index below [`Self::len`]).
    pub fn select(&self, indices: &[usize]) -> ImageDataset {
        let per_image: usize = self.shape.iter().product();
        ImageDataset {
            pixels: indices
                .iter()
                .flat_map(|&i| &self.pixels[i * per_image..(i + 1) * per_image])
                .copied()
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
            num_classes: self.num_classes,
        }
    }

    /// The first `n` images, or the whole set when `n` is 0 (a config's `train_subset`).
    pub fn subset(self, n: usize) -> ImageDataset {
        if n == 0 { self } else { self.take(n) }
    }
}

/// Which dataset a config names: `dataset = "mnist10k"`, or a table such as
/// `dataset = { cifar10 = "/data/cifar-10-batches-bin" }` or
/// `dataset = { image_folder = { dir = "/data/pets", size = 64 } }`.
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
    /// CelebA at 64 × 64, the smile × male task ([`folders::read_celeba`]): a folder with
    /// `img_align_celeba/`, `list_attr_celeba.txt` and `list_eval_partition.txt`; test = split 2.
    Celeba(PathBuf),
    /// AFHQ at 224 × 224: a folder with `train/{cat,dog,wild}` and `val/{cat,dog,wild}`.
    Afhq(PathBuf),
    /// Downsampled ImageNet 64 × 64 (Chrabaszcz et al., npz version): a folder with
    /// `train_data_batch_1.npz` … `train_data_batch_10.npz` and `val_data.npz`.
    Imagenet64(PathBuf),
    /// Image npz files (`image` uint8 (N, H, W, C), `label` (N,)) for each split.
    Npz {
        train: PathBuf,
        test: PathBuf,
        classes: usize,
    },
    /// Any `train/<class>/` and `test/<class>/` folders of PNG/JPEG images, resized to `size`.
    #[serde(rename = "image_folder")]
    ImageFolder { dir: PathBuf, size: u32 },
}

/// What a dataset is: classes, image shape and the per-channel normalisation constants
/// (mean, standard deviation in [0, 1] pixel units) commonly used with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatasetInfo {
    pub name: &'static str,
    pub classes: usize,
    /// (H, W, C).
    pub shape: [usize; 3],
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

impl DatasetSource {
    /// Classes, shape and normalisation of this dataset, known without reading it (an
    /// image folder's classes are its sub-folders).
    pub fn info(&self) -> Result<DatasetInfo> {
        let info = |name, classes, shape, mean: &[f64], std: &[f64]| DatasetInfo {
            name,
            classes,
            shape,
            mean: mean.to_vec(),
            std: std.to_vec(),
        };
        Ok(match self {
            DatasetSource::Mnist10k => info("mnist10k", 10, [28, 28, 1], &[0.1307], &[0.3081]),
            DatasetSource::Mnist(_) => info("mnist", 10, [28, 28, 1], &[0.1307], &[0.3081]),
            DatasetSource::Cifar10(_) => info(
                "cifar10",
                10,
                [32, 32, 3],
                &[0.4914, 0.4822, 0.4465],
                &[0.2470, 0.2435, 0.2616],
            ),
            DatasetSource::Cifar100(_) => info(
                "cifar100",
                100,
                [32, 32, 3],
                &[0.5071, 0.4865, 0.4409],
                &[0.2673, 0.2564, 0.2762],
            ),
            DatasetSource::Celeba(_) => info(
                "celeba",
                4,
                [64, 64, 3],
                &[0.5063, 0.4258, 0.3832],
                &[0.3106, 0.2904, 0.2897],
            ),
            DatasetSource::Afhq(_) => info("afhq", 3, [224, 224, 3], &IMAGENET_MEAN, &IMAGENET_STD),
            DatasetSource::Imagenet64(_) => info(
                "imagenet64",
                1000,
                [64, 64, 3],
                &IMAGENET_MEAN,
                &IMAGENET_STD,
            ),
            DatasetSource::Npz { train, classes, .. } => {
                // No published constants: the training file's own channel statistics.
                let set = read_image_npz(train, *classes)?;
                let c = set.shape()[2];
                let moments = |k: usize| {
                    let values: Vec<f64> = set
                        .pixels()
                        .iter()
                        .skip(k)
                        .step_by(c)
                        .map(|&p| p as f64 / 255.0)
                        .collect();
                    let mean = values.iter().sum::<f64>() / values.len() as f64;
                    (
                        mean,
                        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                            / values.len() as f64)
                            .sqrt()
                            .max(1e-6),
                    )
                };
                let (mean, std) = (0..c).map(moments).unzip();
                DatasetInfo {
                    name: "npz",
                    classes: *classes,
                    shape: set.shape(),
                    mean,
                    std,
                }
            }
            DatasetSource::ImageFolder { dir, size } => {
                let classes = folders::class_folders(&dir.join("train"))?.len();
                let s = *size as usize;
                info(
                    "image_folder",
                    classes,
                    [s, s, 3],
                    &IMAGENET_MEAN,
                    &IMAGENET_STD,
                )
            }
        })
    }

    /// The training and test splits.
    pub fn load(&self) -> Result<(ImageDataset, ImageDataset)> {
        use folders::{
            CelebaSplit, class_folders, read_celeba, read_image_folder, read_imagenet_npz,
        };
        use formats::{Cifar, read_cifar, read_idx};
        match self {
            DatasetSource::Mnist10k => mnist10k(),
            DatasetSource::Cifar10(dir) => {
                let train: Vec<PathBuf> = (1..=5)
                    .map(|i| dir.join(format!("data_batch_{i}.bin")))
                    .collect();
                let test = [dir.join("test_batch.bin")];
                require(
                    dir,
                    "cifar10",
                    train.iter().chain(&test),
                    "the CIFAR-10 binary version (cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html), extracted",
                )?;
                Ok((
                    read_cifar(&train, Cifar::Ten)?,
                    read_cifar(&test, Cifar::Ten)?,
                ))
            }
            DatasetSource::Cifar100(dir) => {
                let (train, test) = ([dir.join("train.bin")], [dir.join("test.bin")]);
                require(
                    dir,
                    "cifar100",
                    train.iter().chain(&test),
                    "the CIFAR-100 binary version (cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html), extracted",
                )?;
                Ok((
                    read_cifar(&train, Cifar::Hundred)?,
                    read_cifar(&test, Cifar::Hundred)?,
                ))
            }
            DatasetSource::Mnist(dir) => {
                let names = [
                    "train-images-idx3-ubyte",
                    "train-labels-idx1-ubyte",
                    "t10k-images-idx3-ubyte",
                    "t10k-labels-idx1-ubyte",
                ];
                let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
                require(
                    dir,
                    "mnist",
                    files.iter(),
                    "the four uncompressed MNIST IDX files",
                )?;
                Ok((
                    read_idx(&files[0], &files[1])?,
                    read_idx(&files[2], &files[3])?,
                ))
            }
            DatasetSource::Celeba(dir) => {
                let files = [
                    dir.join("list_attr_celeba.txt"),
                    dir.join("list_eval_partition.txt"),
                    dir.join("img_align_celeba"),
                ];
                require(
                    dir,
                    "celeba",
                    files.iter(),
                    "CelebA's img_align_celeba/ folder, list_attr_celeba.txt and list_eval_partition.txt (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html)",
                )?;
                Ok((
                    read_celeba(dir, CelebaSplit::Train, 64)?,
                    read_celeba(dir, CelebaSplit::Test, 64)?,
                ))
            }
            DatasetSource::Afhq(dir) => {
                let classes: Vec<String> = ["cat", "dog", "wild"].map(String::from).to_vec();
                let folders: Vec<PathBuf> = ["train", "val"]
                    .iter()
                    .flat_map(|s| classes.iter().map(move |c| dir.join(s).join(c)))
                    .collect();
                require(
                    dir,
                    "afhq",
                    folders.iter(),
                    "AFHQ's train/ and val/ folders, each with cat/, dog/ and wild/ (https://github.com/clovaai/stargan-v2)",
                )?;
                Ok((
                    read_image_folder(&dir.join("train"), &classes, 224)?,
                    read_image_folder(&dir.join("val"), &classes, 224)?,
                ))
            }
            DatasetSource::Imagenet64(dir) => {
                let train: Vec<PathBuf> = (1..=10)
                    .map(|i| dir.join(format!("train_data_batch_{i}.npz")))
                    .collect();
                let test = [dir.join("val_data.npz")];
                require(
                    dir,
                    "imagenet64",
                    train.iter().chain(&test),
                    "the npz version of downsampled ImageNet 64×64 (Imagenet64_train_npz and Imagenet64_val_npz from https://image-net.org/download-images), extracted",
                )?;
                let parts = train
                    .iter()
                    .map(|f| read_imagenet_npz(f, 64))
                    .collect::<Result<Vec<_>>>()?;
                Ok((
                    ImageDataset::concat(parts)?,
                    read_imagenet_npz(&test[0], 64)?,
                ))
            }
            DatasetSource::Npz {
                train,
                test,
                classes,
            } => {
                require(
                    Path::new("."),
                    "npz",
                    [train, test].into_iter(),
                    "image npz files (`image` uint8 (N, H, W, C), `label` (N,))",
                )?;
                Ok((
                    read_image_npz(train, *classes)?,
                    read_image_npz(test, *classes)?,
                ))
            }
            DatasetSource::ImageFolder { dir, size } => {
                if *size == 0 {
                    return Err(Error::invalid(
                        "dataset.image_folder.size",
                        "a positive image side in pixels",
                    ));
                }
                let (train, test) = (dir.join("train"), dir.join("test"));
                require(
                    dir,
                    "image_folder",
                    [&train, &test].into_iter(),
                    "train/ and test/ folders with one sub-folder of images per class",
                )?;
                let classes = class_folders(&train)?;
                Ok((
                    read_image_folder(&train, &classes, *size)?,
                    read_image_folder(&test, &classes, *size)?,
                ))
            }
        }
    }
}

/// One line saying which file is missing and where to put what, for a user-supplied dataset.
fn require<'a>(
    dir: &Path,
    field: &str,
    files: impl Iterator<Item = &'a PathBuf>,
    what: &str,
) -> Result<()> {
    for file in files {
        if !file.exists() {
            return Err(Error::invalid(
                format!("dataset.{field}"),
                format!(
                    "{} does not exist; put {what} in {}",
                    file.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The embedded MNIST-10k split: `(train, test)`, 8,000 and 2,000 digits, 28 × 28 × 1, 10 classes.
pub fn mnist10k() -> Result<(ImageDataset, ImageDataset)> {
    let train = include_bytes!("../../data/mnist10k-train.npz");
    let test = include_bytes!("../../data/mnist10k-test.npz");
    let read = |bytes: &'static [u8], name: &str| {
        read_image_npz_from(std::io::Cursor::new(bytes), Path::new(name), 10)
    };
    Ok((
        read(train, "data/mnist10k-train.npz")?,
        read(test, "data/mnist10k-test.npz")?,
    ))
}

/// Writes `data` in the npz layout of synthetic sets (`image` uint8 (N, H, W, C), `label` int64
/// (N,)), atomically.
pub fn write_image_npz(path: &Path, data: &ImageDataset) -> Result<()> {
    let [h, w, c] = data.shape();
    let images = Array4::from_shape_vec((data.len(), h, w, c), data.pixels().to_vec())
        .map_err(|e| Error::invalid("images", e.to_string()))?;
    let labels = Array1::from(data.labels().to_vec());
    crate::report::atomic_write_path(path, |tmp| {
        let file = std::fs::File::create(tmp).map_err(|e| e.to_string())?;
        let mut npz = ndarray_npy::NpzWriter::new(file);
        npz.add_array("image", &images).map_err(|e| e.to_string())?;
        npz.add_array("label", &labels).map_err(|e| e.to_string())?;
        npz.finish().map(|_| ()).map_err(|e| e.to_string())
    })
}

/// Writes the npz layout of synthetic sets (`image` uint8 (N, H, W, C), `label` int64 (N,))
/// batch by batch, so that a set far larger than memory can be written: the archive's `image`
/// member is streamed as batches arrive, `label` follows at [`ImageNpzWriter::finish`]. The
/// archive is written to a temporary sibling and renamed into place when complete.
pub struct ImageNpzWriter {
    /// `None` once finished; dropping an unfinished writer removes its temporary file.
    zip: Option<zip::ZipWriter<std::fs::File>>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    bytes_per_image: usize,
    count: usize,
    written: usize,
}

/// The header of a version-1.0 `.npy` file for a C-order array of `descr` and `shape`, padded
/// so that the data starts at a multiple of 64 bytes.
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header
}

impl ImageNpzWriter {
    /// Starts an archive of `count` images of `shape` (H, W, C) at `path`.
    pub fn create(path: &Path, count: usize, shape: [usize; 3]) -> Result<Self> {
        let io = |e: &dyn std::fmt::Display| Error::file(path, format!("cannot write: {e}"));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
        }
        let tmp = crate::report::temporary_sibling(path);
        let file = std::fs::File::create(&tmp).map_err(|e| io(&e))?;
        let mut zip = zip::ZipWriter::new(file);
        let bytes_per_image = shape.iter().product::<usize>();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(count * bytes_per_image >= u32::MAX as usize / 2);
        zip.start_file("image.npy", options).map_err(|e| io(&e))?;
        let [h, w, c] = shape;
        zip.write_all(&npy_header("|u1", &[count, h, w, c]))
            .map_err(|e| io(&e))?;
        Ok(ImageNpzWriter {
            zip: Some(zip),
            tmp,
            path: path.to_owned(),
            bytes_per_image,
            count,
            written: 0,
        })
    }

    /// Appends whole images (`pixels` holds a multiple of H·W·C bytes).
    pub fn append(&mut self, pixels: &[u8]) -> Result<()> {
        let images = pixels.len() / self.bytes_per_image;
        if !pixels.len().is_multiple_of(self.bytes_per_image) || self.written + images > self.count
        {
            return Err(Error::invalid(
                "images",
                format!(
                    "whole images, {} in all; got {} bytes after {} images",
                    self.count,
                    pixels.len(),
                    self.written
                ),
            ));
        }
        let zip = self.zip.as_mut().expect("an unfinished writer");
        zip.write_all(pixels)
            .map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))?;
        self.written += images;
        Ok(())
    }

    /// Writes the labels (one per image) and renames the finished archive onto its path.
    pub fn finish(mut self, labels: &[i64]) -> Result<()> {
        let path = self.path.clone();
        let io = |e: &dyn std::fmt::Display| Error::file(&path, format!("cannot write: {e}"));
        if self.written != self.count || labels.len() != self.count {
            return Err(Error::invalid(
                "images",
                format!(
                    "{} images and labels, got {} images and {} labels",
                    self.count,
                    self.written,
                    labels.len()
                ),
            ));
        }
        let mut zip = self.zip.take().expect("an unfinished writer");
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let outcome = (|| {
            zip.start_file("label.npy", options).map_err(|e| io(&e))?;
            zip.write_all(&npy_header("<i8", &[labels.len()]))
                .map_err(|e| io(&e))?;
            let bytes: Vec<u8> = labels.iter().flat_map(|l| l.to_le_bytes()).collect();
            zip.write_all(&bytes).map_err(|e| io(&e))?;
            zip.finish().map_err(|e| io(&e))
        })();
        let file = outcome.inspect_err(|_| {
            let _ = std::fs::remove_file(&self.tmp);
        })?;
        file.sync_all().map_err(|e| io(&e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io(&e))
    }
}

impl Drop for ImageNpzWriter {
    fn drop(&mut self) {
        if self.zip.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Reads the npz layout of synthetic sets: `image` uint8 (N, H, W, C) and `label` (N,) of
/// uint8 or int64, labels below `num_classes`.
pub fn read_image_npz(path: &Path, num_classes: usize) -> Result<ImageDataset> {
    crate::npz::check_npz_members(path, &["image", "label"])?;
    let file =
        std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    read_image_npz_from(file, path, num_classes)
}

fn read_image_npz_from<R: Read + Seek>(
    reader: R,
    path: &Path,
    num_classes: usize,
) -> Result<ImageDataset> {
    let mut npz = NpzReader::new(reader)
        .map_err(|e| Error::file(path, format!("not a valid .npz archive ({e})")))?;
    let names = npz
        .names()
        .map_err(|e| Error::file(path, format!("unreadable .npz archive ({e})")))?;
    for key in ["image", "label"] {
        if !names.iter().any(|n| n == key) {
            return Err(Error::file(
                path,
                format!(
                    "missing key `{key}` (expected `image` uint8 (N, H, W, C) and `label` (N,); found: {})",
                    names.join(", ")
                ),
            ));
        }
    }
    let (pixels, n, [h, w, c]) = npz_images(&mut npz, path)?;
    let labels: Vec<i64> = match npz.by_name::<ndarray::OwnedRepr<u8>, ndarray::Ix1>("label") {
        Ok(l) => l.iter().map(|&v| v as i64).collect(),
        Err(_) => {
            let l: Array1<i64> = npz.by_name("label").map_err(|e| {
                crate::npz::npz_key_error(path, "label", "uint8 or int64 of shape (N,)", e)
            })?;
            l.to_vec()
        }
    };
    if labels.len() != n {
        return Err(Error::file(
            path,
            format!(
                "`label` has {} entries, expected {n} (one per image)",
                labels.len()
            ),
        ));
    }
    ImageDataset::new(pixels, labels, [h, w, c], num_classes).map_err(|e| e.in_file(path))
}

/// The `image` array of an npz: NHWC bytes, N and (H, W, C).
fn npz_images<R: Read + Seek>(
    npz: &mut NpzReader<R>,
    path: &Path,
) -> Result<(Vec<u8>, usize, [usize; 3])> {
    let images: Array4<u8> = npz
        .by_name("image")
        .map_err(|e| crate::npz::npz_key_error(path, "image", "uint8 of shape (N, H, W, C)", e))?;
    let (n, h, w, c) = images.dim();
    Ok((
        images.as_standard_layout().iter().copied().collect(),
        n,
        [h, w, c],
    ))
}

/// Unlabelled images (an unconditional generator's output): the `image` array of an npz as
/// NHWC bytes, N and (H, W, C); a `label` array, if any, is ignored.
pub fn read_unlabeled_npz(path: &Path) -> Result<(Vec<u8>, usize, [usize; 3])> {
    crate::npz::check_npz_members(path, &["image"])?;
    let file =
        std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let mut npz = NpzReader::new(file)
        .map_err(|e| Error::file(path, format!("not a valid .npz archive ({e})")))?;
    npz_images(&mut npz, path)
}
