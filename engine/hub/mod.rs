//! Hugging Face hub client: fetch Whisper checkpoints by name into the huggingface_hub cache.
//!
//! The cache layout, environment variables and HTTP exchange follow the Python `huggingface_hub`
//! library, so a cache filled by WhisperX / Transformers is reused as is and vice versa:
//! - [`config`]: `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN`, `HF_HUB_OFFLINE`;
//! - [`names`]: `tiny.en`, `large-v3`, `turbo`... -> `openai/whisper-*`;
//! - `cache`: `models--{owner}--{name}/{blobs,snapshots,refs}`;
//! - `download`: HEAD for the commit and ETag, GET of the blob (auth never sent to the CDN).

mod cache;
pub mod config;
mod download;
pub mod names;
pub mod torch_hub;

use std::fs;
use std::path::{Path, PathBuf};

pub use config::HubConfig;
pub use names::repo_for_model;

use crate::error::{Error, Result};
use cache::RepoCache;
use download::{FileMeta, Head, HeadError, Remote};

/// The branch huggingface_hub resolves when no revision is given.
pub const DEFAULT_REVISION: &str = "main";

/// Whether a snapshot is unusable without a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Required {
    /// Missing -> error naming the repo and file.
    Yes,
    /// Missing (404 on the hub, absent from the cache) -> skipped.
    No,
}

/// What a Transformers-format Whisper repo must (or may) provide for us to run it.
pub const WHISPER_FILES: &[(&str, Required)] = &[
    ("config.json", Required::Yes),
    ("model.safetensors", Required::Yes),
    ("tokenizer.json", Required::Yes),
    ("generation_config.json", Required::No),
    ("preprocessor_config.json", Required::No),
];

/// A local model directory if `name_or_path` is one; otherwise the cached snapshot of the Whisper
/// model it names (`tiny.en`, `large-v3`, `owner/name`...), downloading what is missing.
pub fn resolve_whisper(cfg: &HubConfig, name_or_path: &str) -> Result<PathBuf> {
    let path = Path::new(name_or_path);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    // `./x`, `/x`, `~/x` are meant as paths; a repo id never starts like that.
    if path.is_absolute() || name_or_path.starts_with('.') || name_or_path.starts_with('~') {
        return Err(Error::Hub(format!("model directory `{name_or_path}` does not exist")));
    }
    let repo = repo_for_model(name_or_path);
    tracing::info!("model `{name_or_path}` -> hub repo `{repo}`");
    snapshot_download(cfg, &repo, DEFAULT_REVISION, WHISPER_FILES)
}

/// Makes `files` of `repo` at `revision` present in the cache and returns the snapshot directory
/// `<cache>/models--{owner}--{name}/snapshots/<commit>`.
///
/// Online, every file gets a HEAD (as huggingface_hub does, to notice updates) and a GET only if
/// its blob is not already cached. The first answer's commit pins the rest, so that all files come
/// from one commit even if the branch moves meanwhile. If the hub cannot be reached (or answers
/// with an error other than "no such file"), a complete cached snapshot is used instead.
/// Offline (`cfg.offline`), only the cache is read.
pub fn snapshot_download(cfg: &HubConfig, repo: &str, revision: &str, files: &[(&str, Required)]) -> Result<PathBuf> {
    let cache = RepoCache::new(&cfg.cache_dir, repo)?;
    if cfg.offline {
        return cached_snapshot(&cache, repo, revision, files, "HF_HUB_OFFLINE is set");
    }
    let remote = Remote::new(&cfg.endpoint, cfg.token.clone())?;
    let mut commit: Option<String> = None;

    for &(filename, required) in files {
        let asked = commit.as_deref().unwrap_or(revision);
        let head = match remote.head(repo, asked, filename) {
            Ok(head) => head,
            Err(failure) => return fall_back_to_cache(&cache, repo, revision, files, filename, failure),
        };
        match head {
            Head::Found(meta) => {
                if commit.is_none() {
                    cache.write_ref(revision, &meta.commit)?;
                }
                let pinned = commit.get_or_insert_with(|| meta.commit.clone());
                if *pinned != meta.commit {
                    return Err(Error::Hub(format!(
                        "{repo}/{filename}: the hub answered for commit {} while asking for {pinned}",
                        meta.commit
                    )));
                }
                fetch_file(&remote, &cache, repo, filename, &meta)?;
            }
            Head::Missing { commit: answered } => {
                if required == Required::Yes {
                    let at =
                        if asked == revision { format!("`{revision}`") } else { format!("`{revision}` ({asked})") };
                    return Err(Error::Hub(format!("repo `{repo}` has no file `{filename}` at revision {at}")));
                }
                tracing::info!("{repo}: optional `{filename}` is not in the repo; skipped");
                if let Some(c) = answered.as_deref().or(commit.as_deref()) {
                    cache.mark_missing(c, filename);
                }
                if commit.is_none() {
                    if let Some(c) = answered {
                        cache.write_ref(revision, &c)?;
                        commit = Some(c);
                    }
                }
            }
        }
    }
    let commit = commit.ok_or_else(|| {
        Error::Hub(format!("repo `{repo}`: none of the requested files exist at revision `{revision}`"))
    })?;
    let dir = cache.snapshot_dir(&commit)?;
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

/// Links one file into the snapshot, downloading its blob unless the cache already has it
/// (same ETag = same bytes, whichever commit it came with).
fn fetch_file(remote: &Remote, cache: &RepoCache, repo: &str, filename: &str, meta: &FileMeta) -> Result<()> {
    let blob = cache.blob_path(&meta.etag)?;
    if blob.is_file() {
        tracing::info!("{repo}/{filename}: up to date in the cache");
    } else {
        let size = meta.size.map_or_else(|| "unknown size".to_string(), |s| format!("{s} bytes"));
        tracing::info!("{repo}/{filename}: downloading ({size})");
        let tmp = cache.incomplete_path(&meta.etag)?;
        remote.download(repo, filename, meta, &tmp)?;
        fs::rename(&tmp, &blob).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&blob, e)
        })?;
        tracing::info!("{repo}/{filename}: done");
    }
    cache.link_snapshot(&meta.commit, filename, &meta.etag)?;
    Ok(())
}

/// After a failed HEAD: the cached snapshot if it is complete, else the original error.
/// The cached snapshot in place of the hub's answer when asking for `failed` went wrong; the
/// hub's error when the cache cannot stand in for it. The cache stands in only if it holds
/// `failed` or knows it to be absent: an optional file neither cached nor known absent (say a
/// download this very call began, or a repo only ever half fetched) would otherwise pass for
/// absent and hide the error (an align model's `model.safetensors` after an HTTP 500 would send
/// the caller for `pytorch_model.bin` and report that as missing).
fn fall_back_to_cache(
    cache: &RepoCache,
    repo: &str,
    revision: &str,
    files: &[(&str, Required)],
    failed: &str,
    failure: HeadError,
) -> Result<PathBuf> {
    let error = failure.into_error();
    let knows_failed = |dir: &Path| {
        let commit = dir.file_name().and_then(|c| c.to_str()).unwrap_or_default();
        dir.join(failed).is_file() || cache.known_missing(commit, failed)
    };
    match cached_snapshot(cache, repo, revision, files, "the hub could not be used") {
        Ok(dir) if knows_failed(&dir) => {
            tracing::warn!("{error}; using the cached snapshot {}", dir.display());
            Ok(dir)
        }
        _ => Err(error),
    }
}

/// The cached snapshot of `revision`, without any network access; `why` says why the cache is
/// all we have, for the error message.
fn cached_snapshot(
    cache: &RepoCache,
    repo: &str,
    revision: &str,
    files: &[(&str, Required)],
    why: &str,
) -> Result<PathBuf> {
    let commit = cache.resolve_revision(revision)?.ok_or_else(|| {
        Error::Hub(format!(
            "{why} and repo `{repo}` (revision `{revision}`) is not in the cache {}; \
             download it once online, or pass a local model directory",
            cache.root().display()
        ))
    })?;
    for &(filename, required) in files {
        let path = cache.snapshot_file(&commit, filename)?;
        if required == Required::Yes && !path.is_file() {
            return Err(Error::Hub(format!(
                "{why} and file `{filename}` of repo `{repo}` is not in the cache (expected {})",
                path.display()
            )));
        }
    }
    tracing::info!("{repo}: using cached snapshot {commit}");
    cache.snapshot_dir(&commit)
}
