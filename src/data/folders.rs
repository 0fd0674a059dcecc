//! Datasets stored as image files and as downsampled-ImageNet npz (paper Appendix B: CelebA
//! 64 × 64 with four smile × male classes, AFHQ 224 × 224 with three classes, ImageNet 64 × 64).
//!
//! Every image is decoded (PNG or JPEG), centre-cropped to a square and resized to `size × size`
//! RGB with a triangle (bilinear) filter, the way torchvision's `CenterCrop` + `Resize` pipelines
//! prepare these sets. Decoding runs on all cores.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;

use super::ImageDataset;
use crate::error::{Error, Result};

/// Decodes `path` and returns `size × size × 3` RGB bytes (HWC).
pub fn load_image(path: &Path, size: u32) -> Result<Vec<u8>> {
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::file(path, format!("cannot open: {e}")))?
        .with_guessed_format()
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?
        .decode()
        .map_err(|e| Error::file(path, format!("not a decodable PNG or JPEG image ({e})")))?;
    let (w, h) = (img.width(), img.height());
    let side = w.min(h);
    let square = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    Ok(square
        .resize_exact(size, size, FilterType::Triangle)
        .to_rgb8()
        .into_raw())
}

/// Decodes `files` on all cores into one dataset with `labels`.
pub fn load_images(
    files: &[PathBuf],
    labels: Vec<i64>,
    size: u32,
    num_classes: usize,
) -> Result<ImageDataset> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    let decoded: Vec<Result<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut pixels = Vec::with_capacity(part.len() * (size * size * 3) as usize);
                    for f in part {
                        pixels.extend(load_image(f, size)?);
                    }
                    Ok(pixels)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a decoding thread panicked"))
            .collect()
    });
    let mut pixels = Vec::new();
    for part in decoded {
        pixels.extend(part?);
    }
    let s = size as usize;
    ImageDataset::new(pixels, labels, [s, s, 3], num_classes)
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// The class sub-folders of `dir`, sorted by name (torchvision's `ImageFolder` order).
pub fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("cannot list: {e}")))?;
    let mut classes: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .collect();
    classes.sort();
    if classes.len() < 2 {
        return Err(Error::file(
            dir,
            format!(
                "expected one sub-folder of images per class (at least 2), found {}",
                classes.len()
            ),
        ));
    }
    Ok(classes)
}

/// `dir/<class>/*.{png,jpg,jpeg}` for the given `classes` (label = position in `classes`).
pub fn read_image_folder(dir: &Path, classes: &[String], size: u32) -> Result<ImageDataset> {
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (label, class) in classes.iter().enumerate() {
        let folder = dir.join(class);
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            Error::file(
                &folder,
                format!("cannot list the images of class {class}: {e}"),
            )
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| is_image(p))
            .collect();
        if found.is_empty() {
            return Err(Error::file(
                &folder,
                "no .png, .jpg or .jpeg images in this class folder",
            ));
        }
        found.sort();
        labels.extend(std::iter::repeat_n(label as i64, found.len()));
        files.extend(found);
    }
    load_images(&files, labels, size, classes.len())
}

/// CelebA's four classes in the order the paper lists them (Appendix B): smile/male,
/// smile/not-male, not-smile/male, not-smile/not-male.
pub const CELEBA_CLASSES: [&str; 4] = [
    "smiling male",
    "smiling female",
    "not-smiling male",
    "not-smiling female",
];

/// The CelebA split of `list_eval_partition.txt`: 0 train, 1 validation, 2 test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CelebaSplit {
    Train,
    Validation,
    Test,
}

/// CelebA's four-class smile × male task: images from `dir/img_align_celeba/`, attributes
/// `Smiling` and `Male` from `dir/list_attr_celeba.txt`, the split from
/// `dir/list_eval_partition.txt`; label = 2·(not smiling) + (not male), as [`CELEBA_CLASSES`].
pub fn read_celeba(dir: &Path, split: CelebaSplit, size: u32) -> Result<ImageDataset> {
    let attr_path = dir.join("list_attr_celeba.txt");
    let part_path = dir.join("list_eval_partition.txt");
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| Error::file(p, format!("cannot read: {e}")))
    };
    let (attributes, partition) = (read(&attr_path)?, read(&part_path)?);
    let wanted = match split {
        CelebaSplit::Train => "0",
        CelebaSplit::Validation => "1",
        CelebaSplit::Test => "2",
    };
    let in_split: std::collections::HashSet<&str> = partition
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .filter(|(_, s)| s.trim() == wanted)
        .map(|(f, _)| f)
        .collect();
    let mut lines = attributes.lines();
    let malformed = |what: String| {
        Error::file(
            &attr_path,
            format!(
                "{what} (expected a count line, a line of 40 attribute names, then `FILE ±1 …` rows)"
            ),
        )
    };
    lines.next().ok_or_else(|| malformed("empty file".into()))?;
    let names: Vec<&str> = lines
        .next()
        .ok_or_else(|| malformed("no attribute-name line".into()))?
        .split_whitespace()
        .collect();
    let column = |name: &str| {
        names
            .iter()
            .position(|&n| n == name)
            .ok_or_else(|| malformed(format!("no `{name}` attribute")))
    };
    let (smiling, male) = (column("Smiling")?, column("Male")?);
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (row, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != names.len() + 1 {
            return Err(malformed(format!(
                "row {} has {} fields, expected {}",
                row + 3,
                fields.len(),
                names.len() + 1
            )));
        }
        if !in_split.contains(fields[0]) {
            continue;
        }
        let flag = |i: usize| match fields[i + 1] {
            "1" => Ok(true),
            "-1" => Ok(false),
            other => Err(malformed(format!(
                "row {} has attribute value {other:?}, expected 1 or -1",
                row + 3
            ))),
        };
        labels.push(2 * i64::from(!flag(smiling)?) + i64::from(!flag(male)?));
        files.push(dir.join("img_align_celeba").join(fields[0]));
    }
    if files.is_empty() {
        return Err(Error::file(
            &part_path,
            format!(
                "no image is in split {wanted} (expected `FILE SPLIT` rows with SPLIT 0, 1 or 2)"
            ),
        ));
    }
    load_images(&files, labels, size, 4)
}

/// One file of Chrabaszcz et al.'s downsampled ImageNet (`train_data_batch_K.npz`,
/// `val_data.npz`): `data` uint8 (N, 3·S·S) in planar CHW order and `labels` (N,) in 1..=1000.
pub fn read_imagenet_npz(path: &Path, size: usize) -> Result<ImageDataset> {
    crate::npz::check_npz_members(path, &["data", "labels"])?;
    let file =
        std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let mut npz = NpzReader::new(file)
        .map_err(|e| Error::file(path, format!("not a valid .npz archive ({e})")))?;
    let data: Array2<u8> = npz.by_name("data").map_err(|e| {
        Error::file(
            path,
            format!(
                "key `data` must be uint8 of shape (N, {}) ({e})",
                3 * size * size
            ),
        )
    })?;
    let labels: Array1<i64> = npz.by_name("labels").map_err(|e| {
        Error::file(
            path,
            format!("key `labels` must be int64 of shape (N,) ({e})"),
        )
    })?;
    let (n, width) = data.dim();
    let plane = size * size;
    if width != 3 * plane || labels.len() != n {
        return Err(Error::file(
            path,
            format!(
                "expected `data` (N, {}) and `labels` (N,), got ({n}, {width}) and ({},)",
                3 * plane,
                labels.len()
            ),
        ));
    }
    if let Some(y) = labels.iter().find(|&&y| !(1..=1000).contains(&y)) {
        return Err(Error::file(
            path,
            format!("labels in 1..=1000 expected, found {y}"),
        ));
    }
    let mut pixels = Vec::with_capacity(n * 3 * plane);
    for row in data.rows() {
        let row = row.as_slice().expect("standard layout");
        for i in 0..plane {
            pixels.extend([row[i], row[plane + i], row[2 * plane + i]]);
        }
    }
    ImageDataset::new(
        pixels,
        labels.iter().map(|y| y - 1).collect(),
        [size, size, 3],
        1000,
    )
    .map_err(|e| e.in_file(path))
}
