//! Configs: TOML files read into typed structs with defaults, `deny_unknown_fields` and a
//! [`Validate`] pass, the field checks those passes share (one function per kind of check, one
//! wording), and the compute [`Device`].
//!
//! Errors name the file and the line (`FILE: line L: MESSAGE`) for parse errors, and the file
//! and field (`FILE: epochs: at least 1, got 0`) for validation errors.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Range checks of a parsed config; errors name the field.
pub trait Validate {
    fn validate(&self) -> Result<()>;
}

/// Reads `path` as TOML into `T` and validates it.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<T> {
    let text = read_text(path)?;
    let config: T = parse_toml(path, &text)?;
    config.validate().map_err(|e| e.in_file(path))?;
    Ok(config)
}

/// The text of a config file.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read config: {e}")))
}

/// Parses TOML into `T`, turning the parser's multi-line diagnostic into one line with the line
/// number: `FILE: line L: MESSAGE`.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim().replace('\n', " ");
        match line {
            Some(l) => {
                // The line itself names the field a type or value error is about.
                let source: String = text
                    .lines()
                    .nth(l - 1)
                    .unwrap_or("")
                    .trim()
                    .chars()
                    .take(60)
                    .collect();
                Error::file(path, format!("line {l} (`{source}`): {message}"))
            }
            None => Error::file(path, message),
        }
    })
}

/// Prefixes the field named by a validation error with `section.` (a config nested in another).
pub fn in_section(section: &str, error: Error) -> Error {
    match error {
        Error::Invalid { what, expected } => Error::invalid(format!("{section}.{what}"), expected),
        other => other,
    }
}

/// A validation error of a field given on the command line, renamed to its flag (`--field`).
pub fn as_flag(error: Error) -> Error {
    match error {
        Error::Invalid { what, expected } => Error::invalid(format!("--{what}"), expected),
        other => other,
    }
}

/// `value` is finite and > 0.
pub fn positive_finite(field: &str, value: f64) -> Result<()> {
    check(value > 0.0 && value.is_finite(), field, || {
        format!("a finite value > 0, got {value}")
    })
}

/// `value` is finite and ≥ 0.
pub fn non_negative_finite(field: &str, value: f64) -> Result<()> {
    check(value >= 0.0 && value.is_finite(), field, || {
        format!("a finite value ≥ 0, got {value}")
    })
}

/// `value` lies in [0, 1) (a momentum, a decay, a smoothing).
pub fn unit_interval_open(field: &str, value: f64) -> Result<()> {
    check((0.0..1.0).contains(&value), field, || {
        format!("a value in [0, 1), got {value}")
    })
}

/// `value` lies in [0, 1] (a weight, a probability).
pub fn unit_interval(field: &str, value: f64) -> Result<()> {
    check((0.0..=1.0).contains(&value), field, || {
        format!("a weight in [0, 1], got {value}")
    })
}

/// `value` is at least `min`.
pub fn at_least(field: &str, value: usize, min: usize) -> Result<()> {
    check(value >= min, field, || {
        format!("at least {min}, got {value}")
    })
}

/// `value` is at most `max`.
pub fn at_most(field: &str, value: usize, max: usize) -> Result<()> {
    check(value <= max, field, || {
        format!("at most {max}, got {value}")
    })
}

/// The most values (f64 or f32) a sweep, check or proxy generator holds in memory at once:
/// 10^8, under a gigabyte.
pub const MAX_HELD_VALUES: usize = 100_000_000;

/// The product of `factors` (the sizes of what `what` holds, e.g. "samples × dim") is at most
/// [`MAX_HELD_VALUES`]; the product saturates, so sizes whose product overflows are refused too.
pub fn fits_in_memory(field: &str, what: &str, factors: &[usize]) -> Result<()> {
    let held = factors.iter().fold(1usize, |a, &b| a.saturating_mul(b));
    check(held <= MAX_HELD_VALUES, field, || {
        let sizes: Vec<String> = factors.iter().map(usize::to_string).collect();
        format!(
            "{what} at most 10^8 (held in memory), got {}",
            sizes.join(" × ")
        )
    })
}

fn check(ok: bool, field: &str, expected: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, expected()))
    }
}

/// Where neural computations run: `auto` (CUDA when libtorch sees a GPU), `cpu` or `cuda`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Device {
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl TryFrom<String> for Device {
    type Error = String;

    fn try_from(name: String) -> std::result::Result<Self, String> {
        match name.as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            _ => Err(format!("device: auto, cpu or cuda, got \"{name}\"")),
        }
    }
}

#[cfg(feature = "torch")]
impl Device {
    /// The libtorch device: the first GPU for `cuda` (refused when there is none) and for `auto`
    /// when there is one, the CPU otherwise.
    pub fn resolve(self) -> Result<tch::Device> {
        match self {
            Device::Cpu => Ok(tch::Device::Cpu),
            Device::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            Device::Cuda => Err(Error::invalid(
                "device",
                "cuda, but libtorch sees no CUDA device here",
            )),
            Device::Auto => Ok(tch::Device::cuda_if_available()),
        }
    }

    /// Sets libtorch's CPU threads when `threads` > 0 (0 keeps its default), then
    /// [`Self::resolve`]s the device: the start of every run on tch.
    pub fn start(self, threads: usize) -> Result<tch::Device> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads > 4 * cores {
            return Err(Error::invalid(
                "threads",
                format!(
                    "at most 4 × the {cores} cores here ({}), got {threads}",
                    4 * cores
                ),
            ));
        }
        if threads > 0 {
            tch::set_num_threads(threads as i32);
        }
        self.resolve()
    }
}

/// A `--shard I/N` flag as (I, N), 0 ≤ I < N.
pub fn parse_shard(flag: &str, text: &str) -> Result<(usize, usize)> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if i < n => Ok((i, n)),
        _ => Err(Error::invalid(
            flag,
            format!("I/N with 0 ≤ I < N, got {text:?}"),
        )),
    }
}

/// Which part of a grid of independent cells a command computes: all of them and the outputs
/// (no flag), cells `i, i + n, …` recorded for a later merge (`--shard i/n`), or the outputs from
/// every cell's record (`--merge`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Part {
    #[default]
    All,
    Shard(usize, usize),
    Merge,
}

impl Part {
    /// The part the `--shard` and `--merge` flags ask for.
    pub fn from_flags(shard: Option<&str>, merge: bool) -> Result<Self> {
        match (shard, merge) {
            (Some(_), true) => Err(Error::invalid("--shard", "either --shard or --merge")),
            (Some(text), false) => {
                let (i, n) = parse_shard("--shard", text)?;
                Ok(Part::Shard(i, n))
            }
            (None, true) => Ok(Part::Merge),
            (None, false) => Ok(Part::All),
        }
    }

    /// Whether this part computes cell `index`.
    pub fn computes(self, index: usize) -> bool {
        match self {
            Part::All => true,
            Part::Shard(i, n) => index % n == i,
            Part::Merge => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_the_field_and_the_value() {
        let message = |r: Result<()>| r.unwrap_err().to_string();
        assert_eq!(
            message(non_negative_finite("a.b", -0.1)),
            "a.b: a finite value ≥ 0, got -0.1"
        );
        assert_eq!(
            message(positive_finite("x", 0.0)),
            "x: a finite value > 0, got 0"
        );
        assert!(message(positive_finite("x", f64::NAN)).contains("got NaN"));
        assert_eq!(
            message(unit_interval_open("m", 1.0)),
            "m: a value in [0, 1), got 1"
        );
        assert_eq!(
            message(unit_interval("g", 1.5)),
            "g: a weight in [0, 1], got 1.5"
        );
        assert_eq!(message(at_least("n", 1, 2)), "n: at least 2, got 1");
        assert!(non_negative_finite("a", 0.0).is_ok() && unit_interval("g", 1.0).is_ok());
        assert!(at_least("n", 2, 2).is_ok() && unit_interval_open("m", 0.0).is_ok());
    }

    #[test]
    fn a_nested_error_gets_its_section_prefix() {
        let e = in_section("train", Error::invalid("epochs", "at least 1"));
        assert_eq!(e.to_string(), "train.epochs: at least 1");
    }

    #[test]
    fn parse_errors_carry_the_line_number() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Small {
            a: u32,
        }
        let e = parse_toml::<Small>(Path::new("c.toml"), "\n\nb = 1\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml: line 3 (`"), "{e}");
    }

    #[test]
    fn a_device_is_named_once_and_a_wrong_one_names_the_field() {
        #[derive(Deserialize, Debug)]
        struct WithDevice {
            device: Device,
        }
        let parsed: WithDevice = parse_toml(Path::new("c.toml"), "device = \"cuda\"").unwrap();
        assert_eq!(parsed.device, Device::Cuda);
        let e = parse_toml::<WithDevice>(Path::new("c.toml"), "device = \"tpu\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("device: auto, cpu or cuda, got \"tpu\""),
            "{e}"
        );
    }
}
