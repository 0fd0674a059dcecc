//! Readers of the raw dataset formats the paper uses (Appendix B, D): CIFAR-10/100 binary
//! batches, MNIST IDX, and the seed repository's synthetic `.bin` (N × 32 × 32 × 3 uint8, HWC)
//! with `.npy` labels, memory-mapped so a 10M-image file is never read whole. A truncated or
//! malformed file is one error naming it and what was expected.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use ndarray::Array1;
use ndarray_npy::ReadNpyExt;

use super::ImageDataset;
use crate::error::{Error, Result};

const CIFAR_PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR binary layout: CIFAR-10 records are `label, 3072 pixels`; CIFAR-100 records are
/// `coarse label, fine label, 3072 pixels` (the fine label is used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cifar {
    Ten,
    Hundred,
}

impl Cifar {
    fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred => 2,
        }
    }

    fn classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred => 100,
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))
}

/// Reads CIFAR binary batch files (e.g. `data_batch_1.bin` … or `train.bin`) into one dataset;
/// the planar CHW records become HWC.
pub fn read_cifar(files: &[PathBuf], variant: Cifar) -> Result<ImageDataset> {
    let record = variant.label_bytes() + CIFAR_PIXELS;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for path in files {
        let bytes = read_file(path)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(Error::file(
                path,
                format!(
                    "{} bytes is not a whole number of {record}-byte CIFAR records (truncated or not a CIFAR binary file)",
                    bytes.len()
                ),
            ));
        }
        for r in bytes.chunks_exact(record) {
            labels.push(r[variant.label_bytes() - 1] as i64);
            let planes = &r[variant.label_bytes()..];
            for i in 0..32 * 32 {
                pixels.extend([planes[i], planes[1024 + i], planes[2048 + i]]);
            }
        }
    }
    ImageDataset::new(pixels, labels, [32, 32, 3], variant.classes())
        .map_err(|e| e.in_file(&files[0]))
}

fn big_endian(bytes: &[u8], at: usize) -> usize {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
}

/// Reads an MNIST IDX pair: images (magic 0x00000803, N × H × W uint8) and labels (magic
/// 0x00000801, N uint8).
pub fn read_idx(images: &Path, labels: &Path) -> Result<ImageDataset> {
    let (img, lab) = (read_file(images)?, read_file(labels)?);
    if img.len() < 16 || big_endian(&img, 0) != 0x803 {
        return Err(Error::file(
            images,
            "not an IDX image file (expected magic 0x00000803 and a 16-byte header)",
        ));
    }
    if lab.len() < 8 || big_endian(&lab, 0) != 0x801 {
        return Err(Error::file(
            labels,
            "not an IDX label file (expected magic 0x00000801 and an 8-byte header)",
        ));
    }
    let (n, h, w) = (
        big_endian(&img, 4),
        big_endian(&img, 8),
        big_endian(&img, 12),
    );
    // u128: three 32-bit sizes multiply without overflow.
    let declared = 16 + n as u128 * h as u128 * w as u128;
    if img.len() as u128 != declared {
        return Err(Error::file(
            images,
            format!(
                "header says {n} images of {h}×{w}, so {declared} bytes, but the file has {}",
                img.len()
            ),
        ));
    }
    let m = big_endian(&lab, 4);
    if m != n || lab.len() != 8 + m {
        return Err(Error::file(
            labels,
            format!(
                "expected {n} labels ({} bytes) to match {}, found a header of {m} and {} bytes",
                8 + n,
                images.display(),
                lab.len()
            ),
        ));
    }
    let labels_vec = lab[8..].iter().map(|&v| v as i64).collect();
    ImageDataset::new(img[16..].to_vec(), labels_vec, [h, w, 1], 10).map_err(|e| e.in_file(labels))
}

/// One image of a seed-repository `.bin`: 32 × 32 × 3 uint8, HWC.
const BIN_SHAPE: [usize; 3] = [32, 32, 3];

/// Memory-maps a `.bin` of [`BIN_SHAPE`] images and counts them.
fn map_bin(bin: &Path) -> Result<(Mmap, usize)> {
    let file = File::open(bin).map_err(|e| Error::file(bin, format!("cannot open: {e}")))?;
    // SAFETY: the file is opened read-only and the map is only read; a file truncated by
    // another process while mapped would fault, as with any mmap reader.
    let map = unsafe { Mmap::map(&file) }
        .map_err(|e| Error::file(bin, format!("cannot memory-map: {e}")))?;
    let per_image: usize = BIN_SHAPE.iter().product();
    if map.is_empty() || map.len() % per_image != 0 {
        return Err(Error::file(
            bin,
            format!(
                "{} bytes is not a whole number of 32×32×3 uint8 images ({per_image} bytes each)",
                map.len()
            ),
        ));
    }
    let n = map.len() / per_image;
    Ok((map, n))
}

/// The first `limit` images of a seed-repository `.bin` (all of them for `None`), without
/// labels: pixels (N·32·32·3, HWC), N and the image shape, as [`super::read_unlabeled_npz`]
/// returns them. Only those images are read from the memory map.
pub fn read_bin_images(bin: &Path, limit: Option<usize>) -> Result<(Vec<u8>, usize, [usize; 3])> {
    let (map, n) = map_bin(bin)?;
    let n = limit.map_or(n, |l| l.min(n));
    let bytes = n * BIN_SHAPE.iter().product::<usize>();
    Ok((map[..bytes].to_vec(), n, BIN_SHAPE))
}

/// The seed repository's synthetic images: a raw `.bin` of N × 32 × 32 × 3 uint8 (HWC),
/// memory-mapped, with labels from a `.npy` (uint8 or int64, N). Images are copied out only in
/// the batches asked for.
pub struct MappedImages {
    map: Mmap,
    labels: Vec<i64>,
    num_classes: usize,
    path: PathBuf,
}

impl MappedImages {
    /// Maps `bin` and reads `labels`; checks that the sizes agree and labels are below `num_classes`.
    pub fn open(bin: &Path, labels: &Path, num_classes: usize) -> Result<Self> {
        let (map, n) = map_bin(bin)?;
        let labels = read_npy_labels(labels)?;
        if labels.len() != n {
            return Err(Error::file(
                bin,
                format!("{n} images but {} labels in the label file", labels.len()),
            ));
        }
        if let Some(y) = labels.iter().find(|&&y| y < 0 || y as usize >= num_classes) {
            return Err(Error::file(
                bin,
                format!("labels in 0..{num_classes} expected, the label file has {y}"),
            ));
        }
        Ok(MappedImages {
            map,
            labels,
            num_classes,
            path: bin.to_owned(),
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images at `indices` (and their labels) as an in-memory dataset.
    pub fn gather(&self, indices: &[usize]) -> Result<ImageDataset> {
        let per_image: usize = BIN_SHAPE.iter().product();
        let mut pixels = Vec::with_capacity(indices.len() * per_image);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= self.len() {
                return Err(Error::file(
                    &self.path,
                    format!("image {i} asked for, the file has {}", self.len()),
                ));
            }
            pixels.extend_from_slice(&self.map[i * per_image..(i + 1) * per_image]);
            labels.push(self.labels[i]);
        }
        ImageDataset::new(pixels, labels, BIN_SHAPE, self.num_classes)
    }
}

fn read_npy_labels(path: &Path) -> Result<Vec<i64>> {
    crate::npz::check_npy_file(path)?;
    let open = || File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")));
    if let Ok(l) = Array1::<u8>::read_npy(open()?) {
        return Ok(l.iter().map(|&v| v as i64).collect());
    }
    Array1::<i64>::read_npy(open()?)
        .map(|l| l.to_vec())
        .map_err(|e| {
            Error::file(
                path,
                format!("expected a .npy label vector of uint8 or int64, shape (N,) ({e})"),
            )
        })
}
