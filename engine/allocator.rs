//! glibc malloc settings for a process that allocates and frees tensors of tens of megabytes
//! over and over (the encoder's activations, the diarization's batches).
//!
//! By default glibc serves every block above its dynamic mmap threshold (at most 32 MiB) with a
//! fresh `mmap` and gives it back with `munmap` when freed, so each such tensor pays a page fault
//! and the kernel's zeroing for every 4 KiB page, every time: on the diarization stage about a
//! quarter of the time. [`keep_large_blocks`] keeps freed blocks in the heap instead, for reuse.

/// Blocks below this come from the heap and return to it (glibc's `M_MMAP_THRESHOLD`): above
/// any tensor the models allocate.
pub const MMAP_THRESHOLD: usize = 1 << 30;
/// Free memory at the top of the heap beyond this goes back to the system (`M_TRIM_THRESHOLD`):
/// the batched encoder's activations (about 74 MB a tensor for 8 windows) and a VAD batch's
/// stay cached between uses. At 64 MiB the heap's top was trimmed and faulted in again batch
/// after batch: the noisy benchmark file spent 3.1 s in the kernel, 0.7 s at 256 MiB (wall
/// 13.1 → 11.1 s, peak RSS unchanged at 527 MiB).
pub const TRIM_THRESHOLD: usize = 256 << 20;
/// One arena (`M_ARENA_MAX`): the compute threads' freed blocks are reused by every thread, so
/// the cache of large blocks is not multiplied by the number of arenas.
pub const ARENA_MAX: usize = 1;

/// Apply the settings above; call once at start-up, before the models load. Returns whether glibc
/// accepted all three (always false off glibc, where it does nothing).
pub fn keep_large_blocks() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let settings = [
            (libc::M_ARENA_MAX, ARENA_MAX),
            (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ];
        // SAFETY: mallopt only changes the allocator's parameters; every value fits a C int.
        settings.iter().all(|&(param, value)| unsafe { libc::mallopt(param, value as libc::c_int) } == 1)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Give the heap's free memory back to the system (after a job, so an idle worker stays small).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Minor page faults of this process so far.
    fn minor_faults() -> i64 {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes the struct it is given.
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
        usage.ru_minflt
    }

    /// A freed 40 MiB block is reused without faulting its pages in again (without the settings
    /// each reuse faults all 10 240 pages).
    #[test]
    fn a_freed_large_block_is_reused_without_page_faults() {
        assert!(keep_large_blocks());
        const BYTES: usize = 40 << 20;
        let touch = || {
            let mut v = vec![0u8; BYTES];
            for i in (0..BYTES).step_by(4096) {
                v[i] = 1;
            }
            std::hint::black_box(&v);
        };
        touch();
        let before = minor_faults();
        touch();
        let faults = minor_faults() - before;
        assert!(faults < 1024, "{faults} page faults re-allocating a freed 40 MiB block");
    }
}
