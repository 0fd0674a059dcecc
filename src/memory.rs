//! How the process uses memory: large blocks on transparent huge pages, freed blocks kept for
//! reuse instead of returned to the kernel.
//!
//! The theory core's dense matrices are large (a covariance at d = 3072 is 75 MB) and short-lived:
//! each Cholesky copy, congruence product and reduction workspace is fresh memory. With 4 KiB
//! pages, first touching 75 MB costs about 18,000 page faults (≈ 50 ms on the development
//! machine); [`HugePageAllocator`] advises such blocks to use 2 MiB pages (36 faults, and fewer
//! TLB misses in the products), as numpy does for its large arrays. At d = 128 the matrices are
//! 128 KiB, just above glibc's initial `mmap` threshold, and glibc's default trimming hands freed
//! heap memory back to the kernel between calls, so every W2 faulted its pages in again;
//! [`retain_freed_memory`] keeps that memory in the process. Measurements: docs/benchmarks.md.
//!
//! Where the kernel's transparent huge pages are `never`, or off Linux/glibc, both are no-ops.
//! Every block still comes from and returns to [`std::alloc::System`].

use std::alloc::{GlobalAlloc, Layout, System};

/// Size of a transparent huge page on x86-64 and most aarch64 kernels.
pub const HUGE_PAGE: usize = 2 << 20;

/// Blocks of at least this many bytes are advised: they always contain a whole aligned huge page.
pub const ADVISE_FROM: usize = 2 * HUGE_PAGE;

/// [`System`], plus `madvise(MADV_HUGEPAGE)` over the whole huge pages inside each block of at
/// least [`ADVISE_FROM`] bytes (the advice concerns pages not yet touched, so it is given before
/// the caller writes anything).
pub struct HugePageAllocator;

// SAFETY: every block is allocated and freed by `System` with the caller's layout; the advice
// only changes how the kernel backs pages inside the block, never its address or contents.
unsafe impl GlobalAlloc for HugePageAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        advised(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        advised(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with this layout (see `alloc`).
        advised(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }
}

/// Blocks below this size come from glibc's heap, not from their own `mmap` (fixing the
/// threshold also stops glibc from raising it as blocks are freed).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// glibc returns free memory at the top of its heap to the kernel only beyond this much.
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Sets glibc's [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] for the whole process (libtorch's
/// tensors included), so that repeated computations reuse memory already mapped instead of
/// faulting it in again; at d = 128, W2 made 2,974 page faults in 500 repetitions instead of
/// 68,450. Call it once, first thing in `main`.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; both values fit in a c_int. A
    // rejected setting (return value 0) leaves glibc's defaults, which are correct, only slower.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

/// Advises the whole huge pages of the block `[ptr, ptr + size)` and returns `ptr`.
fn advised(ptr: *mut u8, size: usize) -> *mut u8 {
    if !ptr.is_null() && size >= ADVISE_FROM {
        let (start, len) = whole_huge_pages(ptr as usize, size);
        if len > 0 {
            advise_huge_pages(start, len);
        }
    }
    ptr
}

/// The largest range of whole, aligned huge pages inside `[address, address + size)`:
/// `(start, length)`, length 0 when there is none.
pub fn whole_huge_pages(address: usize, size: usize) -> (usize, usize) {
    let start = address.next_multiple_of(HUGE_PAGE);
    let end = (address + size) / HUGE_PAGE * HUGE_PAGE;
    (start, end.saturating_sub(start))
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: usize, len: usize) {
    // SAFETY: the range lies inside a block we just obtained, so it is mapped; MADV_HUGEPAGE
    // neither moves nor changes its contents. A failure (THP compiled out) leaves the
    // ordinary pages, which is the correct fallback, so the result is ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_huge_pages_are_aligned_and_inside_the_block() {
        let h = HUGE_PAGE;
        assert_eq!(whole_huge_pages(0, 3 * h), (0, 3 * h));
        assert_eq!(whole_huge_pages(16, 3 * h), (h, 2 * h));
        assert_eq!(whole_huge_pages(h - 1, 2 * h + 1), (h, 2 * h));
        assert_eq!(whole_huge_pages(h + 4096, h), (2 * h, 0));
        assert_eq!(whole_huge_pages(5 * h + 8, h / 2), (6 * h, 0));
    }

    /// The `THPeligible` flag of the memory mapping holding `address`, from /proc/self/smaps.
    #[cfg(target_os = "linux")]
    fn huge_page_eligible(address: usize) -> Option<bool> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = range.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&address);
            } else if inside && let Some(flag) = line.strip_prefix("THPeligible:") {
                return Some(flag.trim() == "1");
            }
        }
        None
    }

    /// Whether the kernel gives huge pages to advised mappings (`always` or `madvise`).
    #[cfg(target_os = "linux")]
    fn kernel_honours_advice() -> Option<bool> {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
        Some(!mode.contains("[never]"))
    }

    /// A large block's interior is eligible for huge pages exactly when the kernel honours the
    /// advice (on `madvise` kernels, the default of most distributions, only because of it).
    #[cfg(target_os = "linux")]
    #[test]
    fn large_blocks_are_advised() {
        let Some(honoured) = kernel_honours_advice() else {
            return; // no THP support compiled into this kernel: nothing to advise
        };
        for zeroed in [false, true] {
            let layout = Layout::from_size_align(64 << 20, 8).unwrap();
            // SAFETY: non-zero size; freed below with the same layout.
            let block = unsafe {
                if zeroed {
                    HugePageAllocator.alloc_zeroed(layout)
                } else {
                    HugePageAllocator.alloc(layout)
                }
            };
            assert!(!block.is_null());
            let (start, len) = whole_huge_pages(block as usize, layout.size());
            assert!(len >= 30 * HUGE_PAGE);
            assert_eq!(huge_page_eligible(start + len / 2), Some(honoured));
            // SAFETY: allocated above with this layout.
            unsafe { HugePageAllocator.dealloc(block, layout) };
        }
    }

    /// Minor page faults of the calling thread so far.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
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
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
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

    #[test]
    fn realloc_keeps_contents_and_advises_the_grown_block() {
        let small = Layout::from_size_align(1024, 8).unwrap();
        // SAFETY: non-zero size; every pointer is used with the layout it was allocated with.
        unsafe {
            let p = HugePageAllocator.alloc(small);
            for i in 0..1024 {
                *p.add(i) = i as u8;
            }
            let q = HugePageAllocator.realloc(p, small, 16 << 20);
            assert!((0..1024).all(|i| *q.add(i) == i as u8));
            #[cfg(target_os = "linux")]
            if let Some(honoured) = kernel_honours_advice() {
                let (start, len) = whole_huge_pages(q as usize, 16 << 20);
                assert_eq!(huge_page_eligible(start + len / 2), Some(honoured));
            }
            HugePageAllocator.dealloc(q, Layout::from_size_align(16 << 20, 8).unwrap());
        }
    }
}
