//! Kill anywhere (feature `torch`): a training run SIGKILLed at 20 moments, chosen by a seeded
//! generator among three kinds — the instant a temporary file appears (inside the write and
//! rename window of a checkpoint, metrics or weights file), a random delay after one appears,
//! and a random delay after the start (while libtorch loads, the data are read or the folder is
//! claimed) — and resumed each time (afresh while no checkpoint exists), ends with metrics and
//! weights identical to an uninterrupted run, and leaves no temporary file behind.
#![cfg(feature = "torch")]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};

mod common;
use common::binary;

/// 1,280 digits in batches of 32 for 16 epochs (640 steps), a checkpoint after every step: long
/// enough that 20 kills, the latest 900 ms after a start, do not outlast it on an idle machine.
const CONFIG: &str = "name = \"kill\"\nmodel = \"cnn2\"\nepochs = 16\ntrain_subset = 1280\nbatch_size = 32\ncheckpoint_every_steps = 1\nthreads = 1\n[lr]\nbase = 0.05\n";

const KILLS: usize = 20;

fn start(config: &Path, out: &Path) -> Child {
    let mut args = vec![
        "train".to_string(),
        config.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--quiet".into(),
    ];
    if checkpoint_exists(out) {
        args.push("--resume".into());
    }
    binary()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Whether `dir` holds a temporary file (`.NAME.tmp-PID…`), of process `pid` when given.
fn temporary_in(dir: &Path, pid: Option<u32>) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix('.')
                .and_then(|n| n.split_once(".tmp-"))
                .is_some_and(|(_, rest)| pid.is_none_or(|p| rest.starts_with(&p.to_string())))
        })
    })
}

/// Waits until `dir` holds a temporary file of `child` or `child` has exited; true for the
/// former.
fn wait_for_temporary(child: &mut Child, dir: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if temporary_in(dir, Some(child.id())) {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::yield_now();
    }
    panic!("no temporary file within 120 s");
}

/// Whether the run folder holds a checkpoint to resume from.
fn checkpoint_exists(dir: &Path) -> bool {
    dir.join("checkpoint.safetensors").exists()
}

/// metrics.csv without its wall-clock column.
fn metrics(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn killed_twenty_times_anywhere_a_run_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kill.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let straight = dir.path().join("straight");
    assert!(start(&config, &straight).wait().unwrap().success());

    let out = dir.path().join("killed");
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let mut moments = Vec::new();
    while moments.len() < KILLS {
        let mut child = start(&config, &out);
        let moment = match rng.random_range(0..3) {
            0 => wait_for_temporary(&mut child, &out).then_some("in a write window".to_string()),
            1 => wait_for_temporary(&mut child, &out).then(|| {
                let ms = rng.random_range(0..60);
                std::thread::sleep(Duration::from_millis(ms));
                format!("{ms} ms after a write")
            }),
            _ => {
                let ms = rng.random_range(0..900);
                std::thread::sleep(Duration::from_millis(ms));
                Some(format!("{ms} ms after the start"))
            }
        };
        if child.try_wait().unwrap().is_some() {
            panic!(
                "the run finished after {} kills ({moments:?}): make it longer",
                moments.len()
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let resumable = if checkpoint_exists(&out) {
            "resumable"
        } else {
            "no checkpoint yet"
        };
        moments.extend(moment.map(|m| format!("{m} ({resumable})")));
    }
    let status = start(&config, &out).wait().unwrap();
    assert!(
        status.success(),
        "the final resume failed after {moments:?}"
    );
    assert_eq!(metrics(&out), metrics(&straight), "after kills {moments:?}");
    assert!(
        std::fs::read(out.join("weights.safetensors")).unwrap()
            == std::fs::read(straight.join("weights.safetensors")).unwrap(),
        "weights differ after kills {moments:?}"
    );
    assert!(
        !temporary_in(&out, None),
        "a temporary file was left behind"
    );
    eprintln!("killed {KILLS} times: {moments:?}");
}
