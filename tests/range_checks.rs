//! Values out of range are refused with one line naming the flag or field, exit 2: sizes that
//! would exhaust memory, radii whose squares leave f64, thread counts that would hang the run,
//! and settings that would print wrong numbers with exit 0.

mod common;
use common::{binary, refused};

#[test]
fn arc_sphere_sizes_and_radii_are_range_checked() {
    let sphere = |extra: &[&str]| {
        let mut args = vec!["arc-sphere", "--r", "1", "--r-tilde", "2", "--norm", "l2"];
        if !extra.contains(&"--dim") {
            args.extend(["--dim", "3"]);
        }
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    for (extra, needle) in [
        (&["--dim", "1000000000"][..], "--dim"),
        (&["--grid", "100000000000"][..], "--grid"),
        (&["--grid", "0"][..], "--grid"),
        (&["--samples", "1000000000000"][..], "--samples"),
        (
            &["--dim", "50000", "--samples", "100000"][..],
            "samples × dim",
        ),
    ] {
        let args = sphere(extra);
        refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), needle);
    }
    refused(
        &["arc-sphere", "--r", "1e200", "--r-tilde", "2", "--dim", "3"],
        "r: a radius > 0, between 1e-100 and 1e100",
    );
    let o = binary()
        .args([
            "arc-sphere",
            "--r",
            "1",
            "--r-tilde",
            "1",
            "--dim",
            "3",
            "--samples",
            "200",
            "--grid",
            "50",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("4·ARC/cwd undefined") && !text.contains("inf"),
        "{text}"
    );
}

#[cfg(feature = "torch")]
#[test]
fn training_and_evaluation_settings_are_range_checked() {
    let dir = tempfile::tempdir().unwrap();
    let config = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("model = \"cnn2\"\nepochs = 2\ntrain_subset = 64\n{body}"),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let out = dir.path().join("run");
    let out = out.to_str().unwrap();
    for (body, needle) in [
        ("threads = 100000\n[lr]\nbase = 0.05\n", "threads: at most"),
        (
            "[lr]\nbase = 0.05\nschedule = { kind = \"step\", milestones = [1.5, 0.5], gamma = 0.1 }\n",
            "lr.schedule",
        ),
        (
            "[lr]\nbase = 0.05\nschedule = { kind = \"step\", milestones = [1.0], gamma = 2.0 }\n",
            "lr.schedule",
        ),
    ] {
        let c = config("c.toml", body);
        refused(&["train", &c, "--out", out], needle);
        assert!(
            !std::path::Path::new(out).exists(),
            "{body}: wrote a run folder"
        );
    }
    let c = config("ok.toml", "[lr]\nbase = 0.05\n");
    for (flags, needle) in [
        (&["--min-distance", "-1"][..], "--min-distance"),
        (&["--eps", "NaN"][..], "--eps"),
        (&["--eps", "-0.1"][..], "--eps"),
        (&["--norm", "l1", "--eps", "0.1"][..], "--norm"),
    ] {
        let mut args = vec!["eval", c.as_str(), "--weights", "missing.safetensors"];
        args.extend(flags);
        refused(&args, needle);
    }
}
