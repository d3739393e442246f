//! The module's global allocator: free lists of small blocks in front of
//! the WASI libc allocator.
//!
//! A request allocates and frees about a hundred small strings and
//! vectors: header names and values, target labels, decoded values. dlmalloc
//! and its shims spend about 100 wasm instructions on each allocation and on
//! each free, and a block taken from or put back on a free list about 40.
//! Blocks of up to [`MAX_SMALL_BYTES`] are rounded up to a multiple of
//! [`CLASS_BYTES`], and each size keeps at most [`MAX_CACHED`] free blocks, so
//! the lists hold at most about 140 KB. Larger blocks and blocks beyond that
//! bound go to libc.
//!
//! The lists are not synchronised: `wasm32-wasip1` runs one thread per
//! instance, and the allocator is installed only there.

#![allow(unsafe_code)] // A global allocator: the first word of each free block links the list.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Size step of the block classes, and the alignment of every small block.
const CLASS_BYTES: usize = 16;
/// Number of block classes.
const CLASSES: usize = 16;
/// The largest allocation served from a free list.
const MAX_SMALL_BYTES: usize = CLASS_BYTES * CLASSES;
/// Free blocks kept per class.
const MAX_CACHED: u32 = 64;

struct Lists {
    /// For each class, the first free block, whose first word points to the
    /// next one.
    heads: [*mut u8; CLASSES],
    /// For each class, the number of free blocks on its list.
    counts: [u32; CLASSES],
}

pub struct SmallBlocks {
    lists: UnsafeCell<Lists>,
}

// SAFETY: the allocator is installed only on `wasm32` without the atomics
// feature, where an instance has a single thread.
unsafe impl Sync for SmallBlocks {}

impl SmallBlocks {
    pub const fn new() -> Self {
        SmallBlocks {
            lists: UnsafeCell::new(Lists {
                heads: [ptr::null_mut(); CLASSES],
                counts: [0; CLASSES],
            }),
        }
    }
}

/// Returns the class of an allocation, or `None` when libc serves it
/// directly.
fn class(layout: Layout) -> Option<usize> {
    (layout.size() <= MAX_SMALL_BYTES && layout.align() <= CLASS_BYTES)
        .then(|| layout.size().saturating_sub(1) / CLASS_BYTES)
}

/// Returns the layout with which libc allocates a block of class `class`.
fn block_layout(class: usize) -> Layout {
    // SAFETY: the size is a positive multiple of the alignment, a power of
    // two, and far below `isize::MAX`.
    unsafe { Layout::from_size_align_unchecked((class + 1) * CLASS_BYTES, CLASS_BYTES) }
}

// SAFETY: every block handed out is either fresh from libc with the class
// layout or was handed out before with that layout and then freed, and a
// freed block is reused only after its list link is read.
unsafe impl GlobalAlloc for SmallBlocks {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else {
            return unsafe { System.alloc(layout) };
        };
        let lists = unsafe { &mut *self.lists.get() };
        let head = lists.heads[class];
        if head.is_null() {
            return unsafe { System.alloc(block_layout(class)) };
        }
        lists.heads[class] = unsafe { head.cast::<*mut u8>().read() };
        lists.counts[class] -= 1;
        head
    }

    #[inline(never)]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class(layout) else {
            return unsafe { System.dealloc(block, layout) };
        };
        let lists = unsafe { &mut *self.lists.get() };
        if lists.counts[class] >= MAX_CACHED {
            return unsafe { System.dealloc(block, block_layout(class)) };
        }
        unsafe { block.cast::<*mut u8>().write(lists.heads[class]) };
        lists.heads[class] = block;
        lists.counts[class] += 1;
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees that `new_size`, rounded up to the
        // alignment, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            (Some(old), Some(new)) if old == new => block,
            _ => {
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                moved
            }
        }
    }
}
