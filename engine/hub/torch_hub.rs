//! torch.hub's checkpoint cache, where torchaudio keeps its bundle files (torch `hub.py`
//! `get_dir`, `load_state_dict_from_url`): `$TORCH_HOME/hub/checkpoints/<file>`, `TORCH_HOME`
//! being `$XDG_CACHE_HOME/torch` (`~/.cache/torch`) when unset. A file already there is used as
//! is; otherwise it is downloaded from `base_url/<file>` (torchaudio's address unless told
//! otherwise) into a temporary name and renamed when complete.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

const TORCH_SUBDIR: &str = "torch";
const HUB_SUBDIR: &str = "hub";
const CHECKPOINTS_SUBDIR: &str = "checkpoints";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CHUNK_BYTES: usize = 1 << 20;

/// Where torch.hub checkpoints live and where missing ones come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorchHubConfig {
    /// `$TORCH_HOME/hub/checkpoints`.
    pub checkpoints_dir: PathBuf,
    /// Base address of the files (no trailing slash).
    pub base_url: String,
    /// Never download (HF_HUB_OFFLINE, or the caller's choice).
    pub offline: bool,
}

impl TorchHubConfig {
    /// `TORCH_HOME`, `XDG_CACHE_HOME` and `HOME` through `var`; `base_url` for downloads.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, base_url: &str, offline: bool) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let home = var("HOME").map(PathBuf::from).unwrap_or_default();
        let torch_home = match var("TORCH_HOME") {
            Some(p) => PathBuf::from(p),
            None => var("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".cache")).join(TORCH_SUBDIR),
        };
        TorchHubConfig {
            checkpoints_dir: torch_home.join(HUB_SUBDIR).join(CHECKPOINTS_SUBDIR),
            base_url: base_url.trim_end_matches('/').to_string(),
            offline,
        }
    }

    /// The cached checkpoint `file`, downloading it when missing (unless offline).
    pub fn checkpoint(&self, file: &str) -> Result<PathBuf> {
        if file.is_empty() || file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(Error::Hub(format!("`{file}` is not a checkpoint file name")));
        }
        let path = self.checkpoints_dir.join(file);
        if path.is_file() {
            return Ok(path);
        }
        if self.offline {
            return Err(Error::Hub(format!(
                "offline and {} is not in the torch hub cache; download it once online or set TORCH_HOME",
                path.display()
            )));
        }
        let url = format!("{}/{file}", self.base_url);
        tracing::info!("downloading {url} to {}", path.display());
        fs::create_dir_all(&self.checkpoints_dir).map_err(|e| Error::io(&self.checkpoints_dir, e))?;
        // Process and call unique: two downloads of one file at once never share a partial file
        // (the one that finishes last renames its complete copy over the other's).
        static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nth = DOWNLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.checkpoints_dir.join(format!(".{file}.partial-{}-{nth}", std::process::id()));
        let result = download(&url, &tmp);
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&path, e)
        })?;
        Ok(path)
    }
}

fn download(url: &str, to: &Path) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        // No overall limit: a 360 MB checkpoint takes as long as it takes (as the hub client).
        .timeout(None::<Duration>)
        .build()
        .map_err(|e| Error::Hub(format!("cannot build HTTP client: {e}")))?;
    let mut response = client.get(url).send().map_err(|e| Error::Hub(format!("{url}: {}", e.without_url())))?;
    if !response.status().is_success() {
        return Err(Error::Hub(format!("{url}: the server answered {}", response.status())));
    }
    let expected = response.content_length();
    let mut file = fs::File::create(to).map_err(|e| Error::io(to, e))?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut written = 0u64;
    loop {
        let n = response
            .read(&mut buf)
            .map_err(|e| Error::Hub(format!("{url}: download interrupted after {written} bytes: {e}")))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(|e| Error::io(to, e))?;
        written += n as u64;
    }
    file.sync_all().map_err(|e| Error::io(to, e))?;
    if let Some(expected) = expected {
        if written != expected {
            return Err(Error::Hub(format!("{url}: downloaded {written} bytes, the server announced {expected}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_home_follows_torch_hub_get_dir() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let c = TorchHubConfig::from_vars(vars(&[("HOME", "/h")]), "http://x/", false);
        assert_eq!(c.checkpoints_dir, PathBuf::from("/h/.cache/torch/hub/checkpoints"));
        assert_eq!(c.base_url, "http://x");
        let c = TorchHubConfig::from_vars(vars(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]), "u", false);
        assert_eq!(c.checkpoints_dir, PathBuf::from("/x/torch/hub/checkpoints"));
        let c = TorchHubConfig::from_vars(vars(&[("HOME", "/h"), ("TORCH_HOME", "/t")]), "u", false);
        assert_eq!(c.checkpoints_dir, PathBuf::from("/t/hub/checkpoints"));
    }

    #[test]
    fn offline_without_the_file_names_the_expected_path() {
        let dir = tempfile::tempdir().unwrap();
        let c =
            TorchHubConfig { checkpoints_dir: dir.path().into(), base_url: "http://127.0.0.1:9".into(), offline: true };
        let e = c.checkpoint("m.pth").unwrap_err().to_string();
        assert!(e.contains("offline") && e.contains("m.pth"), "{e}");
        assert!(c.checkpoint("../m.pth").is_err());
        std::fs::write(dir.path().join("m.pth"), b"x").unwrap();
        assert_eq!(c.checkpoint("m.pth").unwrap(), dir.path().join("m.pth"));
    }
}
