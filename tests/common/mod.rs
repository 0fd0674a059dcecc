//! Helpers the integration tests share: the binary, the one-line refusal check, and builders of
//! `.npy` streams and npz archives for hand-made inputs.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

/// The toolkit's binary.
pub fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_proxyrobust"))
}

/// Runs the binary with `args` and checks a refusal: exit 2 and exactly one stderr line, holding
/// `needle` and no panic marker. Returns that line.
pub fn refused(args: &[&str], needle: &str) -> String {
    let o = binary().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.lines().count() == 1 && err.contains(needle) && !err.contains("panicked"),
        "{args:?}: expected one line naming `{needle}`, got: {err}"
    );
    err
}

/// A `.npy` stream: a version 1.0 header with `descr` and `shape`, then `payload`.
pub fn npy(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(payload);
    bytes
}

/// A float64 `.npy` stream of `values` with `shape`.
pub fn npy_f64(shape: &str, values: &[f64]) -> Vec<u8> {
    let payload: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy("<f8", shape, &payload)
}

/// An npz archive in memory of `(name, .npy bytes)` members, stored or deflated.
pub fn npz_bytes(members: &[(&str, Vec<u8>)], deflated: bool) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflated {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in members {
        zip.start_file(format!("{name}.npy"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Writes [`npz_bytes`] to `path`.
pub fn npz(path: &Path, members: &[(&str, Vec<u8>)], deflated: bool) {
    std::fs::write(path, npz_bytes(members, deflated)).unwrap();
}

/// libtorch draws every random number from one generator per process, while the tests of one
/// binary run on parallel threads: a test whose values depend on what it draws after seeding
/// (directly or inside the library, which seeds from its configs) holds this guard for its whole
/// body, so no other test draws in between.
#[cfg(feature = "torch")]
pub fn torch_generator() -> std::sync::MutexGuard<'static, ()> {
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
