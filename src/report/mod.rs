//! Run outputs: atomic files, CSV tables, JSON manifests, markdown reports and plots.
//!
//! Nothing is ever half-written: every file is written to a temporary sibling and renamed into
//! place, so an interrupted run leaves either the old file or the new one.

mod plot;

pub use plot::{Axes, Labels, Series, plot};

/// Series colours shared by every plot (matplotlib's first four).
pub const BLUE: plotters::style::RGBColor = plotters::style::RGBColor(31, 119, 180);
pub const ORANGE: plotters::style::RGBColor = plotters::style::RGBColor(255, 127, 14);
pub const GREEN: plotters::style::RGBColor = plotters::style::RGBColor(44, 160, 44);
pub const RED: plotters::style::RGBColor = plotters::style::RGBColor(214, 39, 40);

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// A temporary path next to `path`, keeping its extension (plot backends pick the format by it).
fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = format!(".{name}.tmp-{}", std::process::id());
    let tmp = match path.extension() {
        Some(ext) => format!("{tmp}.{}", ext.to_string_lossy()),
        None => tmp,
    };
    path.with_file_name(tmp)
}

/// Creates the temporary sibling, lets `write` fill it, then renames it onto `path`.
pub fn atomic_write_with(
    path: &Path,
    write: impl FnOnce(File) -> std::result::Result<(), String>,
) -> Result<()> {
    atomic_write_path(path, |tmp| {
        let file = File::create(tmp).map_err(|e| e.to_string())?;
        write(file)
    })
}

/// Lets `write` produce the file at a temporary path, then renames it onto `path`.
pub fn atomic_write_path(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::file(dir, format!("cannot create directory: {e}")))?;
    }
    let tmp = temporary_sibling(path);
    let outcome = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(message) = outcome {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::file(path, format!("cannot write: {message}")));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |mut file| {
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| e.to_string())
    })
}

/// Writes serialisable rows as CSV with a header from the struct's field names.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .serialize(row)
            .map_err(|e| Error::file(path, format!("cannot serialise row: {e}")))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| Error::file(path, format!("cannot serialise rows: {e}")))?;
    atomic_write(path, &bytes)
}

/// Writes `value` as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::file(path, format!("cannot serialise: {e}")))?;
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

/// The JSON manifest every run writes: what ran, with which settings, where, on what.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub command: String,
    pub config: serde_json::Value,
    pub seed: u64,
    pub git_revision: &'static str,
    pub versions: Versions,
    pub device: String,
    pub started_unix_s: u64,
    pub elapsed_s: f64,
    pub outputs: Vec<String>,
}

/// Versions of the toolkit and its numerical dependencies.
#[derive(Debug, Serialize)]
pub struct Versions {
    pub proxyrobust: &'static str,
    pub rustc: &'static str,
    pub faer: &'static str,
}

impl Versions {
    /// Versions this binary was built with.
    pub fn current() -> Self {
        Versions {
            proxyrobust: env!("CARGO_PKG_VERSION"),
            rustc: env!("PROXYROBUST_RUSTC_VERSION"),
            faer: env!("PROXYROBUST_FAER_VERSION"),
        }
    }
}

/// The git revision the binary was built from (`unknown` outside a git checkout).
pub const GIT_REVISION: &str = env!("PROXYROBUST_GIT_REVISION");

/// A description of the CPU device: architecture, OS and the threads faer may use.
pub fn cpu_device() -> String {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "cpu ({} {}, {threads} threads)",
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A progress bar with elapsed time, ETA and a message slot; hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ETA {eta} {msg}",
    )
    .expect("static template");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}
