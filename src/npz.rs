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
use std::io::{BufWriter, Read};
use std::path::Path;

use faer::Mat;
use ndarray::{ArrayD, Ix1, Ix2};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyError, ReadNpyExt, ReadNpzError};

use crate::error::{Error, Result};
use crate::report::atomic_write_with;
use crate::theory::gaussian::{ClassConditionalGaussians, Gaussian};

/// CRC-32 of a file's bytes, read in 1 MiB pieces: the key of a sample set made elsewhere, so
/// that resampling it (same name, same size) redoes the runs and ARC cells that used it.
pub fn file_crc32(path: &Path) -> Result<u32> {
    let unreadable = |e: std::io::Error| Error::file(path, format!("cannot read sample set: {e}"));
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let (mut hasher, mut buffer) = (crc32fast::Hasher::new(), vec![0u8; 1 << 20]);
    loop {
        match file.read(&mut buffer).map_err(unreadable)? {
            0 => return Ok(hasher.finalize()),
            n => hasher.update(&buffer[..n]),
        }
    }
}

/// An opened archive that remembers its path for error messages.
struct Archive {
    path: std::path::PathBuf,
    reader: NpzReader<File>,
    names: Vec<String>,
}

impl Archive {
    fn open(path: &Path) -> Result<Self> {
        check_npz_members(path, &["mean", "cov", "means", "covs", "probs"])?;
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

/// The bytes of data a `.npy` header declares (shape product × item size), read from the start
/// of `reader`, and the length of the preamble (magic, version, header). Only the header is
/// read, so a header that declares more than the file holds is caught before anything is
/// allocated for it.
fn declared_npy_bytes(mut reader: impl Read) -> std::result::Result<(u64, u64), String> {
    let mut magic = [0u8; 10];
    reader
        .read_exact(&mut magic)
        .map_err(|_| "too short for a .npy header".to_string())?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (bad magic bytes)".into());
    }
    let (header_len, preamble) = match magic[6] {
        1 => (u16::from_le_bytes([magic[8], magic[9]]) as u64, 10),
        2 | 3 => {
            let mut rest = [0u8; 2];
            reader
                .read_exact(&mut rest)
                .map_err(|_| "too short for a .npy header".to_string())?;
            (
                u32::from_le_bytes([magic[8], magic[9], rest[0], rest[1]]) as u64,
                12,
            )
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    if header_len > 1 << 20 {
        return Err(format!(
            "a .npy header of {header_len} bytes (at most 1 MiB)"
        ));
    }
    // Read up to the declared length, so a stream shorter than its header claims allocates no
    // more than it holds.
    let mut header = Vec::new();
    reader
        .take(header_len)
        .read_to_end(&mut header)
        .map_err(|e| format!("unreadable .npy header ({e})"))?;
    if header.len() as u64 != header_len {
        return Err("truncated .npy header".into());
    }
    let header = String::from_utf8_lossy(&header);
    let field = |name: &str| {
        header
            .find(&format!("'{name}'"))
            .map(|at| header[at + name.len() + 2..].trim_start_matches([' ', ':']))
    };
    let descr = field("descr").ok_or("a .npy header without `descr`")?;
    let item: u64 = descr
        .trim_start_matches(['\'', '"'])
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .map_err(|_| {
            format!(
                "unsupported .npy dtype {}",
                descr.split(',').next().unwrap_or("")
            )
        })?;
    let shape = field("shape").ok_or("a .npy header without `shape`")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("a .npy header whose `shape` is not a tuple")?;
    let mut bytes = item;
    for dim in inner.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let dim: u64 = dim
            .parse()
            .map_err(|_| format!("a .npy shape entry `{dim}` that is not a size"))?;
        bytes = bytes
            .checked_mul(dim)
            .ok_or_else(|| format!("a .npy shape ({inner}) too large to address"))?;
    }
    Ok((bytes, preamble + header_len))
}

/// Refuses `what` (a `.npy` stream of `available` bytes in `path`) when its header declares more
/// data than those bytes hold.
fn check_declared(path: &Path, what: &str, reader: impl Read, available: u64) -> Result<()> {
    let (declared, preamble) =
        declared_npy_bytes(reader).map_err(|e| Error::file(path, format!("{what}: {e}")))?;
    let holds = available.saturating_sub(preamble);
    if declared > holds {
        return Err(Error::file(
            path,
            format!(
                "{what} declares {declared} bytes of data but holds {holds}: truncated or corrupt"
            ),
        ));
    }
    Ok(())
}

/// Checks a `.npy` file's header against the file's length before it is read.
pub(crate) fn check_npy_file(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let length = file
        .metadata()
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?
        .len();
    check_declared(path, "the array", std::io::BufReader::new(file), length)
}

/// The largest expansion of deflate (about 1032:1), which bounds what a compressed member can
/// hold whatever size its zip entry claims.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Checks the header of every listed member of an npz archive against the bytes the member can
/// hold (its uncompressed size, and for compressed members at most deflate's maximal expansion
/// of its compressed size) before any array is read. Missing members are left to the reader.
pub(crate) fn check_npz_members(path: &Path, keys: &[&str]) -> Result<()> {
    let bytes_of = |e: std::io::Error| Error::file(path, format!("cannot read: {e}"));
    let mut file = File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let length = file.metadata().map_err(bytes_of)?.len();
    check_central_directory(path, &mut file, length)?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| Error::file(path, format!("not a valid .npz archive ({e})")))?;
    for key in keys {
        let Ok(entry) = zip.by_name(&format!("{key}.npy")) else {
            continue;
        };
        let available = match entry.compression() {
            zip::CompressionMethod::Stored => entry.size().min(entry.compressed_size()),
            _ => entry
                .size()
                .min(entry.compressed_size().saturating_mul(DEFLATE_MAX_RATIO)),
        };
        check_declared(path, &format!("key `{key}`"), entry, available)?;
    }
    Ok(())
}

/// The smallest central-directory record of a zip entry (46 bytes before its name).
const CENTRAL_RECORD: u64 = 46;

/// Checks the zip's end-of-central-directory record (and its zip64 form) against the file's
/// `length` before the zip reader trusts it: the directory lies within the file and the entries
/// it declares fit in it at 46 bytes each. (The reader sizes its entry list by the declared count,
/// bounded only by the declared directory offset, so a few hundred bytes could ask for
/// megabytes.) A file without the record is left to the zip reader to refuse.
fn check_central_directory(path: &Path, file: &mut File, length: u64) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let tail = length.min(22 + u64::from(u16::MAX));
    let mut end = vec![0u8; tail as usize];
    file.seek(SeekFrom::Start(length - tail))
        .and_then(|_| file.read_exact(&mut end))
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let Some(at) = (0..end.len().saturating_sub(21))
        .rev()
        .find(|&i| end[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
    else {
        return Ok(());
    };
    let u16_at = |i: usize| u64::from(u16::from_le_bytes([end[i], end[i + 1]]));
    let u32_at = |i: usize| u64::from(u32::from_le_bytes(end[i..i + 4].try_into().unwrap()));
    // Entries on this disk and in all: a reader may size its list by either.
    let (mut entries, mut size, mut offset) = (
        u16_at(at + 8).max(u16_at(at + 10)),
        u32_at(at + 12),
        u32_at(at + 16),
    );
    let zip64_locator = at >= 20 && end[at - 20..at - 16] == [0x50, 0x4b, 0x06, 0x07];
    if (entries == 0xffff || offset == 0xffff_ffff) && zip64_locator {
        let record = u64::from_le_bytes(end[at - 12..at - 4].try_into().unwrap());
        let mut zip64 = [0u8; 56];
        if record.checked_add(56).is_some_and(|e| e <= length) {
            file.seek(SeekFrom::Start(record))
                .and_then(|_| file.read_exact(&mut zip64))
                .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
            let u64_at = |i: usize| u64::from_le_bytes(zip64[i..i + 8].try_into().unwrap());
            (entries, size, offset) = (u64_at(24).max(u64_at(32)), u64_at(40), u64_at(48));
        }
    }
    let directory_end = offset.checked_add(size);
    if directory_end.is_none_or(|e| e > length) || entries.saturating_mul(CENTRAL_RECORD) > size {
        return Err(Error::file(
            path,
            format!(
                "not a valid .npz archive (its zip directory declares {entries} entries in {size} bytes at offset {offset}, in a file of {length} bytes)"
            ),
        ));
    }
    Ok(())
}

/// Reads a float64 `.npy` array of `ndim` dimensions.
fn read_npy(path: &Path, ndim: usize, shape_text: &str) -> Result<ArrayD<f64>> {
    check_npy_file(path)?;
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

/// Writes a point cloud (one point per row) as the float64 `x` (n, d) of an npz (atomically): the
/// vector sets `arc` reads.
pub fn write_vectors(path: &Path, points: &Mat<f64>) -> Result<()> {
    let x =
        ndarray::Array2::from_shape_fn((points.nrows(), points.ncols()), |(i, j)| points[(i, j)]);
    atomic_write_with(path, |file| {
        let mut npz = NpzWriter::new(BufWriter::new(file));
        npz.add_array("x", &x).map_err(|e| e.to_string())?;
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

/// Draws `count` points of the Gaussian stored in `gaussian` (npz `mean`, `cov`) with a generator
/// seeded by `seed` and writes them as a vector set ([`write_vectors`]) to `out`; returns how many.
pub fn write_gaussian_samples(
    gaussian: &Path,
    count: usize,
    seed: u64,
    out: &Path,
) -> Result<usize> {
    use rand::SeedableRng;
    let g = read_gaussian(gaussian)?;
    crate::config::at_least("--count", count, 1)?;
    crate::config::fits_in_memory("--count", "points × dimensions", &[count, g.dim()])?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    write_vectors(out, &g.sample(count, &mut rng))?;
    Ok(count)
}
