//! Arrays whose `.npy` header declares more data than the file holds (a few hundred bytes
//! claiming terabytes) are refused with one line naming the file, before anything is allocated,
//! by every reader: `.npy` point clouds, Gaussian npz archives, image npz sets (stored and
//! deflated members).

use std::path::Path;

mod common;
use common::{npy, npz, refused};

#[test]
fn oversized_headers_are_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let ok = path("ok.npy");
    std::fs::write(&ok, npy("<f8", "(4, 2)", &[0u8; 64])).unwrap();
    for (name, shape, needle) in [
        (
            "huge.npy",
            "(1000000000, 1000000000)",
            "declares 8000000000000000000 bytes",
        ),
        ("big.npy", "(100000000, 100)", "declares 80000000000 bytes"),
        (
            "overflow.npy",
            "(10000000000, 10000000000)",
            "too large to address",
        ),
        (
            "short.npy",
            "(5, 2)",
            "declares 80 bytes of data but holds 64",
        ),
    ] {
        std::fs::write(path(name), npy("<f8", shape, &[0u8; 64])).unwrap();
        refused(&["ot", &path(name), &ok], needle);
        refused(&["ot", &ok, &path(name)], name);
    }
    std::fs::write(path("garbage.npy"), b"\x93NUMPY\x01\x00\xff\xff{").unwrap();
    refused(&["ot", &path("garbage.npy"), &ok], "truncated .npy header");

    // A Gaussian archive whose covariance claims 10^9 × 10^9 entries, stored or deflated.
    for deflated in [false, true] {
        let file = path(&format!("gaussian-{deflated}.npz"));
        npz(
            Path::new(&file),
            &[
                ("mean", npy("<f8", "(2,)", &[0u8; 16])),
                ("cov", npy("<f8", "(1000000000, 1000000000)", &[0u8; 4096])),
            ],
            deflated,
        );
        refused(&["w2", &file, &file], "key `cov` declares");
    }
}

#[cfg(feature = "torch")]
#[test]
fn oversized_image_sets_are_refused_before_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("proxy.npz");
    npz(
        &set,
        &[
            ("image", npy("|u1", "(100000000, 28, 28, 1)", &[0u8; 784])),
            ("label", npy("|u1", "(100000000,)", &[0u8; 64])),
        ],
        true,
    );
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "model = \"cnn2\"\nepochs = 1\ntrain_subset = 64\n[synthetic]\nnpz = \"{}\"\n[lr]\nbase = 0.05\n",
            set.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("run");
    refused(
        &[
            "train",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "key `image` declares 78400000000 bytes",
    );
}
