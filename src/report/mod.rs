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
/// matplotlib's tab10 palette, for plots with one colour per group (the first four are the above).
pub const TAB10: [plotters::style::RGBColor; 10] = [
    BLUE,
    ORANGE,
    GREEN,
    RED,
    plotters::style::RGBColor(148, 103, 189),
    plotters::style::RGBColor(140, 86, 75),
    plotters::style::RGBColor(227, 119, 194),
    plotters::style::RGBColor(127, 127, 127),
    plotters::style::RGBColor(188, 189, 34),
    plotters::style::RGBColor(23, 190, 207),
];

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// A temporary path next to `path`, keeping its extension (plot backends pick the format by it).
pub(crate) fn temporary_sibling(path: &Path) -> PathBuf {
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

/// Removes the temporary files ([`temporary_sibling`]'s `.NAME.tmp-PID…`) in `dir` whose process
/// is no longer running: what a run killed between writing and renaming leaves behind.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.').and_then(|n| n.split_once(".tmp-")) else {
            continue;
        };
        let pid: String = rest.1.chars().take_while(|c| c.is_ascii_digit()).collect();
        let alive = pid.parse::<u32>().is_ok_and(|p| {
            p == std::process::id() || Path::new("/proc").join(p.to_string()).exists()
        });
        if !pid.is_empty() && !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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
///
/// Built once at the start of a run with [`Manifest::new`] (which starts the clock), given
/// command-specific fields with [`Manifest::with`], and written at the end with
/// [`Manifest::write`], which records the elapsed time and the outputs.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub command: String,
    pub config: serde_json::Value,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub seed: serde_json::Value,
    pub git_revision: &'static str,
    pub versions: Versions,
    pub device: String,
    pub started_unix_s: u64,
    pub elapsed_s: f64,
    pub outputs: Vec<String>,
    /// Fields of one command (`resumed`, `weights`, `settings`, …), written beside the others.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    clock: std::time::Instant,
}

impl Manifest {
    /// The manifest of `command` run with `config` on `device`; the clock starts now.
    pub fn new(command: &str, config: &impl Serialize, device: impl Into<String>) -> Result<Self> {
        Ok(Manifest {
            command: command.into(),
            config: to_json("config", config)?,
            seed: serde_json::Value::Null,
            git_revision: GIT_REVISION,
            versions: Versions::current(),
            device: device.into(),
            started_unix_s: unix_seconds(),
            elapsed_s: 0.0,
            outputs: Vec::new(),
            extra: serde_json::Map::new(),
            clock: std::time::Instant::now(),
        })
    }

    /// The run's seed (a number, or a list for a run over seeds).
    pub fn seed(mut self, seed: impl Serialize) -> Result<Self> {
        self.seed = to_json("seed", &seed)?;
        Ok(self)
    }

    /// Adds the command-specific field `key`.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Result<Self> {
        self.extra.insert(key.into(), to_json(key, &value)?);
        Ok(self)
    }

    /// Writes `run_dir/manifest.json` listing `outputs` (and itself), with the elapsed time.
    pub fn write(&mut self, run_dir: &Path, outputs: &[&str]) -> Result<()> {
        self.elapsed_s = self.clock.elapsed().as_secs_f64();
        self.outputs = outputs
            .iter()
            .map(|s| s.to_string())
            .chain(["manifest.json".to_string()])
            .collect();
        write_json(&run_dir.join("manifest.json"), self)
    }
}

fn to_json(field: &str, value: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::invalid(field, e.to_string()))
}

/// Versions of the toolkit and its numerical dependencies: the crate's, rustc's, faer's and
/// tch's from the build (Cargo.lock), libtorch's read at run time from the loaded library.
#[derive(Debug, Serialize)]
pub struct Versions {
    pub proxyrobust: &'static str,
    pub rustc: &'static str,
    pub faer: &'static str,
    pub tch: &'static str,
    /// The PyTorch release of the libtorch this process runs on (`2.11.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libtorch: Option<String>,
    /// Its full build string (`2.11.0+cu130`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libtorch_build: Option<String>,
}

impl Versions {
    /// Versions this binary was built with and, with the `torch` feature, runs on.
    pub fn current() -> Self {
        let build = libtorch_build();
        Versions {
            proxyrobust: env!("CARGO_PKG_VERSION"),
            rustc: env!("PROXYROBUST_RUSTC_VERSION"),
            faer: env!("PROXYROBUST_FAER_VERSION"),
            tch: env!("PROXYROBUST_TCH_VERSION"),
            libtorch: build
                .as_deref()
                .map(|b| b.split('+').next().unwrap_or(b).to_string()),
            libtorch_build: build,
        }
    }
}

/// The version of the libtorch mapped into this process: the `__version__` of the
/// `version.py` beside the `lib/` folder that holds `libtorch_cpu.so` (a PyTorch wheel's layout;
/// a libtorch zip has `build-version` instead).
#[cfg(feature = "torch")]
fn libtorch_build() -> Option<String> {
    // Touch libtorch so that it is loaded before the maps are read.
    let _ = tch::Cuda::is_available();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let library = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))?;
    let root = Path::new(library).parent()?.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        let line = text.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_string());
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|v| v.trim().to_string())
}

#[cfg(not(feature = "torch"))]
fn libtorch_build() -> Option<String> {
    None
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

/// A libtorch device as the manifest names it: `cuda:I`, or the CPU with the threads libtorch
/// was configured to use (the config's `threads`, or its default).
#[cfg(feature = "torch")]
pub fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => format!(
            "cpu ({} {}, {} threads)",
            std::env::consts::ARCH,
            std::env::consts::OS,
            tch::get_num_threads()
        ),
    }
}

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates a run folder (and its parents).
pub fn create_run_dir(run_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(run_dir)
        .map_err(|e| Error::file(run_dir, format!("cannot create run folder: {e}")))
}

/// A markdown table: the header row, the separator and one row per entry of `rows`.
pub fn markdown_table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut table = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    table.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in rows {
        table.push_str(&line(&row));
    }
    table
}

/// A progress bar over `len` items, hidden unless `visible` (and when stderr is no terminal).
pub fn progress(len: usize, what: &str, visible: bool) -> indicatif::ProgressBar {
    let bar = progress_bar(len as u64, what);
    if !visible {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// A progress bar with elapsed time, ETA and a message slot; hidden when stderr is not a terminal.
fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ETA {eta} {msg}",
    )
    .expect("static template");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_markdown_table_has_a_separator_per_column() {
        let table = markdown_table(&["a", "b"], [vec!["1".into(), "2".into()]]);
        assert_eq!(table, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }

    #[test]
    fn a_manifest_lists_itself_and_flattens_extra_fields() {
        let dir = std::env::temp_dir().join(format!("proxyrobust-manifest-{}", std::process::id()));
        let mut manifest = Manifest::new("test", &serde_json::json!({"k": 1}), "cpu")
            .and_then(|m| m.seed(7u64))
            .and_then(|m| m.with("resumed", false))
            .unwrap();
        manifest.write(&dir, &["a.csv"]).unwrap();
        let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["seed"], 7);
        assert_eq!(value["resumed"], false);
        assert_eq!(value["config"]["k"], 1);
        assert_eq!(
            value["outputs"],
            serde_json::json!(["a.csv", "manifest.json"])
        );
        assert_eq!(value["versions"]["tch"], "0.24.0");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
