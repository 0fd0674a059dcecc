//! A corpus of malformed inputs across every command and file format: `.npy` and npz headers and
//! payloads (point clouds, weights, Gaussians, class conditionals, image sets), IDX, CIFAR
//! binaries, image folders, the seed repository's `.bin`, safetensors weights, TOML configs of
//! every kind (sweeps, training, generators, experiments, ARC), and out-of-range flags. Each one
//! runs through the binary in an empty working folder and must get exit 2, exactly one stderr
//! line naming the file or field, no panic marker, and leave nothing behind: no new file in the
//! working folder (where default run folders would go) nor beside the inputs.

use std::path::{Path, PathBuf};

mod common;
use common::{binary, npy, npy_f64, npz};

/// One malformed input: the command line and the words its one line must hold.
struct Case {
    name: String,
    args: Vec<String>,
    needle: String,
}

/// The inputs folder and the cases built on it.
struct Corpus {
    inputs: PathBuf,
    cases: Vec<Case>,
}

impl Corpus {
    fn new(inputs: &Path) -> Self {
        std::fs::create_dir_all(inputs).unwrap();
        Corpus {
            inputs: inputs.to_owned(),
            cases: Vec::new(),
        }
    }

    /// Writes `bytes` as the input `name` and returns its path.
    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.inputs.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// A folder input `name` (created empty) and its path.
    fn folder(&self, name: &str) -> String {
        let path = self.inputs.join(name);
        std::fs::create_dir_all(&path).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// A case whose `{out}` arguments become the run's output folder (inside the working folder).
    fn case(&mut self, name: &str, needle: &str, args: &[&str]) {
        self.cases.push(Case {
            name: name.to_owned(),
            args: args.iter().map(|s| s.to_string()).collect(),
            needle: needle.to_owned(),
        });
    }

    /// Every case through the binary; returns the failures, one line each.
    fn run(&self, work: &Path) -> Vec<String> {
        let before = listing(&self.inputs);
        let mut failures = Vec::new();
        for (i, case) in self.cases.iter().enumerate() {
            let cwd = work.join(format!("case-{i}"));
            std::fs::create_dir_all(&cwd).unwrap();
            let out = cwd.join("out");
            let args: Vec<String> = case
                .args
                .iter()
                .map(|a| a.replace("{out}", out.to_str().unwrap()))
                .collect();
            let o = binary().args(&args).current_dir(&cwd).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            let left = listing(&cwd);
            let problem = if o.status.code() != Some(2) {
                Some(format!("exit {:?}", o.status.code()))
            } else if err.lines().count() != 1 {
                Some(format!("{} stderr lines", err.lines().count()))
            } else if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
                Some("a panic".into())
            } else if !err.contains(&case.needle) {
                Some(format!("no `{}` in the message", case.needle))
            } else if !left.is_empty() {
                Some(format!("left {left:?} behind"))
            } else {
                None
            };
            if let Some(problem) = problem {
                failures.push(format!("{}: {problem}: {}", case.name, err.trim()));
            }
        }
        let after = listing(&self.inputs);
        if after != before {
            failures.push(format!(
                "files appeared beside the inputs: {:?}",
                after.difference(&before).collect::<Vec<_>>()
            ));
        }
        failures
    }
}

/// Every path under `dir`, relative to it.
fn listing(dir: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            found.insert(path.strip_prefix(dir).unwrap().to_owned());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

/// The members of an npz: name and `.npy` bytes.
type Members = Vec<(&'static str, Vec<u8>)>;

/// A 2-D Gaussian's npz with `mean` and `cov` as given.
fn gaussian(mean: Vec<u8>, cov: Vec<u8>) -> Vec<(&'static str, Vec<u8>)> {
    vec![("mean", mean), ("cov", cov)]
}

fn npz_file(corpus: &Corpus, name: &str, members: &[(&str, Vec<u8>)], deflated: bool) -> String {
    let path = corpus.inputs.join(name);
    npz(&path, members, deflated);
    path.to_str().unwrap().to_owned()
}

/// `.npy` point clouds and weights (`ot`): headers, dtypes, shapes, payloads, values.
fn point_clouds(c: &mut Corpus) {
    let ok = c.file(
        "ok.npy",
        npy_f64("(4, 2)", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
    );
    let bad: &[(&str, Vec<u8>)] = &[
        ("empty.npy", Vec::new()),
        ("text.npy", b"1.0 2.0\n3.0 4.0\n".to_vec()),
        ("magic.npy", b"\x93NUMPX\x01\x00\x10\x00".to_vec()),
        ("version.npy", b"\x93NUMPY\x09\x00\x10\x00{}".to_vec()),
        (
            "header-cut.npy",
            b"\x93NUMPY\x01\x00\xff\x00{'descr'".to_vec(),
        ),
        (
            "no-shape.npy",
            npy("<f8", "", &[0u8; 64])
                .iter()
                .map(|&b| if b == b's' { b'z' } else { b })
                .collect(),
        ),
        ("int.npy", npy("<i4", "(4, 2)", &[0u8; 32])),
        ("one-dim.npy", npy_f64("(8,)", &[0.0; 8])),
        ("three-dim.npy", npy_f64("(2, 2, 2)", &[0.0; 8])),
        ("short.npy", npy("<f8", "(5, 2)", &[0u8; 64])),
        (
            "huge.npy",
            npy("<f8", "(1000000000, 1000000000)", &[0u8; 64]),
        ),
        (
            "overflow.npy",
            npy("<f8", "(18446744073709551615, 2)", &[0u8; 64]),
        ),
        ("negative.npy", npy("<f8", "(-4, 2)", &[0u8; 64])),
        (
            "nan.npy",
            npy_f64("(4, 2)", &[0.0, f64::NAN, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        ),
        ("no-points.npy", npy_f64("(0, 2)", &[])),
        ("wide.npy", npy_f64("(4, 3)", &[0.0; 12])),
    ];
    for (name, bytes) in bad {
        let path = c.file(name, bytes);
        let needle = if *name == "wide.npy" {
            "same dimension"
        } else {
            name
        };
        c.case(&format!("ot {name}"), needle, &["ot", &path, &ok]);
    }
    for (name, weights) in [
        ("w-sum.npy", vec![0.5, 0.5, 0.5, 0.5]),
        ("w-negative.npy", vec![1.5, -0.5, 0.0, 0.0]),
        ("w-length.npy", vec![0.5, 0.5]),
        ("w-nan.npy", vec![f64::NAN, 0.5, 0.25, 0.25]),
    ] {
        let shape = format!("({},)", weights.len());
        let path = c.file(name, npy_f64(&shape, &weights));
        c.case(
            &format!("ot --wx {name}"),
            name,
            &["ot", &ok, &ok, "--wx", &path],
        );
    }
    c.case("ot missing file", "absent.npy", &["ot", "absent.npy", &ok]);
    let folder = c.folder("a-folder.npy");
    c.case("ot folder", "a-folder.npy", &["ot", &folder, &ok]);
    c.case("ot --p 3", "--p", &["ot", &ok, &ok, "--p", "3"]);
}

/// Gaussian and class-conditional npz archives (`w2`, `cwd`).
fn gaussian_archives(c: &mut Corpus) {
    let identity = npy_f64("(2, 2)", &[1.0, 0.0, 0.0, 1.0]);
    let mean = npy_f64("(2,)", &[0.0, 1.0]);
    let ok = npz_file(c, "g.npz", &gaussian(mean.clone(), identity.clone()), false);
    let bad: Vec<(&str, Members, bool, &str)> = vec![
        (
            "no-cov.npz",
            vec![("mean", mean.clone())],
            false,
            "missing key `cov`",
        ),
        (
            "cov-int.npz",
            gaussian(mean.clone(), npy("<i8", "(2, 2)", &[0u8; 32])),
            false,
            "cov",
        ),
        (
            "cov-shape.npz",
            gaussian(mean.clone(), npy_f64("(3, 3)", &[0.0; 9])),
            false,
            "cov",
        ),
        (
            "not-psd.npz",
            gaussian(mean.clone(), npy_f64("(2, 2)", &[1.0, 0.0, 0.0, -1.0])),
            false,
            "not-psd.npz",
        ),
        (
            "asymmetric.npz",
            gaussian(mean.clone(), npy_f64("(2, 2)", &[1.0, 0.9, 0.0, 1.0])),
            false,
            "asymmetric.npz",
        ),
        (
            "nan-mean.npz",
            gaussian(npy_f64("(2,)", &[f64::NAN, 0.0]), identity.clone()),
            false,
            "nan-mean.npz",
        ),
        (
            "cov-huge.npz",
            gaussian(mean.clone(), npy("<f8", "(100000, 100000)", &[0u8; 512])),
            true,
            "key `cov` declares",
        ),
        (
            "cov-cut.npz",
            gaussian(mean.clone(), npy("<f8", "(2, 2)", &[0u8; 16])),
            false,
            "cov",
        ),
    ];
    for (name, members, deflated, needle) in bad {
        let path = npz_file(c, name, &members, deflated);
        c.case(&format!("w2 {name}"), needle, &["w2", &ok, &path]);
    }
    let zip_cut = std::fs::read(&ok).unwrap();
    let cut = c.file("cut.npz", &zip_cut[..zip_cut.len() / 2]);
    c.case("w2 truncated zip", "cut.npz", &["w2", &cut, &ok]);
    let wrong_dim = npz_file(
        c,
        "g3.npz",
        &gaussian(
            npy_f64("(3,)", &[0.0; 3]),
            npy_f64("(3, 3)", &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
        ),
        false,
    );
    c.case(
        "w2 dimensions differ",
        "dimension",
        &["w2", &ok, &wrong_dim],
    );

    let means = npy_f64("(2, 2)", &[0.0, 0.0, 1.0, 1.0]);
    let covs = npy_f64("(2, 2, 2)", &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
    let ok_cc = npz_file(
        c,
        "cc.npz",
        &[("means", means.clone()), ("covs", covs.clone())],
        false,
    );
    for (name, probs, needle) in [
        (
            "probs-sum.npz",
            npy_f64("(2,)", &[0.5, 0.6]),
            "probs-sum.npz",
        ),
        (
            "probs-negative.npz",
            npy_f64("(2,)", &[1.5, -0.5]),
            "probs-negative.npz",
        ),
        (
            "probs-length.npz",
            npy_f64("(3,)", &[0.2, 0.3, 0.5]),
            "probs",
        ),
    ] {
        let path = npz_file(
            c,
            name,
            &[
                ("means", means.clone()),
                ("covs", covs.clone()),
                ("probs", probs),
            ],
            false,
        );
        c.case(&format!("cwd {name}"), needle, &["cwd", &ok_cc, &path]);
    }
    let covs_k = npz_file(
        c,
        "covs-k.npz",
        &[
            ("means", means.clone()),
            ("covs", npy_f64("(1, 2, 2)", &[1.0, 0.0, 0.0, 1.0])),
        ],
        false,
    );
    c.case("cwd covs of another K", "covs", &["cwd", &ok_cc, &covs_k]);
    c.case(
        "cwd a Gaussian for a class set",
        "missing key `means`",
        &["cwd", &ok_cc, &ok],
    );
}

/// An image npz of `n` 8×8 grey images with the given label member.
fn image_members(n: usize, label: Vec<u8>) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "image",
            npy("|u1", &format!("({n}, 8, 8, 1)"), &vec![7u8; n * 64]),
        ),
        ("label", label),
    ]
}

/// Image sets (npz) as the training split, the synthetic set, ARC's sets and the quality and
/// pseudo-label inputs; IDX, CIFAR, image folders and the seed repository's `.bin`.
#[cfg(feature = "torch")]
fn image_sets(c: &mut Corpus) {
    let labels = |n: usize, v: u8| npy("|u1", &format!("({n},)"), &vec![v; n]);
    let ok = npz_file(c, "images.npz", &image_members(16, labels(16, 1)), false);
    let sets: Vec<(&str, Members, &str)> = vec![
        (
            "no-label.npz",
            vec![image_members(16, Vec::new()).remove(0)],
            "missing key `label`",
        ),
        (
            "label-range.npz",
            image_members(16, labels(16, 12)),
            "label-range.npz",
        ),
        (
            "label-count.npz",
            image_members(16, labels(15, 1)),
            "label-count.npz",
        ),
        (
            "label-float.npz",
            image_members(16, npy_f64("(16,)", &[1.0; 16])),
            "label",
        ),
        (
            "image-float.npz",
            vec![
                ("image", npy_f64("(2, 8, 8, 1)", &[0.0; 128])),
                ("label", labels(2, 0)),
            ],
            "image",
        ),
        (
            "image-3d.npz",
            vec![
                ("image", npy("|u1", "(2, 8, 8)", &[0u8; 128])),
                ("label", labels(2, 0)),
            ],
            "image",
        ),
        (
            "image-huge.npz",
            vec![
                ("image", npy("|u1", "(100000000, 8, 8, 1)", &[0u8; 64])),
                ("label", labels(2, 0)),
            ],
            "key `image` declares",
        ),
    ];
    let train = |c: &Corpus, name: &str, dataset: &str| -> String {
        c.file(
            name,
            format!(
                "name = \"corpus\"\nmodel = \"cnn2\"\nepochs = 1\nbatch_size = 8\nthreads = 1\ndataset = {dataset}\n[lr]\nbase = 0.05\n"
            ),
        )
    };
    for (name, members, needle) in &sets {
        let path = npz_file(c, name, members, false);
        let config = train(
            c,
            &format!("train-{name}.toml"),
            &format!("{{ npz = {{ train = \"{path}\", test = \"{ok}\", classes = 10 }} }}"),
        );
        c.case(
            &format!("train on {name}"),
            needle,
            &["train", &config, "--out", "{out}"],
        );
    }
    let test_shape = npz_file(
        c,
        "test-16x16.npz",
        &[
            ("image", npy("|u1", "(2, 16, 16, 1)", &[0u8; 512])),
            ("label", labels(2, 0)),
        ],
        false,
    );
    let config = train(
        c,
        "train-shapes.toml",
        &format!("{{ npz = {{ train = \"{ok}\", test = \"{test_shape}\", classes = 10 }} }}"),
    );
    c.case(
        "train and test shapes differ",
        "test images like the training images",
        &["train", &config, "--out", "{out}"],
    );

    // The synthetic set of PORT: an npz, or the seed repository's .bin with .npy labels.
    let mnist = |c: &Corpus, name: &str, synthetic: &str| -> String {
        c.file(
            name,
            format!(
                "name = \"corpus\"\nmodel = \"cnn2\"\nepochs = 1\ntrain_subset = 64\nthreads = 1\n[synthetic]\n{synthetic}\n[lr]\nbase = 0.05\n"
            ),
        )
    };
    let rgb = npz_file(
        c,
        "rgb.npz",
        &[
            ("image", npy("|u1", "(4, 32, 32, 3)", &vec![1u8; 4 * 3072])),
            ("label", labels(4, 3)),
        ],
        false,
    );
    let cifar_like = |c: &Corpus, name: &str, synthetic: &str| -> String {
        c.file(
            name,
            format!(
                "name = \"corpus\"\nmodel = \"cnn2\"\nepochs = 1\nthreads = 1\ndataset = {{ npz = {{ train = \"{rgb}\", test = \"{rgb}\", classes = 10 }} }}\n[synthetic]\n{synthetic}\n[lr]\nbase = 0.05\n"
            ),
        )
    };
    let synthetic = mnist(
        c,
        "synthetic-range.toml",
        &format!(
            "npz = \"{}\"",
            npz_file(c, "syn-range.npz", &image_members(4, labels(4, 11)), false)
        ),
    );
    c.case(
        "synthetic labels out of range",
        "syn-range.npz",
        &["train", &synthetic, "--out", "{out}"],
    );
    let bin = c.file("cifar.bin", vec![0u8; 3072 * 2 + 5]);
    let bin_labels = c.file("cifar-labels.npy", npy("|u1", "(2,)", &[0, 1]));
    let config = cifar_like(
        c,
        "synthetic-bin.toml",
        &format!("bin = \"{bin}\"\nlabels = \"{bin_labels}\""),
    );
    c.case(
        "synthetic .bin not whole images",
        "cifar.bin",
        &["train", &config, "--out", "{out}"],
    );
    let bin = c.file("cifar-ok.bin", vec![0u8; 3072 * 2]);
    let three = c.file("three-labels.npy", npy("|u1", "(3,)", &[0, 1, 2]));
    let config = cifar_like(
        c,
        "synthetic-count.toml",
        &format!("bin = \"{bin}\"\nlabels = \"{three}\""),
    );
    c.case(
        "synthetic .bin label count",
        "cifar-ok.bin",
        &["train", &config, "--out", "{out}"],
    );
    let config = cifar_like(c, "synthetic-half.toml", &format!("bin = \"{bin}\""));
    c.case(
        "synthetic .bin without labels",
        "labels",
        &["train", &config, "--out", "{out}"],
    );

    // MNIST IDX folders.
    let idx = |c: &Corpus, dir: &str, images: Vec<u8>, labels: Vec<u8>| -> String {
        for split in ["train", "t10k"] {
            c.file(&format!("{dir}/{split}-images-idx3-ubyte"), &images);
            c.file(&format!("{dir}/{split}-labels-idx1-ubyte"), &labels);
        }
        let folder = c.inputs.join(dir);
        train(
            c,
            &format!("{dir}.toml"),
            &format!("{{ mnist = \"{}\" }}", folder.display()),
        )
    };
    let header = |magic: u32, sizes: &[u32]| -> Vec<u8> {
        std::iter::once(magic)
            .chain(sizes.iter().copied())
            .flat_map(u32::to_be_bytes)
            .collect()
    };
    let images = |n: u32| [header(0x803, &[n, 28, 28]), vec![0u8; n as usize * 784]].concat();
    let labels_idx = |n: u32| [header(0x801, &[n]), vec![0u8; n as usize]].concat();
    for (dir, img, lab) in [
        (
            "idx-magic",
            [header(0x804, &[2, 28, 28]), vec![0u8; 1568]].concat(),
            labels_idx(2),
        ),
        ("idx-short", images(2)[..1000].to_vec(), labels_idx(2)),
        (
            "idx-overflow",
            header(0x803, &[u32::MAX, u32::MAX, u32::MAX]),
            labels_idx(2),
        ),
        ("idx-count", images(2), labels_idx(3)),
        (
            "idx-label-magic",
            images(2),
            [header(0x803, &[2]), vec![0u8; 2]].concat(),
        ),
    ] {
        let config = idx(c, dir, img, lab);
        c.case(
            &format!("train on {dir}"),
            "ubyte",
            &["train", &config, "--out", "{out}"],
        );
    }
    let absent = train(c, "idx-absent.toml", "{ mnist = \"no-such-folder\" }");
    c.case(
        "train on a missing IDX folder",
        "no-such-folder",
        &["train", &absent, "--out", "{out}"],
    );

    // CIFAR-10 binary folders.
    for (dir, batch, needle) in [
        ("cifar-short", vec![0u8; 3073 * 2 - 1], "data_batch_1.bin"),
        ("cifar-empty", Vec::new(), "data_batch_1.bin"),
        (
            "cifar-label",
            [vec![10u8], vec![0u8; 3072]].concat(),
            "label",
        ),
    ] {
        for name in [
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
        ] {
            c.file(&format!("{dir}/{name}.bin"), &batch);
        }
        let folder = c.inputs.join(dir);
        let config = train(
            c,
            &format!("{dir}.toml"),
            &format!("{{ cifar10 = \"{}\" }}", folder.display()),
        );
        c.case(
            &format!("train on {dir}"),
            needle,
            &["train", &config, "--out", "{out}"],
        );
    }

    // Image folders.
    for class in ["cat", "dog"] {
        for split in ["train", "test"] {
            c.file(
                &format!("folders-text/{split}/{class}/a.png"),
                b"not a png at all",
            );
        }
    }
    let folder = c.inputs.join("folders-text");
    let config = train(
        c,
        "folders-text.toml",
        &format!(
            "{{ image_folder = {{ dir = \"{}\", size = 8 }} }}",
            folder.display()
        ),
    );
    c.case(
        "image folder with a broken PNG",
        "a.png",
        &["train", &config, "--out", "{out}"],
    );
    c.folder("folders-empty/train");
    c.folder("folders-empty/test");
    let folder = c.inputs.join("folders-empty");
    let config = train(
        c,
        "folders-empty.toml",
        &format!(
            "{{ image_folder = {{ dir = \"{}\", size = 8 }} }}",
            folder.display()
        ),
    );
    c.case(
        "image folder without classes",
        "folders-empty",
        &["train", &config, "--out", "{out}"],
    );

    // ARC reads the same image sets (labels unused).
    let bad_set = npz_file(
        c,
        "arc-3d.npz",
        &[("image", npy("|u1", "(4, 8, 8)", &[0u8; 256]))],
        false,
    );
    let arc = c.file("arc.toml", "name = \"arc\"\nmodel = \"cnn2\"\nnorm = \"linf\"\nepsilons = [0.0, 0.1]\nheld_out = 4\nepochs = 1\nlr = 0.1\nthreads = 1\n");
    c.case(
        "arc on a bad real set",
        "arc-3d.npz",
        &["arc", &bad_set, &ok, "--config", &arc, "--out", "{out}"],
    );
}

/// Weights files: not safetensors, a header longer than the file, bad JSON, another model's.
#[cfg(feature = "torch")]
fn weights(c: &mut Corpus) {
    let config = c.file("eval.toml", "name = \"eval\"\nmodel = \"cnn2\"\nepochs = 1\ntrain_subset = 64\nthreads = 1\n[lr]\nbase = 0.05\n");
    let header = |json: &str, extra: usize| -> Vec<u8> {
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend(json.as_bytes());
        bytes.extend(vec![0u8; extra]);
        bytes
    };
    let huge = {
        let mut b = (u64::MAX / 2).to_le_bytes().to_vec();
        b.extend(b"{}");
        b
    };
    for (name, bytes) in [
        ("empty.safetensors", Vec::new()),
        ("text.safetensors", b"these are not weights".to_vec()),
        ("huge-header.safetensors", huge),
        ("bad-json.safetensors", header("{\"a\": [", 0)),
        (
            "offsets.safetensors",
            header(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                8,
            ),
        ),
        (
            "other-model.safetensors",
            header(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                8,
            ),
        ),
        ("weights.pt", b"PK\x03\x04 a torch pickle".to_vec()),
    ] {
        let path = c.file(name, bytes);
        c.case(
            &format!("eval {name}"),
            name,
            &["eval", &config, "--weights", &path, "--out", "{out}"],
        );
    }
    let path = c.inputs.join("text.safetensors");
    let path = path.to_str().unwrap();
    // Weights that load, so that the commands reach the bad input behind them.
    let trained = c.inputs.join("trained");
    let o = binary()
        .args([
            "train",
            &config,
            "--out",
            trained.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let good = trained.join("weights.safetensors");
    let good = good.to_str().unwrap();
    let bad_set = c.inputs.join("label-count.npz");
    let bad_set = bad_set.to_str().unwrap();
    c.case(
        "quality of a bad proxy",
        "label-count.npz",
        &[
            "quality",
            bad_set,
            "--config",
            &config,
            "--weights",
            good,
            "--out",
            "{out}",
        ],
    );
    let not_json = c.file("summary.json", "{ not json");
    for (name, needle, extra) in [
        ("bounds with a bad proxy", "label-count.npz", &[][..]),
        ("bounds radius", "--max-radius", &["--max-radius", "-1"][..]),
        ("bounds points", "--points", &["--points", "1"][..]),
        (
            "bounds ARC summary",
            "summary.json",
            &["--arc", not_json.as_str()][..],
        ),
    ] {
        let mut args = vec![
            "bounds",
            &config,
            bad_set,
            "--weights",
            good,
            "--out",
            "{out}",
        ];
        args.extend_from_slice(extra);
        c.case(name, needle, &args);
    }
    let unlabeled = npz_file(
        c,
        "no-image.npz",
        &[("label", npy("|u1", "(2,)", &[0, 0]))],
        false,
    );
    c.case(
        "pseudo-label without images",
        "no-image.npz",
        &[
            "pseudo-label",
            &unlabeled,
            "--config",
            &config,
            "--weights",
            good,
            "--out",
            "{out}/p.npz",
        ],
    );
    c.case(
        "certify on bad weights",
        "text.safetensors",
        &[
            "certify",
            &config,
            "--weights",
            path,
            "--sigma",
            "0.25",
            "--out",
            "{out}",
        ],
    );
    let generator = c.file(
        "ddpm.toml",
        "name = \"g\"\nsteps = 10\nthreads = 1\n[model]\nkind = \"ddpm\"\n",
    );
    c.case(
        "generator sample on bad weights",
        "text.safetensors",
        &[
            "generator",
            "sample",
            &generator,
            "--weights",
            path,
            "--count",
            "4",
            "--out",
            "{out}/s.npz",
        ],
    );
}

/// TOML configs of every kind: syntax, unknown and missing fields, wrong types, bad values.
fn configs(c: &mut Corpus) {
    let sweeps = [
        (
            "sweep-syntax.toml",
            "sweep = \"theorem1\"\n[real\nclasses = 2\n",
            "sweep-syntax.toml",
        ),
        ("sweep-none.toml", "name = \"x\"\n", "missing field `sweep`"),
        ("sweep-kind.toml", "sweep = \"theorem9\"\n", "theorem9"),
        (
            "sweep-unknown.toml",
            "sweep = \"theorem1\"\ncolour = 3\n",
            "colour",
        ),
        (
            "sweep-type.toml",
            "sweep = \"theorem1\"\n[real]\nclasses = \"ten\"\n",
            "classes",
        ),
        (
            "sweep-negative.toml",
            "sweep = \"theorem1\"\n[real]\nclasses = -3\n",
            "classes",
        ),
        (
            "sweep-dim.toml",
            "sweep = \"theorem1\"\n[real]\ndim = 1000000\n",
            "real.dim",
        ),
        (
            "sweep-classes.toml",
            "sweep = \"theorem1\"\n[real]\nclasses = 100000000000\n",
            "real.classes",
        ),
        (
            "sweep-samples.toml",
            "sweep = \"theorem1\"\n[evaluation]\nsamples_per_class = 100000000000\n",
            "evaluation.samples_per_class",
        ),
        (
            "sweep2-dims.toml",
            "sweep = \"theorem2\"\n[spheres]\ndims = [2, 10000000]\n",
            "spheres.dims",
        ),
        (
            "sweep2-gaussians.toml",
            "sweep = \"theorem2\"\n[gaussians]\ndim = 1000000\n",
            "gaussians.dim",
        ),
        (
            "sweep6-weights.toml",
            "sweep = \"theorem6\"\nweights = 1\n",
            "weights",
        ),
        (
            "sweep6-data.toml",
            "sweep = \"theorem6\"\n[data.model]\ndim = 100000\n",
            "data.model.dim",
        ),
        (
            "sweep7-samples.toml",
            "sweep = \"theorem7\"\n[data]\nsamples_per_class = 1000000\n",
            "data.samples_per_class",
        ),
        (
            "sweep7-tolerance.toml",
            "sweep = \"theorem7\"\ntolerance = nan\n",
            "tolerance",
        ),
        (
            "sweep-utf8.toml",
            "sweep = \"theorem1\"\nname = \"\u{0}\u{ffff}\"\n",
            "sweep-utf8.toml",
        ),
    ];
    for (name, text, needle) in sweeps {
        let path = c.file(name, text);
        c.case(
            &format!("sweep {name}"),
            needle,
            &["sweep", &path, "--out", "{out}"],
        );
    }
    let binary_file = c.file("binary.toml", [0xffu8, 0xfe, 0x00, 0x81]);
    c.case(
        "sweep non-UTF-8 config",
        "binary.toml",
        &["sweep", &binary_file, "--out", "{out}"],
    );
    c.case(
        "sweep missing config",
        "absent.toml",
        &["sweep", "absent.toml", "--out", "{out}"],
    );
    let folder = c.folder("a-folder.toml");
    c.case(
        "sweep config is a folder",
        "a-folder.toml",
        &["sweep", &folder, "--out", "{out}"],
    );
}

/// Training, generator, experiment and ARC configs (their checks run before libtorch is used).
#[cfg(feature = "torch")]
fn torch_configs(c: &mut Corpus) {
    let base = "name = \"t\"\nmodel = \"cnn2\"\nepochs = 1\ntrain_subset = 64\nthreads = 1\n";
    for (name, text, needle) in [
        (
            "train-model.toml",
            format!("{base}[lr]\nbase = 0.05\n").replace("cnn2", "vgg99"),
            "vgg99",
        ),
        ("train-no-lr.toml", base.to_string(), "missing field `lr`"),
        (
            "train-lr.toml",
            format!("{base}[lr]\nbase = inf\n"),
            "lr.base",
        ),
        (
            "train-batch.toml",
            format!("{base}batch_size = 0\n[lr]\nbase = 0.05\n"),
            "batch_size",
        ),
        (
            "train-threads.toml",
            format!("{base}[lr]\nbase = 0.05\n").replace("threads = 1", "threads = 100000"),
            "threads",
        ),
        (
            "train-eps.toml",
            format!(
                "{base}[objective]\nkind = \"pgd\"\nnorm = \"linf\"\nepsilon = -0.3\nstep_size = 0.1\nsteps = 2\n[lr]\nbase = 0.05\n"
            ),
            "epsilon",
        ),
        (
            "train-gamma.toml",
            format!("{base}[synthetic]\nnpz = \"x.npz\"\ngamma = 1.5\n[lr]\nbase = 0.05\n"),
            "gamma",
        ),
        (
            "train-subset.toml",
            format!("{base}[lr]\nbase = 0.05\n")
                .replace("train_subset = 64", "train_subset = 100000000"),
            "train_subset",
        ),
        (
            "train-device.toml",
            format!("{base}device = \"tpu\"\n[lr]\nbase = 0.05\n"),
            "device",
        ),
    ] {
        let path = c.file(name, text);
        c.case(
            &format!("train {name}"),
            needle,
            &["train", &path, "--out", "{out}"],
        );
    }
    for (name, text, needle) in [
        (
            "gen-kind.toml",
            "name = \"g\"\nsteps = 10\n[model]\nkind = \"vae\"\n",
            "vae",
        ),
        (
            "gen-timesteps.toml",
            "name = \"g\"\nsteps = 10\n[model]\nkind = \"ddpm\"\ntimesteps = 10\n",
            "model.timesteps",
        ),
        (
            "gen-steps.toml",
            "name = \"g\"\nsteps = 0\n[model]\nkind = \"gan\"\n",
            "steps",
        ),
    ] {
        let path = c.file(name, text);
        c.case(
            &format!("generator train {name}"),
            needle,
            &["generator", "train", &path, "--out", "{out}"],
        );
    }
    for (name, text, needle) in [
        ("exp-empty.toml", "name = \"e\"\n", "exp-empty.toml"),
        (
            "exp-seeds.toml",
            "name = \"e\"\nproxies = [{ kind = \"gaussian\" }]\nsynthetic_counts = [10]\ngammas = [0.4]\nseeds = []\n[train]\nmodel = \"cnn2\"\nepochs = 1\n[train.lr]\nbase = 0.05\n[evaluation]\nautoattack = \"fast\"\nthreat = { norm = \"linf\", epsilon = 0.1 }\n",
            "seeds",
        ),
    ] {
        let path = c.file(name, text);
        c.case(
            &format!("experiment {name}"),
            needle,
            &["experiment", &path, "--out", "{out}"],
        );
    }
    let set = c.inputs.join("images.npz");
    let set = set.to_str().unwrap();
    for (name, text, needle) in [
        (
            "arc-eps.toml",
            "name = \"a\"\nmodel = \"cnn2\"\nnorm = \"linf\"\nepsilons = [0.2, 0.1]\nheld_out = 4\nepochs = 1\nlr = 0.1\n",
            "epsilons",
        ),
        (
            "arc-norm.toml",
            "name = \"a\"\nmodel = \"cnn2\"\nnorm = \"l1\"\nepsilons = [0.0, 0.1]\nheld_out = 4\nepochs = 1\nlr = 0.1\n",
            "norm",
        ),
        (
            "arc-held-out.toml",
            "name = \"a\"\nmodel = \"cnn2\"\nnorm = \"linf\"\nepsilons = [0.0, 0.1]\nheld_out = 400\nepochs = 1\nlr = 0.1\n",
            "held_out",
        ),
    ] {
        let path = c.file(name, text);
        c.case(
            &format!("arc {name}"),
            needle,
            &["arc", set, set, "--config", &path, "--out", "{out}"],
        );
    }
}

/// Flags out of range.
fn flags(c: &mut Corpus) {
    for (name, args, needle) in [
        (
            "arc-sphere dim",
            &[
                "arc-sphere",
                "--r",
                "1",
                "--r-tilde",
                "2",
                "--dim",
                "1000000000",
            ][..],
            "--dim",
        ),
        (
            "arc-sphere radius",
            &["arc-sphere", "--r", "-1", "--r-tilde", "2", "--dim", "3"][..],
            "r:",
        ),
        (
            "arc-sphere norm",
            &[
                "arc-sphere",
                "--r",
                "1",
                "--r-tilde",
                "2",
                "--dim",
                "3",
                "--norm",
                "l1",
            ][..],
            "norm",
        ),
        (
            "proxy count",
            &[
                "proxy",
                "gaussian",
                "--count",
                "1000000000000",
                "--out",
                "{out}/p.npz",
            ][..],
            "count",
        ),
        (
            "proxy kind",
            &["proxy", "vae", "--count", "10", "--out", "{out}/p.npz"][..],
            "vae",
        ),
        ("unknown command", &["train-all"][..], "train-all"),
        (
            "unknown flag",
            &["ot", "a.npy", "b.npy", "--fast"][..],
            "--fast",
        ),
    ] {
        c.case(name, needle, args);
    }
}

#[cfg(feature = "torch")]
fn torch_flags(c: &mut Corpus) {
    let config = c.inputs.join("eval.toml");
    let config = config.to_str().unwrap();
    let weights = c.inputs.join("text.safetensors");
    let weights = weights.to_str().unwrap();
    for (name, args, needle) in [
        (
            "eval eps",
            vec![
                "eval",
                config,
                "--weights",
                weights,
                "--eps",
                "-1",
                "--out",
                "{out}",
            ],
            "--eps",
        ),
        (
            "certify sigma",
            vec![
                "certify",
                config,
                "--weights",
                weights,
                "--sigma",
                "-0.25",
                "--out",
                "{out}",
            ],
            "--sigma",
        ),
        (
            "certify n",
            vec![
                "certify",
                config,
                "--weights",
                weights,
                "--sigma",
                "0.25",
                "--n",
                "0",
                "--out",
                "{out}",
            ],
            "--n",
        ),
        (
            "certify alpha",
            vec![
                "certify",
                config,
                "--weights",
                weights,
                "--sigma",
                "0.25",
                "--alpha",
                "1.5",
                "--out",
                "{out}",
            ],
            "--alpha",
        ),
        (
            "pseudo-label threshold",
            vec![
                "pseudo-label",
                "x.npz",
                "--config",
                config,
                "--weights",
                weights,
                "--threshold",
                "2",
                "--out",
                "{out}/p.npz",
            ],
            "threshold",
        ),
    ] {
        c.case(name, needle, &args);
    }
}

#[test]
fn every_malformed_input_gets_one_line_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = Corpus::new(&dir.path().join("inputs"));
    point_clouds(&mut corpus);
    gaussian_archives(&mut corpus);
    configs(&mut corpus);
    flags(&mut corpus);
    #[cfg(feature = "torch")]
    {
        image_sets(&mut corpus);
        weights(&mut corpus);
        torch_configs(&mut corpus);
        torch_flags(&mut corpus);
    }
    let expected = if cfg!(feature = "torch") { 110 } else { 60 };
    assert!(
        corpus.cases.len() >= expected,
        "{} cases, expected at least {expected}",
        corpus.cases.len()
    );
    let failures = corpus.run(&dir.path().join("work"));
    assert!(
        failures.is_empty(),
        "{} of {} malformed inputs were not refused cleanly:\n{}",
        failures.len(),
        corpus.cases.len(),
        failures.join("\n")
    );
}
