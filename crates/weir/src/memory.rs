//! Giving memory freed by a configuration load back to the system.
//!
//! Loading a large mesh frees most of what it allocated (the YAML text and trees, the
//! validated resources, the previous table on a reload). mimalloc keeps freed pages
//! and returns them to the OS only after a delay and only when the freeing thread
//! allocates again; after a load the loading threads go idle, so the pages stayed
//! resident. Measured with `bench/scale.sh` (10,000 services, one worker): RSS 2 s after
//! ready 328 MB without this, 117 MB with it.
//!
//! Start-up also leaves the pages of code that only start-up runs (the YAML reader,
//! validation, the compiler, the command line) mapped: [`release_startup_code`] unmaps
//! them once serving has begun.
//!
//! [`Allocator`] is the global allocator: mimalloc, entered by its plain `malloc`
//! family when the alignment asked for is one every mimalloc block has.
//!
//! The one module where `unsafe_code` is allowed: the global allocator, a call into
//! mimalloc's C API that the `mimalloc` crate does not wrap, and `madvise(2)`, which no
//! safe wrapper offers.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

/// The alignment every block `mi_malloc` returns has when the size is a multiple of it
/// (mimalloc is a drop-in `malloc`: C's guarantee for `max_align_t`, 16 bytes on the
/// 64-bit targets weir builds for).
const MIN_ALIGN: usize = 16;

/// mimalloc, as the `mimalloc` crate offers it, except that ordinary layouts go to
/// `mi_malloc`/`mi_zalloc`/`mi_realloc` rather than their `_aligned` forms: the crate
/// sends every allocation to `mi_malloc_aligned`, whose path for blocks over 1 KiB (a
/// request's future, read buffers, header maps) is its generic one. Callgrind, one
/// proxied HTTP/1.1 request: 17 allocations, ~1,700 instructions in the aligned entry
/// points (5 of them ~210 each in the generic path).
#[derive(Debug)]
pub(crate) struct Allocator;

/// Whether `mi_malloc`'s own alignment serves `layout` (the rule Rust's `System`
/// allocator applies to `malloc`).
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every method hands mimalloc a layout's size (and alignment) and returns what
// it returns: a block of at least `size` bytes or null, as `GlobalAlloc` requires. The
// plain entry points are used only when `plain` holds: then the alignment is at most 16
// and at most the size, and the size is a multiple of the alignment (Rust layouts are),
// so the block is aligned as asked (mimalloc keeps `malloc`'s guarantee: aligned for any
// object of that size up to 16-byte alignment). Every block, from either family, is
// freed by `mi_free` (mimalloc frees aligned and plain blocks alike) and resized by
// `mi_realloc`/`mi_realloc_aligned`, which keep the contents up to the smaller size.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.align(), layout.size()) {
                libmimalloc_sys::mi_malloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.align(), layout.size()) {
                libmimalloc_sys::mi_zalloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract), so from mimalloc.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract);
        // the new block is aligned as `layout` asks, by the same rule as `alloc`.
        unsafe {
            if plain(layout.align(), new_size) {
                libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

/// Returns the memory the allocator holds but no longer uses (the calling thread's
/// free pages and the shared arenas' pending purges) to the OS.
pub(crate) fn release_unused() {
    // SAFETY: `mi_collect` takes no pointers and has no preconditions: mimalloc documents
    // it as callable at any time from any thread, and it only frees or decommits pages
    // that hold no live allocation, so no Rust object is touched. mimalloc is the
    // global allocator (main.rs), so the pages it collects are the ones Rust freed.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// One mapping of `/proc/self/smaps` that may be dropped from memory.
#[derive(Debug, PartialEq, Eq)]
struct Clean {
    start: usize,
    end: usize,
}

/// The executable's and shared libraries' code and read-only data mappings that hold
/// no page of their own: read-only (`r--p`/`r-xp`), file-backed, and with no anonymous
/// (copy-on-write) page, so every resident page is the file's own page-cache page. The
/// segment the dynamic linker relocates (RELRO) was writable while it did and holds
/// copied pages: `Anonymous` is non-zero there and it is left alone.
fn clean_code_mappings(smaps: &str) -> Vec<Clean> {
    let mut out = Vec::new();
    let mut current: Option<(Clean, bool)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            if let Some((c, true)) = current.take() {
                out.push(c);
            }
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let wanted = (perms == "r-xp" || perms == "r--p") && path.starts_with('/');
            current = Some((Clean { start, end }, wanted));
            continue;
        }
        if first == "Anonymous:"
            && fields.next() != Some("0")
            && let Some((_, wanted)) = current.as_mut()
        {
            *wanted = false;
        }
    }
    if let Some((c, true)) = current {
        out.push(c);
    }
    out
}

/// Drops the program's code and read-only data pages from this process's memory
/// (they stay in the page cache, shared, and come back on the next touch with a minor
/// fault). Start-up and a reload run code the serving loop never runs (the YAML reader,
/// validation, the compiler, the command line); without this their pages stayed counted
/// in the RSS for the life of the process: a file-backed fault maps the 64 KB around
/// the page touched, so the few hundred start-up functions held ~7 MB of a 17 MB text.
/// Measured on `bench/run.sh`'s configuration (one worker, after a `/ready` check):
/// RSS idle 11.8 MB → 5.7 MB; after a saturation run 16.7 → 12.2 MB (the serving
/// path's pages come back on its first requests, a minor fault each).
pub(crate) fn release_startup_code() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
    for m in clean_code_mappings(&smaps) {
        // SAFETY: `[start, end)` is a whole mapping of this process, taken from the
        // kernel's own list: page aligned, mapped. It is a private, read-only file
        // mapping with no anonymous page (checked just above from the same list), so
        // every page in it is an unmodified page of the file, and it cannot have been
        // written since (it is not writable; weir never `mprotect`s code). For such a
        // mapping MADV_DONTNEED only unmaps the pages: the next access maps the same
        // file page again, with the same bytes (the file cannot change under a running
        // executable: the kernel refuses writes to it, ETXTBSY, and a replaced file is a
        // new inode). No Rust object's memory is in these mappings, and no pointer into
        // them becomes invalid.
        unsafe {
            libc::madvise(m.start as *mut libc::c_void, m.end - m.start, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings_are_released() {
        let smaps = "\
55f6d2bca000-55f6d2f33000 r--p 00000000 fe:00 5309319 /work/weir
Rss:                1536 kB
Anonymous:             0 kB
55f6d2f33000-55f6d3c53000 r-xp 00369000 fe:00 5309319 /work/weir
Rss:                6872 kB
Anonymous:             0 kB
55f6d3c53000-55f6d3cb9000 r--p 01089000 fe:00 5309319 /work/weir
Rss:                 408 kB
Anonymous:           408 kB
55f6d3cb9000-55f6d3d1e000 rw-p 010ef000 fe:00 5309319 /work/weir
Anonymous:            20 kB
20000000000-20000380000 rw-p 00000000 00:00 0
Anonymous:           412 kB
7fcc2c913000-7fcc2ca69000 r-xp 00026000 fe:00 12 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
";
        let got = clean_code_mappings(smaps);
        assert_eq!(
            got,
            [
                Clean { start: 0x55f6d2bca000, end: 0x55f6d2f33000 },
                Clean { start: 0x55f6d2f33000, end: 0x55f6d3c53000 },
                Clean { start: 0x7fcc2c913000, end: 0x7fcc2ca69000 },
            ]
        );
    }

    #[test]
    fn blocks_are_aligned_as_their_layouts_ask() {
        let a = Allocator;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [align, 3 * align, 24.max(align), 1000 * align, 20_000] {
                let size = size.div_ceil(align) * align;
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero layout; the block is written within its size and
                // freed once, with the layout it was made with.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null() && (p as usize).is_multiple_of(align), "alloc {size}/{align}");
                    p.write_bytes(0xa5, size);
                    let q = a.realloc(p, layout, size * 2);
                    assert!(!q.is_null() && (q as usize).is_multiple_of(align), "realloc {size}/{align}");
                    assert_eq!(*q.add(size - 1), 0xa5, "contents kept");
                    a.dealloc(q, Layout::from_size_align(size * 2, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert!((z as usize).is_multiple_of(align) && *z.add(size - 1) == 0, "zeroed {size}/{align}");
                    a.dealloc(z, layout);
                }
            }
        }
    }

    #[test]
    fn released_code_still_runs() {
        release_startup_code();
        // Code and read-only data of this test binary are paged back in on use.
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 500_500);
        assert_eq!(format!("{:?}", Clean { start: 1, end: 2 }), "Clean { start: 1, end: 2 }");
    }
}
