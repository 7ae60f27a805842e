//! The on-disk layout huggingface_hub uses, so that caches written by Python (WhisperX,
//! Transformers) and by us are interchangeable:
//!
//! ```text
//! <cache>/models--{owner}--{name}/
//!     blobs/<etag>                          file contents, named by ETag (sha256 for LFS files)
//!     snapshots/<commit>/<filename>         relative symlink to ../../blobs/<etag>
//!     refs/<revision>                       the commit hash `revision` pointed at, no newline
//!     .no_exist/<commit>/<filename>         empty marker: the file is absent at that commit
//! ```
//!
//! See `repo_folder_name`, `_create_symlink` and `_cache_commit_hash_for_specific_revision` in
//! huggingface_hub's file_download.py.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Joins the repo type and the parts of the repo id into one folder name.
const REPO_ID_SEPARATOR: &str = "--";
/// Whisper checkpoints are model repos (datasets would be `datasets--...`).
const REPO_TYPE_FOLDER: &str = "models";
const BLOBS_DIR: &str = "blobs";
const SNAPSHOTS_DIR: &str = "snapshots";
const REFS_DIR: &str = "refs";
const NO_EXIST_DIR: &str = ".no_exist";
/// Suffix of a blob still being written; only ever renamed into place once complete and verified.
pub(crate) const INCOMPLETE_SUFFIX: &str = ".incomplete";
/// A full git commit hash (huggingface_hub's `REGEX_COMMIT_HASH`).
const COMMIT_HASH_LEN: usize = 40;

/// Distinguishes the temporary files of concurrent downloads in one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether `s` is a full commit hash (40 lowercase hex digits), as opposed to a branch or tag.
pub(crate) fn is_commit_hash(s: &str) -> bool {
    s.len() == COMMIT_HASH_LEN && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks that a name coming from the network (an ETag) or from a caller (a file name in the
/// repo) can be used as a path below the cache without escaping it.
fn check_relative(what: &str, name: &str, allow_dirs: bool) -> Result<()> {
    let bad_component = |c: &str| c.is_empty() || c == "." || c == ".." || c.contains('\\');
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || (!allow_dirs && name.contains('/'))
        || name.split('/').any(bad_component);
    if bad {
        return Err(Error::Hub(format!("refusing unsafe {what} `{name}` as a cache path")));
    }
    Ok(())
}

/// One repo's folder in the hub cache.
pub(crate) struct RepoCache {
    root: PathBuf,
}

impl RepoCache {
    /// The folder for `repo` (`owner/name`) under the hub cache directory.
    pub(crate) fn new(cache_dir: &Path, repo: &str) -> Result<Self> {
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\')) {
            return Err(Error::Hub(format!("invalid repo id `{repo}`: expected `owner/name`")));
        }
        let folder = [REPO_TYPE_FOLDER, parts[0], parts[1]].join(REPO_ID_SEPARATOR);
        Ok(RepoCache { root: cache_dir.join(folder) })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blob_path(&self, etag: &str) -> Result<PathBuf> {
        check_relative("etag", etag, false)?;
        Ok(self.root.join(BLOBS_DIR).join(etag))
    }

    /// A fresh temporary path next to the blob, unique per process and call: two downloads of
    /// the same blob (threads or processes) never write into one file — the reason newer
    /// huggingface_hub versions also add a random part to `<etag>.incomplete`.
    pub(crate) fn incomplete_path(&self, etag: &str) -> Result<PathBuf> {
        let blob = self.blob_path(etag)?;
        let unique = format!("{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed));
        Ok(blob.with_file_name(format!("{etag}.{unique}{INCOMPLETE_SUFFIX}")))
    }

    pub(crate) fn snapshot_dir(&self, commit: &str) -> Result<PathBuf> {
        check_commit(commit)?;
        Ok(self.root.join(SNAPSHOTS_DIR).join(commit))
    }

    pub(crate) fn snapshot_file(&self, commit: &str, filename: &str) -> Result<PathBuf> {
        check_relative("file name", filename, true)?;
        Ok(self.snapshot_dir(commit)?.join(filename))
    }

    /// The commit `revision` stands for: itself if it is a commit hash, else what `refs/` says.
    /// `None` if this revision was never cached.
    pub(crate) fn resolve_revision(&self, revision: &str) -> Result<Option<String>> {
        if is_commit_hash(revision) {
            return Ok(Some(revision.to_string()));
        }
        let path = self.ref_path(revision)?;
        match fs::read_to_string(&path) {
            Ok(text) => {
                let commit = text.trim().to_string();
                check_commit(&commit)
                    .map_err(|_| Error::Hub(format!("{}: not a commit hash: `{commit}`", path.display())))?;
                Ok(Some(commit))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Records that `revision` (a branch or tag) points at `commit`, atomically so that a reader
    /// never sees half a hash. Nothing to record when the revision is the commit itself.
    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        check_commit(commit)?;
        if revision == commit {
            return Ok(());
        }
        let path = self.ref_path(revision)?;
        if fs::read_to_string(&path).is_ok_and(|old| old == commit) {
            return Ok(()); // unchanged: do not require write access to a shared cache
        }
        create_parent(&path)?;
        let tmp = path.with_file_name(format!(
            "{}.{}-{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("ref"),
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::write(&tmp, commit).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&path, e)
        })
    }

    /// Points `snapshots/<commit>/<filename>` at `blobs/<etag>` with a relative symlink (so the
    /// cache folder can be moved), replacing whatever was there. Returns the snapshot path.
    pub(crate) fn link_snapshot(&self, commit: &str, filename: &str, etag: &str) -> Result<PathBuf> {
        let blob = self.blob_path(etag)?;
        let dst = self.snapshot_file(commit, filename)?;
        create_parent(&dst)?;
        match fs::symlink_metadata(&dst) {
            Ok(_) => fs::remove_file(&dst).map_err(|e| Error::io(&dst, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&dst, e)),
        }
        // snapshots/<commit>/a/b.json is one level deeper than snapshots/<commit>/b.json.
        let depth = 2 + filename.matches('/').count();
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push(BLOBS_DIR);
        target.push(etag);
        place_link(&target, &blob, &dst)?;
        Ok(dst)
    }

    /// Remembers that `filename` does not exist at `commit`, as huggingface_hub does, so that
    /// Python readers of this cache also skip asking for it. Best effort: it is only a hint.
    /// Whether a `.no_exist` marker says `filename` is absent at `commit`.
    pub(crate) fn known_missing(&self, commit: &str, filename: &str) -> bool {
        check_commit(commit).is_ok()
            && check_relative("file name", filename, true).is_ok()
            && self.root.join(NO_EXIST_DIR).join(commit).join(filename).is_file()
    }

    pub(crate) fn mark_missing(&self, commit: &str, filename: &str) {
        if check_commit(commit).is_err() || check_relative("file name", filename, true).is_err() {
            return;
        }
        let path = self.root.join(NO_EXIST_DIR).join(commit).join(filename);
        if create_parent(&path).is_ok() {
            if let Err(e) = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path) {
                tracing::debug!("could not record missing file {}: {e}", path.display());
            }
        }
    }

    fn ref_path(&self, revision: &str) -> Result<PathBuf> {
        // Branches such as `refs/pr/1` nest, exactly as huggingface_hub stores them.
        check_relative("revision", revision, true)?;
        Ok(self.root.join(REFS_DIR).join(revision))
    }
}

fn check_commit(commit: &str) -> Result<()> {
    if is_commit_hash(commit) {
        Ok(())
    } else {
        Err(Error::Hub(format!("`{commit}` is not a 40-character commit hash")))
    }
}

pub(crate) fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => fs::create_dir_all(dir).map_err(|e| Error::io(dir, e)),
        None => Ok(()),
    }
}

#[cfg(unix)]
fn place_link(target: &Path, _blob: &Path, dst: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, dst).map_err(|e| Error::io(dst, e))
}

/// Without reliable symlinks, huggingface_hub falls back to a copy of the blob; so do we.
#[cfg(not(unix))]
fn place_link(_target: &Path, blob: &Path, dst: &Path) -> Result<()> {
    fs::copy(blob, dst).map(|_| ()).map_err(|e| Error::io(dst, e))
}
