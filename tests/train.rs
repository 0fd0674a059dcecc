//! Natural training on tch (feature `torch`): CNN-4 on the embedded MNIST-10k split reaches at
//! least 97% clean test accuracy (issue 4's acceptance), and the run folder is complete.
#![cfg(feature = "torch")]

use proxyrobust::train::{TrainConfig, run};

#[test]
fn cnn4_reaches_97_percent_on_mnist10k() {
    let dir = tempfile::tempdir().unwrap();
    let config = TrainConfig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/mnist_cnn4.toml"))).unwrap();
    let outcome = run(&config, dir.path(), false).unwrap();
    assert!(outcome.final_test_accuracy >= 0.97, "test accuracy {}", outcome.final_test_accuracy);
    assert_eq!(outcome.epochs.len(), config.epochs);
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert!(csv.starts_with("epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n"));
    assert_eq!(csv.lines().count(), config.epochs + 1);
    let weights = std::fs::read(dir.path().join("weights.safetensors")).unwrap();
    // safetensors: an 8-byte little-endian header length, then a JSON header naming the tensors
    // with the PyTorch nn.Sequential keys of cnn4.
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&weights[8..8 + header_len]).unwrap();
    for key in ["\"0.weight\"", "\"2.bias\"", "\"5.weight\"", "\"7.weight\"", "\"11.weight\"", "\"11.bias\""] {
        assert!(header.contains(key), "missing {key} in {header}");
    }
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["versions"]["libtorch"], "2.11.0");
}

#[test]
fn train_config_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("model = \"cnn4\"\nepochs = 0\n[lr]\nbase = 0.1\n", "epochs"),
        ("model = \"resnet9\"\nepochs = 1\n[lr]\nbase = 0.1\n", "unknown variant `resnet9`"),
        ("model = \"cnn4\"\nepochs = 2\n[lr]\nbase = -0.1\n", "lr.base"),
        ("model = \"cnn4\"\nepochs = 2\ndevice = \"tpu\"\n[lr]\nbase = 0.1\n", "device"),
        ("model = \"cnn4\"\nepochs = 2\n", "missing field `lr`"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let err = TrainConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains(needle) && err.contains("bad.toml"), "expected `{needle}` in {err}");
    }
}
