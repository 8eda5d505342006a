//! The allocators' settings: freed memory goes back to the system.
//!
//! Rust code allocates with mimalloc (the global allocator); ONNX Runtime,
//! a C++ library, with glibc's malloc. With their defaults a process kept
//! much of what it had freed: the bench's peak memory grew with every
//! worker it had run before (about 700 MiB, and 1.17 to 1.23 x for a 5x
//! corpus run after two others), and a worker would keep the memory of the
//! generations it retired. With these settings: about 600 MiB and 1.12 x.
//! Without transparent huge pages for the process: about 550 MiB.

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3), which
/// libmimalloc-sys does not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed pages before purging them: long enough
/// that pages freed and reused at once (tantivy's indexing arena, parsing)
/// are not given back and faulted in again.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Blocks at least this large get a mapping of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const OWN_MAPPING_BYTES: libc::c_int = 256 * 1024;

/// Call first thing in `main`, before other threads start.
///
/// - mimalloc purges freed pages after [`PURGE_DELAY_MS`] instead of a
///   second (with no delay at all, the 5x run stayed within 1.02 to 1.12 x,
///   but tantivy wrote at half the rate).
/// - No transparent huge pages. mimalloc asks for them on its 1 GiB arena
///   (`MADV_HUGEPAGE`), so every first touch of a 2 MiB range zeroed all of
///   it, again after each purge, and resident memory grew in 2 MiB steps:
///   zeroing huge pages took about a sixth of the CPU docpipe used beside
///   the model lanes. The arena is reserved before `main`, so the process
///   opts out as a whole (`PR_SET_THP_DISABLE`, as mimalloc itself does
///   when told to before it starts); ONNX Runtime's buffers do not ask for
///   huge pages.
/// - glibc's mmap threshold is fixed. By default glibc raises it (up to
///   32 MiB) whenever a mapped block is freed, after which blocks that size
///   come from the heap and stay resident once freed; an ONNX Runtime
///   session's weights and arenas, about 100 MiB a session, are such blocks.
pub fn configure() {
    #[cfg(target_os = "linux")]
    opt_out_of_transparent_huge_pages();
    // SAFETY: both calls only change an allocator parameter, before any
    // other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_BYTES);
    }
}

/// No transparent huge pages for any of the process's memory, from now on.
#[cfg(target_os = "linux")]
fn opt_out_of_transparent_huge_pages() {
    // SAFETY: sets a flag of the calling process; no memory is touched.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_opts_out_of_transparent_huge_pages() {
        super::opt_out_of_transparent_huge_pages();
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs is mounted");
        let thp = status
            .lines()
            .find_map(|line| line.strip_prefix("THP_enabled:"))
            .map(str::trim);
        assert_eq!(thp, Some("0"), "{status}");
    }
}
