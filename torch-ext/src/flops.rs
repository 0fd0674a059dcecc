//! Floating-point operations of a computation as PyTorch's profiler counts them
//! (`torch.profiler.profile(with_flops=True)`): 2·N·C_out·H_out·W_out·C_in·k_h·k_w per
//! convolution, 2·m·n·k per matrix product, one per element of `mul` and `add`; other ops
//! (pooling, normalisation, activations) count 0.

use crate::{TorchError, check};

unsafe extern "C" {
    fn proxyrobust_flops_start() -> i32;
    fn proxyrobust_flops_stop(flops: *mut u64) -> i32;
}

/// Runs `f` under the profiler and returns its result with the FLOPs of the ops it ran on this
/// thread. Not re-entrant: one count at a time per process.
pub fn count_flops<T>(f: impl FnOnce() -> T) -> Result<(T, u64), TorchError> {
    // SAFETY: no arguments; the shim catches every C++ exception.
    check(unsafe { proxyrobust_flops_start() })?;
    let value = f();
    let mut flops = 0u64;
    // SAFETY: `flops` is valid for writes; the shim catches every C++ exception.
    check(unsafe { proxyrobust_flops_stop(&mut flops) })?;
    Ok((value, flops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    /// A 3×3 convolution (2 → 4 channels, 8×8 output, batch 3) and a matrix product (3×5 by
    /// 5×7) counted against their closed forms.
    #[test]
    fn convolution_and_matmul_match_their_closed_forms() {
        let options = (Kind::Float, Device::Cpu);
        let x = Tensor::rand([3, 2, 8, 8], options);
        let w = Tensor::rand([4, 2, 3, 3], options);
        let (_, conv) =
            count_flops(|| x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)).unwrap();
        assert_eq!(conv, 2 * 3 * 4 * 8 * 8 * 2 * 3 * 3);
        let (a, b) = (Tensor::rand([3, 5], options), Tensor::rand([5, 7], options));
        let (_, mm) = count_flops(|| a.mm(&b)).unwrap();
        assert_eq!(mm, 2 * 3 * 5 * 7);
    }
}
