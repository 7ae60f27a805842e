//! Start-up checks before the first job: enough free disk for downloads, and the models load
//! (which runs the CUDA self-check when WHISPERX_DEVICE=cuda). A failure is reported on the
//! ping URL as unhealthy, with the check and the reason, before the worker exits non-zero.

use std::path::Path;

/// MIN_FREE_DISK_MB default: room for a long download and its temporary files.
pub const DEFAULT_MIN_FREE_DISK_MB: u64 = 1024;

/// Free bytes on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(s.f_bavail as u64 * s.f_frsize as u64)
}

/// Whether `dir` has `min_mb` MiB free, or why not.
pub fn check_disk(dir: &Path, min_mb: u64) -> Result<u64, String> {
    let free = free_bytes(dir).map_err(|e| format!("cannot read free space of {}: {e}", dir.display()))?;
    if free < min_mb << 20 {
        return Err(format!("{} has {} MiB free, less than MIN_FREE_DISK_MB={min_mb}", dir.display(), free >> 20));
    }
    Ok(free)
}

/// PRINT_MOUNTS=1: the mounts and their free space, in the log.
pub fn log_mounts() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(dev), Some(at)) = (f.next(), f.next()) else { continue };
        if let Ok(free) = free_bytes(Path::new(at)) {
            tracing::info!("mount {at} ({dev}): {} MiB free", free >> 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_and_an_impossible_minimum_fails_naming_the_variable() {
        let dir = std::env::temp_dir();
        assert!(free_bytes(&dir).unwrap() > 0);
        assert!(check_disk(&dir, 0).is_ok());
        let e = check_disk(&dir, u64::MAX >> 21).unwrap_err();
        assert!(e.contains("MIN_FREE_DISK_MB"), "{e}");
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
    }
}
