//! What libtorch offers and tch 0.24 does not bind, behind a small Rust API. The C++ side
//! (`src/shim.cpp`) is compiled against the same libtorch tch links, so these calls run
//! PyTorch's own code.
//!
//! - [`Autocast`]: PyTorch's automatic mixed precision (`torch.autocast(device, dtype)`) for
//!   any device type and reduced dtype; tch's `autocast` only toggles the CUDA default (fp16).
//! - [`count_flops`]: the FLOPs PyTorch's profiler counts for a computation (model-FLOP
//!   utilisation in the benchmarks).
//! - [`ProcessGroup`]: c10d's Gloo and NCCL process groups with a TCPStore rendezvous, for
//!   data-parallel training (all-reduce, broadcast).

mod autocast;
mod distributed;
mod flops;

pub use autocast::{Autocast, autocast_enabled};
pub use distributed::{Backend, ProcessGroup, nccl_available};
pub use flops::count_flops;

/// A failure inside libtorch, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchError(pub String);

impl std::fmt::Display for TorchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "libtorch: {}", self.0)
    }
}

impl std::error::Error for TorchError {}

unsafe extern "C" {
    fn proxyrobust_last_error() -> *const std::os::raw::c_char;
}

/// `Ok(())` for a shim status of 0, else the message the shim recorded.
fn check(status: i32) -> Result<(), TorchError> {
    if status == 0 {
        return Ok(());
    }
    // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated message buffer,
    // valid until the next shim call on this thread; it is copied at once.
    let message = unsafe { std::ffi::CStr::from_ptr(proxyrobust_last_error()) };
    Err(TorchError(message.to_string_lossy().into_owned()))
}
