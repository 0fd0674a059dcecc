//! Data-parallel training on c10d's Gloo over the loopback interface (feature `torch`): two
//! processes with a per-rank batch of B end with the weights of one process with batch 2B, a
//! killed rank makes the other stop with one error line instead of waiting, and a half-set
//! launch environment is refused.
#![cfg(feature = "torch")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::binary;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, name: &str, batch: usize, epochs: usize) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nmodel = \"cnn4\"\ntrain_subset = 256\nepochs = {epochs}\nbatch_size = {batch}\nthreads = 1\ncollective_timeout_seconds = 20\n[lr]\nbase = 0.05\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// `train CONFIG [extra…]` as rank `rank` of `world` (torchrun's variables).
fn rank_with(
    config: &str,
    out: &Path,
    rank: usize,
    world: usize,
    port: u16,
    extra: &[&str],
) -> Child {
    let mut command: Command = binary();
    command
        .args(["train", config, "--out", out.to_str().unwrap(), "--quiet"])
        .args(extra)
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().unwrap()
}

fn rank(config: &str, out: &Path, rank: usize, world: usize, port: u16) -> Child {
    rank_with(config, out, rank, world, port, &[])
}

fn weights(dir: &Path) -> Vec<(String, tch::Tensor)> {
    let mut w = tch::Tensor::read_safetensors(dir.join("weights.safetensors")).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn two_gloo_ranks_of_batch_b_train_like_one_process_of_batch_2b() {
    let dir = tempfile::tempdir().unwrap();
    let single = write_config(dir.path(), "single", 64, 1);
    let o = binary()
        .args([
            "train",
            &single,
            "--out",
            dir.path().join("single").to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let pair = write_config(dir.path(), "pair", 32, 1);
    let port = free_port();
    let out = dir.path().join("pair");
    let ranks: Vec<Child> = (0..2).map(|r| rank(&pair, &out, r, 2, port)).collect();
    let outputs: Vec<_> = ranks
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (r, o) in outputs.iter().enumerate() {
        assert!(
            o.status.success(),
            "rank {r}: {}\nthe other: {}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&outputs[1 - r].stderr)
        );
    }
    let (a, b) = (weights(&dir.path().join("single")), weights(&out));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let diff = (x - y).abs().max().double_value(&[]);
        let scale = x.abs().max().double_value(&[]).max(1e-3);
        eprintln!("{name}: max |Δ| {diff:.3e} (largest |w| {scale:.3})");
        assert!(diff <= 1e-4 * scale.max(1.0), "{name}: max |Δ| {diff}");
    }
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"launcher\": \"torchrun\"")
            || manifest.contains("\"launcher\":\"torchrun\""),
        "{manifest}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        2,
        "rank 0 alone writes the metrics"
    );
}

#[test]
fn a_killed_rank_stops_the_other_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "long", 32, 500);
    let port = free_port();
    let out = dir.path().join("long");
    let first = rank(&config, &out, 0, 2, port);
    let mut second = rank(&config, &out, 1, 2, port);
    // Let the group form and training start, then kill rank 1 mid-run.
    let started = Instant::now();
    while !out.join("run_config.json").exists() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    second.kill().unwrap();
    let _ = second.wait();
    let killed = Instant::now();
    let o = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        killed.elapsed() < Duration::from_secs(90),
        "rank 0 took {:?}",
        killed.elapsed()
    );
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.lines().count() == 1 && err.contains("distributed"),
        "one line naming the process group: {err}"
    );
}

#[test]
fn a_half_set_launch_environment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "half", 32, 1);
    let o = binary()
        .args([
            "train",
            &config,
            "--out",
            dir.path().join("half").to_str().unwrap(),
        ])
        .env("RANK", "0")
        .env("WORLD_SIZE", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.lines().count() == 1 && err.contains("missing: LOCAL_RANK, MASTER_ADDR, MASTER_PORT"),
        "{err}"
    );
}

/// Ctrl-C stops both ranks at the same logging step with a checkpoint; `--resume` on both ends
/// with the same weights, byte for byte, as the uninterrupted two-rank run.
#[test]
fn an_interrupted_two_rank_run_resumes_to_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("resume.toml");
    std::fs::write(
        &config,
        "name = \"resume\"\nmodel = \"cnn4\"\ntrain_subset = 4000\nepochs = 4\nbatch_size = 32\nthreads = 1\nlog_every_steps = 4\ncollective_timeout_seconds = 30\n[lr]\nbase = 0.05\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let both = |out: &Path, extra: &[&str]| -> Vec<Child> {
        let port = free_port();
        (0..2)
            .map(|r| rank_with(config, out, r, 2, port, extra))
            .collect()
    };
    let finish = |children: Vec<Child>| -> Vec<String> {
        children
            .into_iter()
            .map(|c| {
                let o = c.wait_with_output().unwrap();
                assert!(
                    o.status.success() || o.status.code() == Some(130),
                    "{}",
                    String::from_utf8_lossy(&o.stderr)
                );
                String::from_utf8_lossy(&o.stdout).into_owned()
            })
            .collect()
    };
    let whole = dir.path().join("whole");
    finish(both(&whole, &[]));

    let parts = dir.path().join("parts");
    let children = both(&parts, &[]);
    let started = Instant::now();
    while std::fs::read_to_string(parts.join("metrics.csv")).map_or(0, |m| m.lines().count()) < 2
        && started.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for c in &children {
        // SAFETY: signalling a child process this test started.
        unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
    }
    let printed = finish(children);
    assert!(
        printed.iter().all(|p| p.contains("interrupted after")),
        "{printed:?}"
    );
    finish(both(&parts, &["--resume"]));
    assert_eq!(
        std::fs::read(whole.join("weights.safetensors")).unwrap(),
        std::fs::read(parts.join("weights.safetensors")).unwrap()
    );
}
