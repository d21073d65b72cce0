//! The process's allocator: mimalloc for small blocks, the system's (glibc) for large ones.
//!
//! An upload allocates and frees many small blocks (headers, items, parser state) on two
//! worker threads; glibc's malloc was about 13 % of the coordinator's profile at 1 KiB
//! uploads, and mimalloc costs a fraction of that. But mimalloc keeps freed memory for
//! reuse, per thread, and with 1 MiB bodies allocated on one worker and freed on another
//! the peak RSS at c=64 ranged from 86 to 131 MiB between runs (glibc: 84-88). Large
//! blocks (bodies, I/O buffers) therefore go to glibc, which hands big blocks back to the
//! kernel as they are freed; see the README's design notes for the measurements.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of this size or more go to the system allocator.
const LARGE: usize = 64 * 1024;

pub struct SplitAllocator;

fn is_large(size: usize) -> bool {
    size >= LARGE
}

// SAFETY (for every method): each request goes to exactly one of two allocators chosen
// by its size, and the same size (the layout Rust passes back to `dealloc` and `realloc`
// is the one the block was allocated with) picks the same allocator to free or grow it.
// A `realloc` that crosses the threshold allocates in the other allocator, copies the
// smaller of the two sizes and frees the old block.
unsafe impl GlobalAlloc for SplitAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            unsafe { System.alloc(layout) }
        } else {
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size()) {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (is_large(layout.size()), is_large(new_size)) {
            (true, true) => unsafe { System.realloc(ptr, layout, new_size) },
            (false, false) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            _ => unsafe {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            },
        }
    }
}

/// Has glibc keep large blocks in one arena for all threads. By default each thread that
/// allocates gets an arena of its own (up to eight per core), and an arena holds on to
/// the memory its freed bodies leave: with 1 MiB bodies at c=64 on sink nodes, the peak
/// RSS was 95.9 and 96.9 MiB with the default and 87.7 MiB with one arena, at the same
/// CPU per upload. Large blocks are few (about one per upload), so one lock for them
/// costs nothing measurable. Call before other threads start.
pub fn one_arena_for_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of glibc's allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
