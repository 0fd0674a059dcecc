//! NumPy files: Gaussians and class-conditional Gaussian sets as `.npz` archives, point clouds
//! and weights as `.npy` arrays.
//!
//! - A Gaussian: float64 `mean` (d) and `cov` (d, d).
//! - Class conditionals: float64 `means` (K, d), `covs` (K, d, d) and optionally `probs` (K);
//!   without `probs` the classes are equally likely.
//!
//! Every problem (missing key, wrong dtype or shape, invalid covariance) is one [`Error`] that
//! names the file and the key.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use faer::Mat;
use ndarray::{ArrayD, Ix1, Ix2};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpyExt, ReadNpzError};

use crate::error::{Error, Result};
use crate::report::atomic_write_with;
use crate::theory::gaussian::{ClassConditionalGaussians, Gaussian};

/// An opened archive that remembers its path for error messages.
struct Archive {
    path: std::path::PathBuf,
    reader: NpzReader<File>,
    names: Vec<String>,
}

impl Archive {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
        let mut reader = NpzReader::new(file)
            .map_err(|e| Error::file(path, format!("not a valid .npz archive ({e})")))?;
        let names = reader
            .names()
            .map_err(|e| Error::file(path, format!("unreadable .npz archive ({e})")))?;
        Ok(Archive {
            path: path.to_owned(),
            reader,
            names,
        })
    }

    fn has(&self, key: &str) -> bool {
        self.names.iter().any(|n| n == key)
    }

    /// Reads `key` as a float64 array whose shape passes `expected_shape`'s check.
    fn array(&mut self, key: &str, ndim: usize, shape_text: &str) -> Result<ArrayD<f64>> {
        if !self.has(key) {
            return Err(Error::file(
                &self.path,
                format!(
                    "missing key `{key}` (expected float64 array of shape {shape_text}; found keys: {})",
                    self.names.join(", ")
                ),
            ));
        }
        let array: ArrayD<f64> = self.reader.by_name(key).map_err(|e| {
            npz_key_error(
                &self.path,
                key,
                &format!("float64 ('<f8') of shape {shape_text}"),
                e,
            )
        })?;
        if array.ndim() != ndim {
            return Err(Error::file(
                &self.path,
                format!(
                    "key `{key}` has shape {:?}, expected {shape_text}",
                    array.shape()
                ),
            ));
        }
        Ok(array)
    }
}

/// One line for a failed `.npy` read of `what` (a key or the whole file) that was expected to
/// be `expected` (dtype and shape in words).
pub(crate) fn npy_error(path: &Path, what: &str, expected: &str, error: ReadNpyError) -> Error {
    match error {
        ReadNpyError::WrongDescriptor(desc) => Error::file(
            path,
            format!("{what} has dtype {desc}, expected {expected}"),
        ),
        ReadNpyError::WrongNdim(_, got) => Error::file(
            path,
            format!("{what} has {got} dimensions, expected {expected}"),
        ),
        ReadNpyError::MissingData => Error::file(
            path,
            format!("{what} is truncated: fewer values than its header's shape"),
        ),
        other => Error::file(
            path,
            format!("{what} is unreadable ({other}), expected {expected}"),
        ),
    }
}

/// [`npy_error`] for the array `key` of an npz archive.
pub(crate) fn npz_key_error(path: &Path, key: &str, expected: &str, error: ReadNpzError) -> Error {
    match error {
        ReadNpzError::Npy(npy) => npy_error(path, &format!("key `{key}`"), expected, npy),
        other => Error::file(
            path,
            format!("key `{key}` is unreadable ({other}), expected {expected}"),
        ),
    }
}

/// Reads a float64 `.npy` array of `ndim` dimensions.
fn read_npy(path: &Path, ndim: usize, shape_text: &str) -> Result<ArrayD<f64>> {
    let file = File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let array = ArrayD::<f64>::read_npy(std::io::BufReader::new(file)).map_err(|e| {
        npy_error(
            path,
            "the array",
            &format!("float64 ('<f8') of shape {shape_text}"),
            e,
        )
    })?;
    if array.ndim() != ndim {
        return Err(Error::file(
            path,
            format!(
                "the array has shape {:?}, expected {shape_text}",
                array.shape()
            ),
        ));
    }
    Ok(array)
}

/// Reads a point cloud: a float64 `.npy` array of shape (n, d), one point per row.
pub fn read_points(path: &Path) -> Result<Mat<f64>> {
    let array = read_npy(path, 2, "(n, d)")?
        .into_dimensionality::<Ix2>()
        .expect("checked ndim");
    Ok(to_mat(&array.view()))
}

/// Reads a weight vector: a float64 `.npy` array of shape (n,).
pub fn read_weights(path: &Path) -> Result<Vec<f64>> {
    Ok(read_npy(path, 1, "(n,)")?.iter().copied().collect())
}

fn to_mat(a: &ndarray::ArrayView2<f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)])
}

/// Reads a [`Gaussian`] from `mean` (d) and `cov` (d, d).
pub fn read_gaussian(path: &Path) -> Result<Gaussian> {
    let mut archive = Archive::open(path)?;
    let mean = archive
        .array("mean", 1, "(d,)")?
        .into_dimensionality::<Ix1>()
        .expect("checked ndim");
    let cov = archive
        .array("cov", 2, "(d, d)")?
        .into_dimensionality::<Ix2>()
        .expect("checked ndim");
    let d = mean.len();
    if cov.shape() != [d, d] {
        return Err(Error::file(
            path,
            format!(
                "key `cov` has shape {:?}, expected ({d}, {d}) to match `mean`",
                cov.shape()
            ),
        ));
    }
    Gaussian::new(mean.to_vec(), to_mat(&cov.view())).map_err(|e| e.in_file(path))
}

/// Reads [`ClassConditionalGaussians`] from `means` (K, d), `covs` (K, d, d) and optional `probs` (K).
pub fn read_class_conditionals(path: &Path) -> Result<ClassConditionalGaussians> {
    let mut archive = Archive::open(path)?;
    let means = archive
        .array("means", 2, "(K, d)")?
        .into_dimensionality::<Ix2>()
        .expect("checked ndim");
    let covs = archive.array("covs", 3, "(K, d, d)")?;
    let (k, d) = means.dim();
    if covs.shape() != [k, d, d] {
        return Err(Error::file(
            path,
            format!(
                "key `covs` has shape {:?}, expected ({k}, {d}, {d}) to match `means`",
                covs.shape()
            ),
        ));
    }
    let probs = if archive.has("probs") {
        let p = archive.array("probs", 1, "(K,)")?;
        if p.len() != k {
            return Err(Error::file(
                path,
                format!(
                    "key `probs` has {} entries, expected {k} (one per class)",
                    p.len()
                ),
            ));
        }
        p.iter().copied().collect()
    } else {
        vec![1.0 / k as f64; k]
    };
    let classes = (0..k)
        .map(|y| {
            let cov = covs
                .index_axis(ndarray::Axis(0), y)
                .into_dimensionality::<Ix2>()
                .expect("checked ndim");
            Gaussian::new(means.row(y).to_vec(), to_mat(&cov))
                .map_err(|e| Error::file(path, format!("class {y}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    ClassConditionalGaussians::new(classes, probs).map_err(|e| e.in_file(path))
}

/// Writes a Gaussian as `mean` and `cov` (atomically).
pub fn write_gaussian(path: &Path, gaussian: &Gaussian) -> Result<()> {
    let d = gaussian.dim();
    let mean = ndarray::Array1::from(gaussian.mean().to_vec());
    let cov = ndarray::Array2::from_shape_fn((d, d), |(i, j)| gaussian.cov()[(i, j)]);
    atomic_write_with(path, |file| {
        let mut npz = NpzWriter::new(BufWriter::new(file));
        npz.add_array("mean", &mean).map_err(|e| e.to_string())?;
        npz.add_array("cov", &cov).map_err(|e| e.to_string())?;
        npz.finish().map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Writes class conditionals as `means`, `covs` and `probs` (atomically).
pub fn write_class_conditionals(path: &Path, dist: &ClassConditionalGaussians) -> Result<()> {
    let (k, d) = (dist.num_classes(), dist.dim());
    let means = ndarray::Array2::from_shape_fn((k, d), |(y, i)| dist.class(y).mean()[i]);
    let covs = ndarray::Array3::from_shape_fn((k, d, d), |(y, i, j)| dist.class(y).cov()[(i, j)]);
    let probs = ndarray::Array1::from(dist.probs().to_vec());
    atomic_write_with(path, |file| {
        let mut npz = NpzWriter::new(BufWriter::new(file));
        npz.add_array("means", &means).map_err(|e| e.to_string())?;
        npz.add_array("covs", &covs).map_err(|e| e.to_string())?;
        npz.add_array("probs", &probs).map_err(|e| e.to_string())?;
        npz.finish().map_err(|e| e.to_string())?;
        Ok(())
    })
}
