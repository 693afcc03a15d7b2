//! Process-wide allocator settings, so memory a burst borrowed goes back to the OS. Each argon2
//! hash borrows 19 MiB; 30 concurrent sign-ups must not leave the process 90 MiB larger.
//!
//! The `goftgu` binary allocates Rust's memory with mimalloc (`main.rs`; under glibc's malloc a
//! chat list spent a quarter of its CPU in malloc and free). By default mimalloc commits its
//! arenas eagerly and purges freed pages a second later; measured here, that left RSS at
//! 116 MiB after 30 concurrent sign-ups against 29 MiB under glibc. Lazy commit and immediate
//! purging bring it to 31 MiB at no measured cost in throughput.
//!
//! What still uses the system allocator (SQLite's C code, servers the tests run in-process) gets
//! a fixed mmap threshold: glibc's adaptive one would soon serve such blocks from its heap
//! arenas and keep them after they are freed (234 MiB after 30 sign-ups, 20 MiB with it).

/// Blocks at least this large are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 * 1024 * 1024;

/// mimalloc's option numbers (its `mi_option_e`, v3), which its Rust binding leaves unnamed:
/// whether arenas are committed eagerly (default 2: on overcommitting systems), and how many
/// milliseconds freed memory waits before it is purged (default 1,000).
const MI_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Call before anything allocates (the binary calls it from `.init_array`, before `main`).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it runs before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
    // SAFETY: mi_option_set is not thread-safe; it runs before other threads exist. The numbers
    // are checked against the library's defaults by the test below.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_PURGE_DELAY, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mimalloc_option_numbers_name_the_options_meant() {
        // Read before anything sets them: the documented defaults identify the options.
        // SAFETY: reading an option has no side effect beyond initialising it from the
        // environment.
        let (eager, delay) = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(MI_PURGE_DELAY),
            )
        };
        assert_eq!(
            (eager, delay),
            (2, 1000),
            "arena_eager_commit and purge_delay"
        );
    }
}
