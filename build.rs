//! Records the git revision, the rustc version and the locked faer and tch versions for run
//! manifests; with the `torch` feature, links libtorch.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let revision = output("git", &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let revision = if dirty && revision != "unknown" {
        format!("{revision}-dirty")
    } else {
        revision
    };
    println!("cargo:rustc-env=PROXYROBUST_GIT_REVISION={revision}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    println!(
        "cargo:rustc-env=PROXYROBUST_RUSTC_VERSION={}",
        output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into())
    );
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    for (package, variable) in [
        ("faer", "PROXYROBUST_FAER_VERSION"),
        ("tch", "PROXYROBUST_TCH_VERSION"),
    ] {
        println!(
            "cargo:rustc-env={variable}={}",
            locked_version(&lock, package)
        );
    }
    if std::env::var_os("CARGO_FEATURE_TORCH").is_some() {
        link_libtorch();
    }
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=Cargo.lock");
}

/// The version of `package` in Cargo.lock (`unknown` when absent).
fn locked_version(lock: &str, package: &str) -> String {
    let name = format!("name = \"{package}\"\n");
    lock.split("[[package]]")
        .find(|block| block.contains(&name))
        .and_then(|block| block.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// With the `torch` feature: keep libtorch_cuda even though no symbol of it is referenced (the
/// linker's --as-needed would drop it and CUDA would never be found), and bake an rpath to the
/// libtorch lib folder so the binary runs without LD_LIBRARY_PATH.
fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(root) = std::env::var_os("LIBTORCH") else {
        println!(
            "cargo:warning=LIBTORCH is not set; torch-sys will look for libtorch itself (see docs/libtorch.md)"
        );
        return;
    };
    let lib = std::path::Path::new(&root).join("lib");
    println!("cargo:rustc-link-arg=-L{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch_cuda");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
