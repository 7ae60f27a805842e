//! The alignment model's character dictionary, as WhisperX builds it (`alignment.py`
//! `load_align_model`, L93-110; the blank at L273-276): `{label.lower(): id}` over the model's
//! labels, and the blank (CTC's "no character") the id of `[pad]` or `<pad>`, else 0.

use std::collections::HashMap;

/// The torchaudio bundle `WAV2VEC2_ASR_BASE_960H`'s labels (`bundle.get_labels()`), index = class.
/// Its blank is `-` (class 0): it has no `<pad>`, so WhisperX's rule falls back to 0.
pub const TORCHAUDIO_BASE_960H_LABELS: [&str; 29] = [
    "-", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V",
    "K", "'", "X", "J", "Q", "Z",
];

/// The model's word separator (wav2vec2 CTC vocabularies spell a space `|`).
pub const WORD_DELIMITER: &str = "|";

#[derive(Clone, Debug, PartialEq)]
pub struct Dictionary {
    ids: HashMap<String, usize>,
    blank: usize,
}

impl Dictionary {
    /// From a torchaudio bundle's label list: class `i` is `labels[i]` (WX L97-98).
    pub fn from_labels<S: AsRef<str>>(labels: &[S]) -> Self {
        Self::from_vocab(labels.iter().enumerate().map(|(i, l)| (l.as_ref().to_string(), i)))
    }

    /// From a Hugging Face tokenizer's `get_vocab()` (`vocab.json`, then added tokens), in its
    /// order (WX L109-110): keys are lowercased, so a later `A` overwrites an earlier `a`, as the
    /// Python dict comprehension does.
    pub fn from_vocab(vocab: impl IntoIterator<Item = (String, usize)>) -> Self {
        let mut ids = HashMap::new();
        let mut order = Vec::new();
        for (label, id) in vocab {
            let key = label.to_lowercase();
            if ids.insert(key.clone(), id).is_none() {
                order.push(key);
            }
        }
        // WX L273-276: the last of `[pad]` / `<pad>` in the dict's order wins; 0 without either.
        // (The dict keeps the position of a key's first insertion.)
        let blank = order.iter().rev().find(|k| *k == "[pad]" || *k == "<pad>").map_or(0, |k| ids[k]);
        Dictionary { ids, blank }
    }

    /// WhisperX's default English model's dictionary (torchaudio `WAV2VEC2_ASR_BASE_960H`).
    pub fn torchaudio_base_960h() -> Self {
        Self::from_labels(&TORCHAUDIO_BASE_960H_LABELS)
    }

    /// The class of a (lowercased) character or label, if the model has it.
    pub fn get(&self, label: &str) -> Option<usize> {
        self.ids.get(label).copied()
    }

    pub fn contains(&self, label: &str) -> bool {
        self.ids.contains_key(label)
    }

    /// The CTC blank's class.
    pub fn blank(&self) -> usize {
        self.blank
    }

    /// The class of the word separator `|`, if the model has one.
    pub fn word_delimiter(&self) -> Option<usize> {
        self.get(WORD_DELIMITER)
    }

    /// One more than the largest class id: the width the model's emissions must have at least.
    pub fn classes(&self) -> usize {
        self.ids.values().copied().max().map_or(0, |m| m + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchaudio_english_has_dash_as_blank_and_lowercase_letters() {
        let d = Dictionary::torchaudio_base_960h();
        assert_eq!(d.blank(), 0);
        assert_eq!(d.get("-"), Some(0));
        assert_eq!(d.get("|"), Some(1));
        assert_eq!(d.get("e"), Some(2));
        assert_eq!(d.get("E"), None);
        assert_eq!(d.get("'"), Some(24));
        assert_eq!(d.classes(), 29);
    }

    #[test]
    fn hugging_face_vocab_blank_is_pad_wherever_it_is() {
        let vocab = [("a", 0), ("b", 1), ("|", 2), ("<s>", 3), ("</s>", 4), ("<unk>", 5), ("<pad>", 6)];
        let d = Dictionary::from_vocab(vocab.iter().map(|&(l, i)| (l.to_string(), i)));
        assert_eq!(d.blank(), 6);
        let vocab = [("[PAD]", 3), ("a", 0), ("[UNK]", 1), ("|", 2)];
        let d = Dictionary::from_vocab(vocab.iter().map(|&(l, i)| (l.to_string(), i)));
        assert_eq!(d.blank(), 3, "[PAD] is lowercased to [pad]");
        assert_eq!(d.get("[unk]"), Some(1));
    }

    #[test]
    fn a_later_label_that_lowercases_to_the_same_key_wins() {
        let d = Dictionary::from_vocab([("a".to_string(), 1), ("A".to_string(), 2)]);
        assert_eq!(d.get("a"), Some(2));
    }
}
