//! Speaker samples (`speaker_samples[].url`): downloaded with the job's guard, and kept in a
//! cache shared by the worker's jobs, so a sample that many jobs enrol is downloaded once.
//!
//! A sample's key is its URL without the query (a presigned URL's signature changes, the object
//! does not) plus what the server says of its content: its ETag, else its length
//! ([`Downloader::probe`]: a one-byte ranged GET). A server that says neither gets no caching:
//! the sample is downloaded into the job's directory each time. The engine keys its
//! voiceprint cache with the same string, so a cached sample is not embedded again either.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::download::{DownloadLimits, Downloader};
use crate::redact::redact;

/// Folder of `JOBS_DIR` holding the cached samples.
pub const SAMPLE_CACHE_DIR: &str = "speaker-samples";
/// Samples kept; the least recently used go first.
pub const MAX_CACHED_SAMPLES: usize = 64;
/// The largest sample downloaded (a voice sample is seconds to minutes of audio).
pub const MAX_SAMPLE_BYTES: u64 = 64 << 20;

/// A sample ready for the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchedSample {
    pub path: PathBuf,
    /// The cache key (None: the server identified nothing, no caching).
    pub key: Option<String>,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// The cache folder.
pub struct SampleCache {
    dir: PathBuf,
}

impl SampleCache {
    pub fn new(jobs_dir: &Path) -> Self {
        SampleCache { dir: jobs_dir.join(SAMPLE_CACHE_DIR) }
    }

    /// `url` from the cache, or downloaded by `downloader` (its guard, and at most
    /// [`MAX_SAMPLE_BYTES`]) into `job_dir/name` and then the cache.
    pub async fn fetch(
        &self,
        downloader: &Downloader,
        url: &str,
        job_dir: &Path,
        name: &str,
    ) -> Result<FetchedSample, String> {
        let probe = downloader.probe(url).await?;
        if let Some(len) = probe.length.filter(|&l| l > MAX_SAMPLE_BYTES) {
            return Err(format!(
                "{}: {len} bytes is more than a speaker sample may be ({MAX_SAMPLE_BYTES})",
                redact(url)
            ));
        }
        let key = sample_key(url, probe.etag.as_deref(), probe.length);
        let cached = key.as_ref().map(|k| self.dir.join(file_name(k)));
        if let Some(path) = cached.as_ref().filter(|p| p.is_file()) {
            // Touched, so the least recently used go first.
            let _ = std::fs::File::open(path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return Ok(FetchedSample { path: path.clone(), key, cached: true });
        }
        let limited = Downloader {
            resolver: downloader.resolver.clone(),
            gate: downloader.gate.clone(),
            policy: downloader.policy.clone(),
            limits: DownloadLimits {
                max_bytes: downloader.limits.max_bytes.min(MAX_SAMPLE_BYTES),
                timeout: downloader.limits.timeout,
            },
        };
        let dest = job_dir.join(name);
        limited.fetch(url, &dest).await?;
        let Some(cached) = cached else { return Ok(FetchedSample { path: dest, key: None, cached: false }) };
        match self.keep(&dest, &cached) {
            Ok(()) => Ok(FetchedSample { path: cached, key, cached: false }),
            Err(e) => {
                tracing::warn!("speaker sample cache: {e}");
                Ok(FetchedSample { path: dest, key, cached: false })
            }
        }
    }

    /// Copy `file` into the cache as `cached` (written beside it, then renamed: a reader never
    /// sees half a file), then drop the least recently used beyond [`MAX_CACHED_SAMPLES`].
    fn keep(&self, file: &Path, cached: &Path) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let partial = cached.with_extension(format!("partial-{}", std::process::id()));
        std::fs::copy(file, &partial).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        std::fs::rename(&partial, cached).map_err(|e| format!("cannot write {}: {e}", cached.display()))?;
        self.evict();
        Ok(())
    }

    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "audio"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= MAX_CACHED_SAMPLES {
            return;
        }
        files.sort();
        for (_, p) in &files[..files.len() - MAX_CACHED_SAMPLES] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The URL without its query and fragment, with the ETag (else the length); None when the
/// server gave neither.
pub fn sample_key(url: &str, etag: Option<&str>, length: Option<u64>) -> Option<String> {
    let mut u = reqwest::Url::parse(url).ok()?;
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    match (etag.map(str::trim).filter(|e| !e.is_empty()), length) {
        (Some(etag), _) => Some(format!("{u} etag {etag}")),
        (None, Some(len)) => Some(format!("{u} length {len}")),
        (None, None) => None,
    }
}

/// The cache's file for `key`.
fn file_name(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}.audio")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_drops_the_query_and_credentials_and_prefers_the_etag() {
        let a = sample_key("https://u:p@s3.example/b/alice.wav?X-Amz-Signature=1", Some("\"abc\""), Some(10));
        let b = sample_key("https://s3.example/b/alice.wav?X-Amz-Signature=2", Some("\"abc\""), Some(99));
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Some("https://s3.example/b/alice.wav etag \"abc\""));
        assert_eq!(
            sample_key("https://s3.example/b/alice.wav", None, Some(7)).as_deref(),
            Some("https://s3.example/b/alice.wav length 7")
        );
        assert_eq!(sample_key("https://s3.example/b/alice.wav", None, None), None);
        assert_ne!(file_name(a.as_deref().unwrap()), file_name("https://s3.example/b/alice.wav length 7"));
    }
}
