//! Automatic mixed precision: inside an [`Autocast`] scope, libtorch runs the ops on its
//! reduced-precision list (convolutions, matrix products) in the scope's dtype and keeps the
//! ops on its fp32 list in fp32, exactly as `with torch.autocast(device_type, dtype):` does.
//! Gradients flow back through the casts, so parameters and their gradients stay fp32.

use std::os::raw::c_int;

use tch::{Device, Kind};

use crate::{TorchError, check};

unsafe extern "C" {
    fn proxyrobust_autocast_enter(
        device_type: c_int,
        dtype: c_int,
        previous_enabled: *mut c_int,
        previous_dtype: *mut c_int,
    ) -> c_int;
    fn proxyrobust_autocast_exit(
        device_type: c_int,
        previous_enabled: c_int,
        previous_dtype: c_int,
    ) -> c_int;
    fn proxyrobust_autocast_enabled(device_type: c_int) -> c_int;
}

/// c10::DeviceType of a tch device.
fn device_type(device: Device) -> c_int {
    match device {
        Device::Cpu => 0,
        Device::Cuda(_) => 1,
        Device::Mps => 13,
        Device::Vulkan => 10,
    }
}

/// c10::ScalarType of the two reduced-precision float kinds autocast supports.
fn reduced_dtype(kind: Kind) -> Result<c_int, TorchError> {
    match kind {
        Kind::Half => Ok(5),
        Kind::BFloat16 => Ok(15),
        other => Err(TorchError(format!(
            "autocast runs in Half or BFloat16, not {other:?}"
        ))),
    }
}

/// An autocast scope on one device type; dropping it restores the state it found (scopes
/// nest, and the cache of cast weights is cleared when the outermost one ends).
#[must_use = "autocast ends when the scope is dropped"]
pub struct Autocast {
    device_type: c_int,
    previous_enabled: c_int,
    previous_dtype: c_int,
}

impl Autocast {
    /// Enters autocast for `device`'s type in `dtype` (`Kind::BFloat16` or `Kind::Half`).
    pub fn enter(device: Device, dtype: Kind) -> Result<Self, TorchError> {
        let device_type = device_type(device);
        let dtype = reduced_dtype(dtype)?;
        let (mut previous_enabled, mut previous_dtype) = (0, 0);
        // SAFETY: both out-pointers are valid for writes; the shim catches every C++ exception.
        check(unsafe {
            proxyrobust_autocast_enter(
                device_type,
                dtype,
                &mut previous_enabled,
                &mut previous_dtype,
            )
        })?;
        Ok(Autocast {
            device_type,
            previous_enabled,
            previous_dtype,
        })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: plain integers; the shim catches every C++ exception. Restoring a state libtorch
        // itself reported cannot fail, so a failure here is only reported.
        let status = unsafe {
            proxyrobust_autocast_exit(self.device_type, self.previous_enabled, self.previous_dtype)
        };
        if let Err(e) = check(status) {
            eprintln!("warning: leaving autocast: {e}");
        }
    }
}

/// Whether autocast is on for `device`'s type on this thread.
pub fn autocast_enabled(device: Device) -> bool {
    // SAFETY: a plain integer argument; the shim catches every C++ exception.
    unsafe { proxyrobust_autocast_enabled(device_type(device)) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    /// A matrix product runs in bf16 inside the scope and in fp32 outside; scopes nest and
    /// restore the state they found.
    #[test]
    fn matmul_runs_in_the_scope_dtype_and_the_state_is_restored() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        assert!(!autocast_enabled(Device::Cpu));
        {
            let _outer = Autocast::enter(Device::Cpu, Kind::BFloat16).unwrap();
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
            {
                let _inner = Autocast::enter(Device::Cpu, Kind::BFloat16).unwrap();
                assert!(autocast_enabled(Device::Cpu));
            }
            assert!(autocast_enabled(Device::Cpu));
            // Ops on the fp32 list promote back.
            assert_eq!(
                a.matmul(&a).log_softmax(-1, Kind::Float).kind(),
                Kind::Float
            );
        }
        assert!(!autocast_enabled(Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }

    #[test]
    fn only_reduced_float_kinds_are_accepted() {
        let e = Autocast::enter(Device::Cpu, Kind::Double).err().unwrap();
        assert!(e.0.contains("Half or BFloat16"), "{e}");
    }
}
