//! torchaudio's wav2vec2 ASR bundles that WhisperX uses by default (`DEFAULT_ALIGN_MODELS_TORCH`):
//! file names, label lists and the rows of the fairseq output layer the bundle drops (TAI
//! `Wav2Vec2ASRBundle(...)` definitions, TAU `_get_*_labels`, `_remove_aux_axes`). Every one is the
//! base architecture (group-norm feature encoder without conv bias, 768/12/12/3072, post-LN) with
//! no input normalisation.

/// Where torchaudio downloads bundle files from (TAU `_get_state_dict`).
pub const TORCHAUDIO_MODELS_URL: &str = "https://download.pytorch.org/torchaudio/models";
/// The blank label torchaudio's `get_labels()` puts first.
pub const BUNDLE_BLANK: &str = "-";

/// One torchaudio ASR bundle.
#[derive(Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The torchaudio pipeline name (WhisperX's model name).
    pub name: &'static str,
    /// The checkpoint's file name under `$TORCH_HOME/hub/checkpoints/` and the download address.
    pub file: &'static str,
    /// Labels after the blank (`get_labels()` is the blank followed by these).
    pub labels: &'static [&'static str],
    /// The output layer's rows in the file that torchaudio drops (`_remove_aux_axis`).
    pub remove_aux_axis: &'static [usize],
}

impl Bundle {
    /// `get_labels()`: the blank then the bundle's labels, one per output class.
    pub fn all_labels(&self) -> Vec<String> {
        std::iter::once(BUNDLE_BLANK).chain(self.labels.iter().copied()).map(str::to_string).collect()
    }

    pub fn url(&self) -> String {
        format!("{TORCHAUDIO_MODELS_URL}/{}", self.file)
    }
}

const EN_LABELS: &[&str] = &[
    "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K",
    "'", "X", "J", "Q", "Z",
];
const VP_EN_LABELS: &[&str] = &[
    "|", "e", "t", "o", "i", "a", "n", "s", "r", "h", "l", "d", "c", "u", "m", "p", "f", "g", "w", "y", "b", "v", "k",
    "x", "j", "q", "z",
];
const DE_LABELS: &[&str] = &[
    "|", "e", "n", "i", "r", "s", "t", "a", "d", "h", "u", "l", "g", "c", "m", "o", "b", "w", "f", "k", "z", "p", "v",
    "ü", "ä", "ö", "j", "ß", "y", "x", "q",
];
const ES_LABELS: &[&str] = &[
    "|", "e", "a", "o", "s", "n", "r", "i", "l", "d", "c", "t", "u", "p", "m", "b", "q", "y", "g", "v", "h", "ó", "f",
    "í", "á", "j", "z", "ñ", "é", "x", "ú", "k", "w", "ü",
];
const FR_LABELS: &[&str] = &[
    "|", "e", "s", "n", "i", "t", "r", "a", "o", "u", "l", "d", "c", "p", "m", "é", "v", "q", "f", "g", "b", "h", "x",
    "à", "j", "è", "y", "ê", "z", "ô", "k", "ç", "œ", "û", "ù", "î", "â", "w", "ï", "ë", "ü", "æ",
];
const IT_LABELS: &[&str] = &[
    "|", "e", "i", "a", "o", "n", "t", "r", "l", "s", "c", "d", "u", "p", "m", "g", "v", "h", "z", "f", "b", "q", "à",
    "è", "ù", "é", "ò", "ì", "k", "y", "x", "w", "j", "ó", "í", "ï",
];

/// The default `_remove_aux_axis` of `Wav2Vec2ASRBundle`.
const FAIRSEQ_AUX_AXES: &[usize] = &[1, 2, 3];

pub const BUNDLES: [Bundle; 6] = [
    Bundle {
        name: "WAV2VEC2_ASR_BASE_960H",
        file: "wav2vec2_fairseq_base_ls960_asr_ls960.pth",
        labels: EN_LABELS,
        remove_aux_axis: FAIRSEQ_AUX_AXES,
    },
    Bundle {
        name: "VOXPOPULI_ASR_BASE_10K_EN",
        file: "wav2vec2_voxpopuli_base_10k_asr_en.pt",
        labels: VP_EN_LABELS,
        remove_aux_axis: &[1, 2, 3, 31],
    },
    Bundle {
        name: "VOXPOPULI_ASR_BASE_10K_DE",
        file: "wav2vec2_voxpopuli_base_10k_asr_de.pt",
        labels: DE_LABELS,
        remove_aux_axis: &[1, 2, 3, 35],
    },
    Bundle {
        name: "VOXPOPULI_ASR_BASE_10K_ES",
        file: "wav2vec2_voxpopuli_base_10k_asr_es.pt",
        labels: ES_LABELS,
        remove_aux_axis: &[1, 2, 3, 35],
    },
    Bundle {
        name: "VOXPOPULI_ASR_BASE_10K_FR",
        file: "wav2vec2_voxpopuli_base_10k_asr_fr.pt",
        labels: FR_LABELS,
        remove_aux_axis: FAIRSEQ_AUX_AXES,
    },
    Bundle {
        name: "VOXPOPULI_ASR_BASE_10K_IT",
        file: "wav2vec2_voxpopuli_base_10k_asr_it.pt",
        labels: IT_LABELS,
        remove_aux_axis: FAIRSEQ_AUX_AXES,
    },
];

/// The bundle called `name` (torchaudio pipeline name, as WhisperX's `--align_model` takes it).
pub fn by_name(name: &str) -> Option<&'static Bundle> {
    BUNDLES.iter().find(|b| b.name == name)
}

/// The bundle whose checkpoint file is called `file_name`.
pub fn by_file(file_name: &str) -> Option<&'static Bundle> {
    BUNDLES.iter().find(|b| b.file == file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_counts_match_each_bundles_aux_num_out() {
        // aux_num_out of each bundle in torchaudio's pipelines/_wav2vec2/impl.py.
        for (name, aux_num_out) in [
            ("WAV2VEC2_ASR_BASE_960H", 29),
            ("VOXPOPULI_ASR_BASE_10K_EN", 28),
            ("VOXPOPULI_ASR_BASE_10K_DE", 32),
            ("VOXPOPULI_ASR_BASE_10K_ES", 35),
            ("VOXPOPULI_ASR_BASE_10K_FR", 43),
            ("VOXPOPULI_ASR_BASE_10K_IT", 37),
        ] {
            let b = by_name(name).unwrap();
            assert_eq!(b.all_labels().len(), aux_num_out, "{name}");
            assert_eq!(by_file(b.file).unwrap().name, name);
        }
        assert!(by_name("WAV2VEC2_ASR_LARGE_960H").is_none());
    }
}
