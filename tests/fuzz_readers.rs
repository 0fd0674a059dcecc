//! Fuzzing of every file reader on stable Rust (proptest): `.npy` arrays, npz archives
//! (Gaussians, class conditionals, image sets), IDX images and labels, CIFAR-10/100 binaries,
//! the seed repository's `.bin` labels, TOML configs of every kind and (feature `torch`)
//! safetensors weights. Inputs are arbitrary bytes, arbitrary bytes behind a valid magic, and
//! valid files mutated (bits flipped, bytes set, inserted, deleted, truncated, sizes overwritten
//! with extreme integers; for TOML, values replaced by extreme ones and lines dropped or
//! repeated). Each input must give `Ok` or an `Err`, never a panic, and no single allocation
//! may exceed what the input justifies: its length times the reader's expansion (1 for raw
//! formats, deflate's 1032 for npz members) plus 64 KiB, and for TOML configs the tables their
//! capped values may ask for (at most 1 MiB).
//!
//! `FUZZ_CASES` sets the inputs per reader (default 1,000, about 10^4 in all, a few seconds);
//! the documented long run is `FUZZ_CASES=1000000 cargo test --features torch --test
//! fuzz_readers` (docs/reliability.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

mod common;
use common::{npy, npy_f64, npz_bytes};

/// The system allocator, noting the largest single allocation of the current thread.
struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// What any input may allocate beyond its due: 64 KiB, a fixed allowance that no declared size
/// can stretch. (One of 10^6 mutated npz archives once tripped it through state, not input: the
/// W2 route's list of freed matrices grew by one entry per small Gaussian dropped, to a 1.75 MiB
/// list; it now keeps at most 32 large matrices.)
const SLACK: usize = 64 << 10;

/// What a TOML config may allocate beyond that: tables whose sizes its (capped) values set while
/// it is checked, the largest a diffusion schedule of at most 100,000 steps (under 1 MiB as a
/// vector grown by doubling). A config's size fields are not declared sizes of the file itself.
const CONFIG_TABLES: usize = 1 << 20;

/// A reader under test: valid seed files, the magic its format starts with, the allocation
/// expansion its format allows, and the call (on the file at the given path).
struct Reader {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    magic: &'static [u8],
    expansion: usize,
    text: bool,
    read: Box<dyn Fn(&Path)>,
}

/// One edit of a seed file.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Truncate(Index),
    /// An extreme integer written over 2, 4 or 8 bytes, little- or big-endian.
    Word(Index, u64, usize, bool),
    /// TOML: the value of a `key = value` line replaced by an extreme one.
    Value(Index, &'static str),
    DropLine(Index),
    RepeatLine(Index),
}

const EXTREME_INTEGERS: [u64; 10] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

const EXTREME_VALUES: [&str; 16] = [
    "0",
    "-1",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "1e-320",
    "18446744073709551615",
    "9223372036854775807",
    "\"\"",
    "\"../../x\"",
    "[]",
    "[[[[[[[[1]]]]]]]]",
    "{}",
    "true",
    "\"\\u0000\"",
];

fn mutation(text: bool) -> BoxedStrategy<Mutation> {
    let bytes = prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        (
            any::<Index>(),
            prop::sample::select(&EXTREME_INTEGERS[..]),
            prop::sample::select(&[2usize, 4, 8][..]),
            any::<bool>()
        )
            .prop_map(|(i, v, w, be)| Mutation::Word(i, v, w, be)),
    ];
    if text {
        prop_oneof![
            1 => bytes,
            3 => (any::<Index>(), prop::sample::select(&EXTREME_VALUES[..]))
                .prop_map(|(i, v)| Mutation::Value(i, v)),
            1 => any::<Index>().prop_map(Mutation::DropLine),
            1 => any::<Index>().prop_map(Mutation::RepeatLine),
        ]
        .boxed()
    } else {
        bytes.boxed()
    }
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match m {
        Mutation::Flip(i, bit) if !bytes.is_empty() => {
            let k = at(i, bytes.len());
            bytes[k] ^= 1 << bit;
        }
        Mutation::Set(i, v) if !bytes.is_empty() => {
            let k = at(i, bytes.len());
            bytes[k] = *v;
        }
        Mutation::Insert(i, v) => {
            let k = at(i, bytes.len() + 1);
            bytes.splice(k..k, v.iter().copied());
        }
        Mutation::Delete(i, n) if !bytes.is_empty() => {
            let k = at(i, bytes.len());
            bytes.drain(k..(k + n).min(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len() + 1)),
        Mutation::Word(i, v, width, big_endian) if bytes.len() >= *width => {
            let k = at(i, bytes.len() - width + 1);
            let word = if *big_endian {
                v.to_be_bytes()[8 - width..].to_vec()
            } else {
                v.to_le_bytes()[..*width].to_vec()
            };
            bytes[k..k + width].copy_from_slice(&word);
        }
        Mutation::Value(i, value) => edit_lines(bytes, i, |line| {
            line.split_once('=')
                .map(|(key, _)| vec![format!("{key}= {value}")])
        }),
        Mutation::DropLine(i) => edit_lines(bytes, i, |_| Some(Vec::new())),
        Mutation::RepeatLine(i) => {
            edit_lines(bytes, i, |line| Some(vec![line.into(), line.into()]))
        }
        _ => {}
    }
}

/// Replaces line `i` (of the lines `edit` accepts, counted from a random one) by `edit`'s lines.
fn edit_lines(bytes: &mut Vec<u8>, i: &Index, edit: impl Fn(&str) -> Option<Vec<String>>) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return;
    }
    let start = i.index(lines.len());
    for k in (0..lines.len()).map(|k| (start + k) % lines.len()) {
        if let Some(new) = edit(&lines[k]) {
            lines.splice(k..=k, new);
            *bytes = lines.join("\n").into_bytes();
            return;
        }
    }
}

/// Fuzz input: a mutated seed, arbitrary bytes, or arbitrary bytes behind the format's magic.
fn input(reader: &Reader) -> BoxedStrategy<Vec<u8>> {
    let seeds = reader.seeds.clone();
    let mutated = (
        any::<Index>(),
        prop::collection::vec(mutation(reader.text), 1..6),
    )
        .prop_map(move |(seed, edits)| {
            let mut bytes = seeds[seed.index(seeds.len())].clone();
            for edit in &edits {
                apply(&mut bytes, edit);
            }
            bytes
        });
    let magic = reader.magic.to_vec();
    let behind_magic = prop::collection::vec(any::<u8>(), 0..256).prop_map(move |tail| {
        let mut bytes = magic.clone();
        bytes.extend(tail);
        bytes
    });
    prop_oneof![
        8 => mutated,
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => behind_magic,
    ]
    .boxed()
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Runs `cases()` inputs through `reader`: no panic, no allocation beyond the input's due.
fn fuzz(reader: Reader) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("input.{}", reader.name));
    for seed in &reader.seeds {
        std::fs::write(&path, seed).unwrap();
        (reader.read)(&path);
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    for (name, bytes) in regressions(reader.name) {
        if let Err(e) = read_within_bound(&reader, &path, &bytes) {
            panic!("{}: the recorded input {name}: {e}", reader.name);
        }
    }
    let strategy = input(&reader);
    let outcome = runner.run(&strategy, |bytes| read_within_bound(&reader, &path, &bytes));
    if let Err(e) = outcome {
        panic!("{}: {e}", reader.name);
    }
}

/// Writes `bytes` to `path` and reads it with `reader`: no panic (proptest catches one) and no
/// allocation beyond the input's due.
fn read_within_bound(reader: &Reader, path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    std::fs::write(path, bytes).unwrap();
    LARGEST.with(|l| l.set(0));
    (reader.read)(path);
    let largest = LARGEST.with(Cell::get);
    let tables = if reader.text { CONFIG_TABLES } else { 0 };
    let due = bytes.len() * reader.expansion + SLACK + tables;
    if largest > due {
        return Err(TestCaseError::fail(format!(
            "an allocation of {largest} bytes for an input of {} bytes",
            bytes.len()
        )));
    }
    Ok(())
}

/// Inputs the fuzzer once found, kept in `tests/data/fuzz/` under the reader's extension: every
/// run reads them first.
fn regressions(extension: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    found.sort();
    found
}

fn ok<T, E>(_: Result<T, E>) {}

fn points_seed() -> Vec<u8> {
    npy_f64("(3, 2)", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
}

#[test]
fn npy_arrays() {
    fuzz(Reader {
        name: "npy",
        seeds: vec![
            points_seed(),
            npy_f64("(4,)", &[0.25; 4]),
            npy("<f8", "(2, 2)", &[0; 32]),
        ],
        magic: b"\x93NUMPY\x01\x00",
        expansion: 1,
        text: false,
        read: Box::new(|p| {
            ok(proxyrobust::npz::read_points(p));
            ok(proxyrobust::npz::read_weights(p));
        }),
    });
}

#[test]
fn gaussian_archives() {
    let identity = npy_f64("(2, 2)", &[1.0, 0.0, 0.0, 1.0]);
    let means = npy_f64("(2, 2)", &[0.0, 0.0, 1.0, 1.0]);
    let covs = npy_f64("(2, 2, 2)", &[1.0, 0.0, 0.0, 1.0, 2.0, 0.5, 0.5, 1.0]);
    let probs = npy_f64("(2,)", &[0.25, 0.75]);
    let seeds = [false, true]
        .into_iter()
        .flat_map(|deflated| {
            [
                npz_bytes(
                    &[
                        ("mean", npy_f64("(2,)", &[0.0, 1.0])),
                        ("cov", identity.clone()),
                    ],
                    deflated,
                ),
                npz_bytes(
                    &[
                        ("means", means.clone()),
                        ("covs", covs.clone()),
                        ("probs", probs.clone()),
                    ],
                    deflated,
                ),
            ]
        })
        .collect();
    fuzz(Reader {
        name: "npz",
        seeds,
        magic: b"PK\x03\x04",
        expansion: 1032,
        text: false,
        read: Box::new(|p| {
            ok(proxyrobust::npz::read_gaussian(p));
            ok(proxyrobust::npz::read_class_conditionals(p));
        }),
    });
}

#[test]
fn image_archives() {
    let seeds = [false, true]
        .into_iter()
        .flat_map(|deflated| {
            [
                npz_bytes(
                    &[
                        ("image", npy("|u1", "(3, 4, 4, 1)", &[9u8; 48])),
                        ("label", npy("|u1", "(3,)", &[0, 1, 2])),
                    ],
                    deflated,
                ),
                npz_bytes(
                    &[
                        ("image", npy("|u1", "(2, 2, 2, 3)", &[200u8; 24])),
                        (
                            "label",
                            npy(
                                "<i8",
                                "(2,)",
                                &[1u8, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0],
                            ),
                        ),
                    ],
                    deflated,
                ),
            ]
        })
        .collect();
    fuzz(Reader {
        name: "npz",
        seeds,
        magic: b"PK\x03\x04",
        expansion: 1032,
        text: false,
        read: Box::new(|p| {
            ok(proxyrobust::data::read_image_npz(p, 10));
            ok(proxyrobust::data::read_unlabeled_npz(p));
        }),
    });
}

fn idx(magic: u32, sizes: &[u32], payload: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = std::iter::once(magic)
        .chain(sizes.iter().copied())
        .flat_map(u32::to_be_bytes)
        .collect();
    bytes.extend((0..payload).map(|i| (i % 10) as u8));
    bytes
}

#[test]
fn idx_images_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = (dir.path().join("images"), dir.path().join("labels"));
    std::fs::write(&images, idx(0x803, &[3, 2, 2], 12)).unwrap();
    std::fs::write(&labels, idx(0x801, &[3], 3)).unwrap();
    let fixed_labels = labels.clone();
    fuzz(Reader {
        name: "idx3",
        seeds: vec![idx(0x803, &[3, 2, 2], 12), idx(0x803, &[1, 4, 3], 12)],
        magic: b"\x00\x00\x08\x03",
        expansion: 2,
        text: false,
        read: Box::new(move |p| ok(proxyrobust::data::formats::read_idx(p, &fixed_labels))),
    });
    fuzz(Reader {
        name: "idx1",
        seeds: vec![idx(0x801, &[3], 3)],
        magic: b"\x00\x00\x08\x01",
        expansion: 2,
        text: false,
        read: Box::new(move |p| ok(proxyrobust::data::formats::read_idx(&images, p))),
    });
}

#[test]
fn cifar_binaries() {
    let record = |label: &[u8]| [label.to_vec(), vec![17u8; 3072]].concat();
    fuzz(Reader {
        name: "bin",
        seeds: vec![
            [record(&[3]), record(&[9])].concat(),
            [record(&[1, 42]), record(&[0, 99])].concat(),
        ],
        magic: b"\x03",
        expansion: 4,
        text: false,
        read: Box::new(|p| {
            use proxyrobust::data::formats::{Cifar, read_cifar};
            ok(read_cifar(&[p.to_owned()], Cifar::Ten));
            ok(read_cifar(&[p.to_owned()], Cifar::Hundred));
        }),
    });
}

#[test]
fn synthetic_bin_labels() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("images.bin");
    std::fs::write(&bin, vec![5u8; 3 * 3072]).unwrap();
    fuzz(Reader {
        name: "npy",
        seeds: vec![
            npy("|u1", "(3,)", &[0, 1, 2]),
            npy("<i8", "(3,)", &[[2u8; 8], [0; 8], [1; 8]].concat()),
        ],
        magic: b"\x93NUMPY\x01\x00",
        expansion: 1,
        text: false,
        read: Box::new(move |p| ok(proxyrobust::data::formats::MappedImages::open(&bin, p, 10))),
    });
}

/// The shipped configs (experiments/, experiments/full/) that `load` accepts: the seeds of
/// that config kind.
fn shipped_configs(load: &dyn Fn(&Path) -> bool) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") && load(&path) {
                found.push(std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(!found.is_empty(), "no shipped config of this kind");
    found
}

fn config_reader(name: &'static str, load: fn(&Path) -> bool) -> Reader {
    Reader {
        name,
        seeds: shipped_configs(&load),
        magic: b"name = ",
        expansion: 64,
        text: true,
        read: Box::new(move |p| {
            load(p);
        }),
    }
}

#[test]
fn sweep_configs() {
    fuzz(config_reader("toml", |p| {
        proxyrobust::sweep::SweepConfig::load(p).is_ok()
    }));
}

#[cfg(feature = "torch")]
#[test]
fn training_configs() {
    fuzz(config_reader("toml", |p| {
        proxyrobust::train::TrainConfig::load(p).is_ok()
    }));
}

#[cfg(feature = "torch")]
#[test]
fn generator_experiment_and_arc_configs() {
    use proxyrobust::config::load;
    fuzz(config_reader("toml", |p| {
        load::<proxyrobust::proxy::generator::GeneratorConfig>(p).is_ok()
    }));
    fuzz(config_reader("toml", |p| {
        proxyrobust::experiment::PortExperiment::load(p).is_ok()
    }));
    fuzz(config_reader("toml", |p| {
        load::<proxyrobust::arc::ArcConfig>(p).is_ok()
    }));
}

#[cfg(feature = "torch")]
#[test]
fn safetensors_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let a = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
    let b = tch::Tensor::from_slice(&[7i64, 8]);
    tch::Tensor::write_safetensors(&[("a", &a), ("b.c", &b)], &path).unwrap();
    fuzz(Reader {
        name: "safetensors",
        seeds: vec![std::fs::read(&path).unwrap()],
        magic: b"\x40\x00\x00\x00\x00\x00\x00\x00{",
        expansion: 2,
        text: false,
        read: Box::new(|p| ok(proxyrobust::train::classifier::read_safetensors(p))),
    });
}

/// The harness itself: a reader that panics on some inputs, and one that allocates far more than
/// its input, are both caught.
#[test]
fn the_harness_catches_panics_and_oversized_allocations() {
    let reader = |read: Box<dyn Fn(&Path)>| Reader {
        name: "npy",
        seeds: vec![points_seed()],
        magic: b"\x93NUMPY\x01\x00",
        expansion: 1,
        text: false,
        read,
    };
    let panicking = reader(Box::new(|p| {
        let bytes = std::fs::read(p).unwrap();
        assert!(bytes.len() == points_seed().len(), "a changed length");
    }));
    assert!(
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || fuzz(panicking))).is_err()
    );
    let greedy = reader(Box::new(|p| {
        let bytes = std::fs::read(p).unwrap();
        std::hint::black_box(vec![0u8; 10 * bytes.len() + SLACK + 1]);
    }));
    assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || fuzz(greedy))).is_err());
}
