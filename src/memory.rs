//! The allocators' settings: freed memory goes back to the system.
//!
//! Rust code allocates with mimalloc (the global allocator); ONNX Runtime,
//! a C++ library, with glibc's malloc. With their defaults, a process kept
//! what it had freed: the bench's peak memory grew by about 100 MiB with
//! every worker it had run before (1.2 x for the same work), and a worker
//! would keep the memory of every generation it retired.

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3), which
/// libmimalloc-sys does not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Blocks at least this large get a mapping of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const OWN_MAPPING_BYTES: libc::c_int = 256 * 1024;

/// Call first thing in `main`, before other threads start.
///
/// - mimalloc purges freed pages at once (by default a second later, but
///   pages of threads that have ended were never purged until reused).
/// - glibc's mmap threshold is fixed. By default glibc raises it (up to
///   32 MiB) whenever a mapped block is freed, after which blocks that size
///   come from the heap and stay resident once freed; an ONNX Runtime
///   session's weights and arenas, about 100 MiB a session, are such blocks.
pub fn configure() {
    // SAFETY: both calls only change an allocator parameter, before any
    // other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_BYTES);
    }
}
