//! Where the hub is and where its cache lives, read from the same environment variables as the
//! Python `huggingface_hub` library (constants.py, utils/_auth.py), so that a WhisperX user's
//! existing cache and token are found without any configuration.

use std::path::{Path, PathBuf};

/// `HF_ENDPOINT` when unset.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// `HF_HOME` is `$XDG_CACHE_HOME/huggingface`, `XDG_CACHE_HOME` being `~/.cache` when unset.
const HF_HOME_SUBDIR: &str = "huggingface";
const XDG_CACHE_DEFAULT_SUBDIR: &str = ".cache";
/// The model cache is `$HF_HOME/hub` unless `HF_HUB_CACHE` / `HUGGINGFACE_HUB_CACHE` say otherwise.
const HUB_CACHE_SUBDIR: &str = "hub";
/// The token written by `huggingface-cli login` / `hf auth login`.
const TOKEN_FILE_NAME: &str = "token";

/// How to reach the hub and where to cache what it serves.
///
/// Built from the environment by [`HubConfig::from_env`], or from explicit values (tests, callers
/// with their own settings) by [`HubConfig::new`] and [`HubConfig::from_vars`], so that nothing
/// ever has to mutate the process environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// Base URL without a trailing slash, e.g. `https://huggingface.co`.
    pub endpoint: String,
    /// The `hub` cache directory holding `models--{owner}--{name}` folders.
    pub cache_dir: PathBuf,
    /// Bearer token sent to the endpoint (never to the CDN it redirects to).
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: resolve from the cache only, never touch the network.
    pub offline: bool,
}

impl HubConfig {
    /// Explicit settings; the endpoint's trailing slashes are dropped as huggingface_hub does.
    pub fn new(endpoint: &str, cache_dir: impl Into<PathBuf>, token: Option<String>, offline: bool) -> Self {
        HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            cache_dir: cache_dir.into(),
            token: token.and_then(|t| clean_token(&t)),
            offline,
        }
    }

    /// Reads the process environment (and the token file it points to).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Same resolution as [`HubConfig::from_env`] but with variables looked up through `var`,
    /// so the precedence rules can be tested without touching the real environment.
    ///
    /// Precedence follows huggingface_hub: `HF_HUB_CACHE` > `HUGGINGFACE_HUB_CACHE` >
    /// `$HF_HOME/hub`; `HF_TOKEN` > `HUGGING_FACE_HUB_TOKEN` > the file `HF_TOKEN_PATH`
    /// (default `$HF_HOME/token`); offline if `HF_HUB_OFFLINE` (or the older
    /// `TRANSFORMERS_OFFLINE`) is one of 1/ON/YES/TRUE.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let home = var("HOME").or_else(|| var("USERPROFILE")).map(PathBuf::from);
        let expand = |p: String| expand_user(&p, home.as_deref());

        let hf_home = match var("HF_HOME") {
            Some(p) => expand(p),
            None => {
                let xdg = var("XDG_CACHE_HOME")
                    .map(expand)
                    .unwrap_or_else(|| home.clone().unwrap_or_default().join(XDG_CACHE_DEFAULT_SUBDIR));
                xdg.join(HF_HOME_SUBDIR)
            }
        };
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(expand)
            .unwrap_or_else(|| hf_home.join(HUB_CACHE_SUBDIR));

        let token =
            var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")).and_then(|t| clean_token(&t)).or_else(|| {
                let path = var("HF_TOKEN_PATH").map(expand).unwrap_or_else(|| hf_home.join(TOKEN_FILE_NAME));
                // A missing or unreadable token file just means "anonymous", as in huggingface_hub.
                std::fs::read_to_string(path).ok().and_then(|t| clean_token(&t))
            });

        let offline = var("HF_HUB_OFFLINE").or_else(|| var("TRANSFORMERS_OFFLINE")).is_some_and(|v| is_true(&v));
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        HubConfig::new(&endpoint, cache_dir, token, offline)
    }
}

/// huggingface_hub's `_is_true`: the value upper-cased is one of these.
fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
}

/// huggingface_hub's `_clean_token`: drop line breaks and surrounding blanks; empty means none.
fn clean_token(token: &str) -> Option<String> {
    let cleaned: String = token.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

/// `os.path.expanduser` for the one form that matters here: a leading `~` or `~/`.
fn expand_user(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(path),
    }
}
