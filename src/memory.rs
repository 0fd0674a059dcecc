//! How the process uses memory: freed blocks are kept for reuse instead of being handed back to
//! the kernel and faulted in again.
//!
//! At d = 128 a covariance is 128 KiB, just above glibc's initial `mmap` threshold, and glibc's
//! default trimming returns freed heap memory to the kernel between calls, so every W2 faulted
//! its matrices' pages in again (68,450 page faults in 500 repetitions); [`retain_freed_memory`]
//! keeps that memory in the process (2,974). Measurements: docs/benchmarks.md. Blocks above
//! [`MMAP_THRESHOLD`] (a covariance from d ≈ 2048) still get their own mapping: glibc allows no
//! higher threshold. Advising those to use transparent huge pages was tried and gave no
//! measurable gain (docs/benchmarks.md).

/// Blocks below this size come from glibc's heap, not from their own `mmap` (fixing the
/// threshold also stops glibc from raising it as blocks are freed).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// glibc returns free memory at the top of its heap to the kernel only beyond this much.
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Sets glibc's [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] for the whole process (libtorch's
/// tensors included), so that repeated computations reuse memory already mapped instead of
/// faulting it in again (the module documentation has the measurement). Call it once, first
/// thing in `main`.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; both values fit in a c_int. A
    // rejected setting (return value 0) leaves glibc's defaults, which are correct, only slower.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Minor page faults of the calling thread so far.
    fn thread_page_faults() -> i64 {
        // SAFETY: getrusage writes into the zeroed struct we pass.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
            usage.ru_minflt
        }
    }

    /// Once freed memory is retained, allocating, filling and freeing an 8 MiB block again does
    /// not fault its pages in again (glibc's defaults map and unmap it each time: 2,048 faults).
    #[test]
    fn freed_blocks_are_reused_without_page_faults() {
        retain_freed_memory();
        let faults = std::thread::spawn(|| {
            let cycle = || {
                let mut block = vec![0u8; 8 << 20];
                block.iter_mut().step_by(4096).for_each(|b| *b = 1);
                std::hint::black_box(&block);
            };
            cycle();
            let before = thread_page_faults();
            for _ in 0..5 {
                cycle();
            }
            thread_page_faults() - before
        })
        .join()
        .unwrap();
        assert!(
            faults < 200,
            "{faults} page faults in five reuses of a freed 8 MiB block"
        );
    }
}
