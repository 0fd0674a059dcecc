//! The process's global allocator: the system allocator, with large blocks advised to use
//! transparent huge pages.
//!
//! The theory core's dense matrices are large (a covariance at d = 3072 is 75 MB) and short-lived:
//! each Cholesky copy, congruence product and reduction workspace is fresh memory from `mmap`.
//! With 4 KiB pages, first touching 75 MB costs about 18,000 page faults (≈ 50 ms on the
//! development machine, about a quarter of a second per W2 at d = 3072, see docs/benchmarks.md);
//! with 2 MiB pages it costs 36, and the products see fewer TLB misses. numpy advises its large
//! arrays the same way (`MADV_HUGEPAGE`), so the W2 benchmark compares like with like.
//!
//! Where the kernel's transparent huge pages are `never` (or off Linux), the advice is a no-op.
//! Nothing else changes: every block comes from and returns to [`std::alloc::System`].

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
