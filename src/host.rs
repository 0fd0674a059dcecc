//! Reading tensors on the host. Every copy of a tensor's values to the host that the training
//! loop, the attacks and evaluation make goes through these functions, which count them
//! ([`reads`]): on a GPU each one waits for the device to finish its queued work, so the hot
//! loops (a training step, PGD, APGD, TRADES) make none, and the tests check that they don't.

use std::sync::atomic::{AtomicU64, Ordering};

use tch::{Kind, Tensor};

static READS: AtomicU64 = AtomicU64::new(0);

/// How many host reads this process has made through this module.
pub fn reads() -> u64 {
    READS.load(Ordering::Relaxed)
}

fn copied(t: &Tensor, kind: Kind) -> Tensor {
    READS.fetch_add(1, Ordering::Relaxed);
    t.to_kind(kind).to_device(tch::Device::Cpu)
}

/// The values of `t`, flattened, as f64 (empty when libtorch refuses the conversion).
pub fn to_f64s(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(copied(t, Kind::Double).reshape([-1])).unwrap_or_default()
}

/// The values of `t`, flattened, as booleans (non-zero is true).
pub fn to_bools(t: &Tensor) -> Vec<bool> {
    Vec::<i64>::try_from(copied(t, Kind::Int64).reshape([-1]))
        .unwrap_or_default()
        .into_iter()
        .map(|v| v != 0)
        .collect()
}

/// The single value of a one-element tensor as f64.
pub fn scalar(t: &Tensor) -> f64 {
    copied(t, Kind::Double).reshape([-1]).double_value(&[0])
}
