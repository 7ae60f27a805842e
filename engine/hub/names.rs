//! Whisper model names, as WhisperX / faster-whisper users type them, mapped to hub repo ids.
//!
//! We load the Transformers-format checkpoints (`model.safetensors` + `config.json`), which live
//! in the `openai/whisper-*` and `distil-whisper/*` repos, not the CTranslate2 `Systran/*` repos
//! that faster-whisper maps the same names to.

/// Owner of the original Whisper checkpoints on the hub.
const OPENAI_OWNER: &str = "openai";
/// Prefix of every OpenAI Whisper repo: `openai/whisper-tiny.en`, ...
const OPENAI_REPO_PREFIX: &str = "whisper-";
/// Owner of the distilled checkpoints faster-whisper also accepts by bare name.
const DISTIL_OWNER: &str = "distil-whisper";

/// Short names that are not the repo suffix itself.
///
/// `large` is `large-v3`: faster-whisper's `_MODELS` table and openai/whisper's `_MODELS` both
/// point `large` at v3, whereas the hub repo `openai/whisper-large` holds the original (v1) model.
/// `turbo` is `large-v3-turbo`, again as in openai/whisper and faster-whisper.
const ALIASES: &[(&str, &str)] = &[("large", "large-v3"), ("turbo", "large-v3-turbo")];

/// Names faster-whisper accepts for the distilled models; they live under `distil-whisper/`.
const DISTIL_NAMES: &[&str] =
    &["distil-small.en", "distil-medium.en", "distil-large-v2", "distil-large-v3", "distil-large-v3.5"];

/// The hub repo id for a model name.
///
/// An `owner/name` string is already a repo id and comes back unchanged. Any other bare name
/// (`tiny`, `base.en`, `large-v2`, ...) becomes `openai/whisper-<name>` after the aliases above,
/// so an unknown name still yields a repo id whose absence the hub reports clearly.
pub fn repo_for_model(name: &str) -> String {
    let name = name.trim();
    if name.contains('/') {
        return name.to_string();
    }
    if DISTIL_NAMES.contains(&name) {
        return format!("{DISTIL_OWNER}/{name}");
    }
    let canonical = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, target)| *target);
    format!("{OPENAI_OWNER}/{OPENAI_REPO_PREFIX}{canonical}")
}
