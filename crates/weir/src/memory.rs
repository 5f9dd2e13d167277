//! Giving memory freed by a configuration load back to the system.
//!
//! Loading a large mesh frees most of what it allocated (the YAML text and trees, the
//! validated resources, the previous table on a reload). mimalloc keeps freed pages
//! and returns them to the OS only after a delay and only when the freeing thread
//! allocates again; after a load the loading threads go idle, so the pages stayed
//! resident. Measured with `bench/scale.sh` (10,000 services, one worker): RSS 2 s after
//! ready 328 MB without this, 117 MB with it.
//!
//! The one module where `unsafe_code` is allowed: a call into mimalloc's C API that
//! the `mimalloc` crate does not wrap.
#![allow(unsafe_code)]

/// Returns the memory the allocator holds but no longer uses (the calling thread's
/// free pages and the shared arenas' pending purges) to the OS.
pub(crate) fn release_unused() {
    // SAFETY: `mi_collect` takes no pointers and has no preconditions: mimalloc documents
    // it as callable at any time from any thread, and it only frees or decommits pages
    // that hold no live allocation, so no Rust object is touched. mimalloc is the
    // global allocator (main.rs), so the pages it collects are the ones Rust freed.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
