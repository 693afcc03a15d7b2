//! Process-wide allocator settings. Each argon2 hash borrows 19 MiB; glibc's adaptive mmap
//! threshold would soon serve such blocks from its heap arenas and keep them after they are
//! freed (measured: RSS 234 MiB after 30 sign-ups, 20 MiB with this setting). A fixed threshold
//! sends every large block to mmap, so it goes back to the OS when freed.

/// Blocks at least this large are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 * 1024 * 1024;

/// Call first thing in `main`, before the runtime starts its threads.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it runs before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
