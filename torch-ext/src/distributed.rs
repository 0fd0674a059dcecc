//! c10d process groups: libtorch's own ProcessGroupGloo (CPU tensors) and ProcessGroupNCCL
//! (CUDA tensors) behind a TCPStore rendezvous, as `torch.distributed.init_process_group` sets
//! them up, with the two collectives data-parallel training needs.

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_long, c_void};
use std::time::Duration;

use tch::Tensor;

use crate::{TorchError, check};

unsafe extern "C" {
    fn proxyrobust_pg_has_nccl() -> c_int;
    fn proxyrobust_pg_new(
        backend: c_int,
        master: *const c_char,
        port: c_int,
        rank: c_int,
        size: c_int,
        timeout_ms: c_long,
        out: *mut *mut c_void,
    ) -> c_int;
    fn proxyrobust_pg_all_reduce_sum(group: *mut c_void, tensor: *const c_void) -> c_int;
    fn proxyrobust_pg_broadcast(group: *mut c_void, tensor: *const c_void, root: c_int) -> c_int;
    fn proxyrobust_pg_free(group: *mut c_void);
}

/// The collective backend: Gloo for CPU tensors, NCCL for CUDA tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Gloo,
    Nccl,
}

/// Whether this build has the NCCL backend (it needs CUDA's and NCCL's headers at build time).
pub fn nccl_available() -> bool {
    // SAFETY: no arguments.
    unsafe { proxyrobust_pg_has_nccl() == 1 }
}

/// One process's membership of a group of `world_size` processes.
pub struct ProcessGroup {
    raw: *mut c_void,
    rank: usize,
    world_size: usize,
}

// SAFETY: c10d backends are used from any thread in PyTorch; this handle is only moved, and every
// call takes `&self` through the shim, which libtorch serialises per group.
unsafe impl Send for ProcessGroup {}

impl ProcessGroup {
    /// Joins the group: rank 0 hosts the TCPStore on `master_port`, the others connect to
    /// `master_addr`; every call (the rendezvous included) fails after `timeout`, so a process
    /// that died makes the others stop with an error instead of waiting for ever.
    pub fn new(
        backend: Backend,
        master_addr: &str,
        master_port: u16,
        rank: usize,
        world_size: usize,
        timeout: Duration,
    ) -> Result<Self, TorchError> {
        let master = CString::new(master_addr)
            .map_err(|_| TorchError("a master address without NUL bytes".into()))?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `master` outlives the call; `raw` is valid for writes; the shim catches every
        // C++ exception.
        check(unsafe {
            proxyrobust_pg_new(
                match backend {
                    Backend::Gloo => 0,
                    Backend::Nccl => 1,
                },
                master.as_ptr(),
                c_int::from(master_port),
                rank as c_int,
                world_size as c_int,
                timeout.as_millis().min(c_long::MAX as u128) as c_long,
                &mut raw,
            )
        })?;
        Ok(ProcessGroup {
            raw,
            rank,
            world_size,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Replaces `tensor` (contiguous) by its sum over the group.
    pub fn all_reduce_sum(&self, tensor: &Tensor) -> Result<(), TorchError> {
        // SAFETY: tch's handle points to an `at::Tensor` that lives as long as `tensor`; the
        // shim catches every C++ exception.
        check(unsafe { proxyrobust_pg_all_reduce_sum(self.raw, tensor.as_ptr() as *const c_void) })
    }

    /// Replaces `tensor` on every rank by rank `root`'s.
    pub fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<(), TorchError> {
        // SAFETY: as in `all_reduce_sum`.
        check(unsafe {
            proxyrobust_pg_broadcast(self.raw, tensor.as_ptr() as *const c_void, root as c_int)
        })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `proxyrobust_pg_new` and is freed once.
        unsafe { proxyrobust_pg_free(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// A free TCP port on the loopback interface.
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Two ranks (threads) on Gloo over the loopback: all-reduce sums, broadcast copies rank 0's.
    #[test]
    fn gloo_all_reduce_sums_and_broadcast_copies() {
        let port = free_port();
        let ranks: Vec<_> = (0..2)
            .map(|rank| {
                std::thread::spawn(move || {
                    let group = ProcessGroup::new(
                        Backend::Gloo,
                        "127.0.0.1",
                        port,
                        rank,
                        2,
                        Duration::from_secs(60),
                    )
                    .unwrap();
                    let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0]) * (rank as f64 + 1.0);
                    group.all_reduce_sum(&t).unwrap();
                    let b = Tensor::full([2], rank as f64 + 7.0, (Kind::Float, Device::Cpu));
                    group.broadcast(&b, 0).unwrap();
                    (
                        Vec::<f32>::try_from(&t).unwrap(),
                        Vec::<f32>::try_from(&b).unwrap(),
                    )
                })
            })
            .collect();
        for rank in ranks {
            let (sum, broadcast) = rank.join().unwrap();
            assert_eq!(sum, [3.0, 6.0, 9.0]);
            assert_eq!(broadcast, [7.0, 7.0]);
        }
    }

    /// A rank that never joins makes the rendezvous fail after the timeout, with an error.
    #[test]
    fn a_missing_rank_times_out_with_an_error() {
        let start = std::time::Instant::now();
        let e = ProcessGroup::new(
            Backend::Gloo,
            "127.0.0.1",
            free_port(),
            0,
            2,
            Duration::from_secs(2),
        )
        .err()
        .expect("a group of two with one member fails");
        assert!(start.elapsed() < Duration::from_secs(30), "{e}");
        assert!(!e.0.is_empty());
    }

    /// Where NCCL is built in but there is no GPU, joining an NCCL group fails with libtorch's
    /// message instead of aborting.
    #[test]
    fn nccl_without_a_gpu_is_an_error() {
        if !nccl_available() || tch::Cuda::is_available() {
            return;
        }
        let e = ProcessGroup::new(
            Backend::Nccl,
            "127.0.0.1",
            free_port(),
            0,
            1,
            Duration::from_secs(10),
        )
        .err()
        .expect("no GPU, no NCCL group");
        assert!(
            e.0.to_lowercase().contains("gpu") || e.0.to_lowercase().contains("cuda"),
            "{e}"
        );
    }
}
