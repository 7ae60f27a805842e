//! Which alignment model a language gets, and where its files come from, as WhisperX's
//! `load_align_model` decides (whisperx 3.8.x `alignment.py` L31-77, L80-121): `--align_model`
//! when given, else the language's default from the torchaudio table, else from the Hugging Face
//! table; a torchaudio bundle comes from torch.hub's checkpoint cache (downloaded from
//! torchaudio's address when missing), a Hugging Face model from the hub cache (downloaded
//! when missing, `HF_TOKEN`, `HF_HUB_OFFLINE`). A local directory or bundle file may be named
//! directly.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::hub::torch_hub::TorchHubConfig;
use crate::hub::{snapshot_download, HubConfig, Required, DEFAULT_REVISION};

use super::bundles::{self, Bundle};
use super::checkpoint::{self, Checkpoint, ADDED_TOKENS_FILE, CONFIG_FILE, PYTORCH_FILE, SAFETENSORS_FILE, VOCAB_FILE};

/// WhisperX `DEFAULT_ALIGN_MODELS_TORCH` (L31-37).
pub const DEFAULT_ALIGN_MODELS_TORCH: [(&str, &str); 5] = [
    ("en", "WAV2VEC2_ASR_BASE_960H"),
    ("fr", "VOXPOPULI_ASR_BASE_10K_FR"),
    ("de", "VOXPOPULI_ASR_BASE_10K_DE"),
    ("es", "VOXPOPULI_ASR_BASE_10K_ES"),
    ("it", "VOXPOPULI_ASR_BASE_10K_IT"),
];

/// WhisperX `DEFAULT_ALIGN_MODELS_HF` (L39-76).
pub const DEFAULT_ALIGN_MODELS_HF: [(&str, &str); 36] = [
    ("ja", "jonatasgrosman/wav2vec2-large-xlsr-53-japanese"),
    ("zh", "jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn"),
    ("nl", "jonatasgrosman/wav2vec2-large-xlsr-53-dutch"),
    ("uk", "Yehor/wav2vec2-xls-r-300m-uk-with-small-lm"),
    ("pt", "jonatasgrosman/wav2vec2-large-xlsr-53-portuguese"),
    ("ar", "jonatasgrosman/wav2vec2-large-xlsr-53-arabic"),
    ("cs", "comodoro/wav2vec2-xls-r-300m-cs-250"),
    ("ru", "jonatasgrosman/wav2vec2-large-xlsr-53-russian"),
    ("pl", "jonatasgrosman/wav2vec2-large-xlsr-53-polish"),
    ("hu", "jonatasgrosman/wav2vec2-large-xlsr-53-hungarian"),
    ("fi", "jonatasgrosman/wav2vec2-large-xlsr-53-finnish"),
    ("fa", "jonatasgrosman/wav2vec2-large-xlsr-53-persian"),
    ("el", "jonatasgrosman/wav2vec2-large-xlsr-53-greek"),
    ("tr", "mpoyraz/wav2vec2-xls-r-300m-cv7-turkish"),
    ("da", "saattrupdan/wav2vec2-xls-r-300m-ftspeech"),
    ("he", "imvladikon/wav2vec2-xls-r-300m-hebrew"),
    ("vi", "nguyenvulebinh/wav2vec2-base-vi-vlsp2020"),
    ("ko", "kresnik/wav2vec2-large-xlsr-korean"),
    ("ur", "kingabzpro/wav2vec2-large-xls-r-300m-Urdu"),
    ("te", "anuragshas/wav2vec2-large-xlsr-53-telugu"),
    ("hi", "theainerd/Wav2Vec2-large-xlsr-hindi"),
    ("ca", "softcatala/wav2vec2-large-xlsr-catala"),
    ("ml", "gvs/wav2vec2-large-xlsr-malayalam"),
    ("no", "NbAiLab/nb-wav2vec2-1b-bokmaal-v2"),
    ("nn", "NbAiLab/nb-wav2vec2-1b-nynorsk"),
    ("sk", "comodoro/wav2vec2-xls-r-300m-sk-cv8"),
    ("sl", "anton-l/wav2vec2-large-xlsr-53-slovenian"),
    ("hr", "classla/wav2vec2-xls-r-parlaspeech-hr"),
    ("ro", "gigant/romanian-wav2vec2"),
    ("eu", "stefan-it/wav2vec2-large-xlsr-53-basque"),
    ("gl", "ifrz/wav2vec2-large-xlsr-galician"),
    ("ka", "xsway/wav2vec2-large-xlsr-georgian"),
    ("lv", "jimregan/wav2vec2-large-xlsr-latvian-cv"),
    ("tl", "Khalsuu/filipino-wav2vec2-l-xls-r-300m-official"),
    ("sv", "KBLab/wav2vec2-large-voxrex-swedish"),
    ("id", "cahya/wav2vec2-large-xlsr-indonesian"),
];

/// An alignment model, named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlignModel {
    /// A torchaudio pipeline (WhisperX's `model_name in torchaudio.pipelines.__all__`).
    Torchaudio(&'static Bundle),
    /// A Hugging Face repo id.
    HuggingFace(String),
    /// A directory or bundle file on disk.
    Local(PathBuf),
}

impl std::fmt::Display for AlignModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AlignModel::Torchaudio(b) => write!(f, "{}", b.name),
            AlignModel::HuggingFace(repo) => write!(f, "{repo}"),
            AlignModel::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The model for `language`: `explicit` (`--align_model`) when given, else the language's
/// default (torchaudio table first). None: WhisperX has no default for this language.
pub fn model_for(language: &str, explicit: Option<&str>) -> Option<AlignModel> {
    if let Some(name) = explicit.map(str::trim).filter(|n| !n.is_empty()) {
        if let Some(b) = bundles::by_name(name) {
            return Some(AlignModel::Torchaudio(b));
        }
        let path = Path::new(name);
        if path.exists() || path.is_absolute() || name.starts_with('.') || name.starts_with('~') {
            return Some(AlignModel::Local(path.to_path_buf()));
        }
        return Some(AlignModel::HuggingFace(name.to_string()));
    }
    let default = |table: &[(&str, &'static str)]| table.iter().find(|(l, _)| *l == language).map(|(_, m)| *m);
    if let Some(name) = default(&DEFAULT_ALIGN_MODELS_TORCH) {
        return bundles::by_name(name).map(AlignModel::Torchaudio);
    }
    default(&DEFAULT_ALIGN_MODELS_HF).map(|repo| AlignModel::HuggingFace(repo.to_string()))
}

/// The files of a Hugging Face alignment model: the weights in safetensors when the repo has
/// them, else `pytorch_model.bin`.
const HF_ALIGN_FILES: &[(&str, Required)] = &[
    (CONFIG_FILE, Required::Yes),
    (VOCAB_FILE, Required::Yes),
    (ADDED_TOKENS_FILE, Required::No),
    (SAFETENSORS_FILE, Required::No),
];

/// Find (downloading when missing and allowed) and open `model`.
pub fn open(model: &AlignModel, hub: &HubConfig, torch: &TorchHubConfig) -> Result<Checkpoint> {
    match model {
        AlignModel::Local(path) => checkpoint::open(path),
        AlignModel::Torchaudio(bundle) => {
            let path = torch.checkpoint(bundle.file)?;
            checkpoint::open_bundle(&path, bundle)
        }
        AlignModel::HuggingFace(repo) => {
            let dir = snapshot_download(hub, repo, DEFAULT_REVISION, HF_ALIGN_FILES)?;
            if !dir.join(SAFETENSORS_FILE).is_file() {
                let again = snapshot_download(hub, repo, DEFAULT_REVISION, &[(PYTORCH_FILE, Required::Yes)])?;
                if again != dir {
                    return Err(Error::Hub(format!("{repo}: the repo changed commit while its files were fetched")));
                }
            }
            checkpoint::open_hf_dir(&dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_whisperx_tables_torchaudio_first() {
        assert_eq!(
            model_for("en", None),
            Some(AlignModel::Torchaudio(bundles::by_name("WAV2VEC2_ASR_BASE_960H").unwrap()))
        );
        assert_eq!(model_for("de", None).unwrap().to_string(), "VOXPOPULI_ASR_BASE_10K_DE");
        assert_eq!(model_for("ja", None).unwrap().to_string(), "jonatasgrosman/wav2vec2-large-xlsr-53-japanese");
        assert_eq!(model_for("xx", None), None);
        // Every torchaudio default is a bundle we know.
        for (lang, _) in DEFAULT_ALIGN_MODELS_TORCH {
            assert!(matches!(model_for(lang, None), Some(AlignModel::Torchaudio(_))), "{lang}");
        }
    }

    #[test]
    fn an_explicit_name_overrides_and_is_classified() {
        assert_eq!(
            model_for("en", Some("VOXPOPULI_ASR_BASE_10K_EN")).unwrap().to_string(),
            "VOXPOPULI_ASR_BASE_10K_EN"
        );
        assert_eq!(model_for("xx", Some("owner/model")), Some(AlignModel::HuggingFace("owner/model".into())));
        assert_eq!(model_for("en", Some("/abs/dir")), Some(AlignModel::Local("/abs/dir".into())));
        assert_eq!(model_for("en", Some("  ")).unwrap().to_string(), "WAV2VEC2_ASR_BASE_960H");
    }
}
