//! Whisper's tokenizer: byte-level BPE from `tokenizer.json` plus the special tokens that
//! steer decoding (openai/whisper tokenizer.py). Special ids are looked up by their text; the
//! timestamp tokens `<|0.00|>`…`<|30.00|>` may be absent from tokenizer.json and then follow
//! `<|notimestamps|>`.

use std::path::Path;

use crate::error::{Error, Result};

/// Language codes in the order of Whisper's language tokens (openai tokenizer.py LANGUAGES).
pub const LANGUAGES: [&str; 100] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi",
    "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml",
    "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs",
    "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am",
    "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su", "yue",
];

/// Number of timestamp tokens: 0.00 to 30.00 s in 20 ms steps.
pub const N_TIMESTAMPS: u32 = 1501;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Transcribe,
    Translate,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecialTokens {
    pub eot: u32,
    pub sot: u32,
    pub translate: u32,
    pub transcribe: u32,
    pub sot_lm: u32,
    pub sot_prev: u32,
    pub no_speech: u32,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
    /// `<|en|>`, … in LANGUAGES order, as many as the vocabulary has.
    pub languages: Vec<u32>,
}

pub struct WhisperTokenizer {
    inner: tokenizers::Tokenizer,
    pub special: SpecialTokens,
    pub multilingual: bool,
}

impl WhisperTokenizer {
    /// Load `tokenizer.json`; `vocab_size` (from the model) tells English-only from multilingual.
    pub fn from_file(path: &Path, vocab_size: usize) -> Result<Self> {
        let inner =
            tokenizers::Tokenizer::from_file(path).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let id = |s: &str| {
            inner
                .token_to_id(s)
                .ok_or_else(|| Error::Tokenizer(format!("{}: special token {s} is missing", path.display())))
        };
        let sot = id("<|startoftranscript|>")?;
        let translate = id("<|translate|>")?;
        let no_timestamps = id("<|notimestamps|>")?;
        let no_speech = inner.token_to_id("<|nospeech|>").map_or_else(|| id("<|nocaptions|>"), Ok)?;
        let languages: Vec<u32> = LANGUAGES.iter().map_while(|l| inner.token_to_id(&format!("<|{l}|>"))).collect();
        let timestamp_begin = inner.token_to_id("<|0.00|>").unwrap_or(no_timestamps + 1);
        let special = SpecialTokens {
            eot: id("<|endoftext|>")?,
            sot,
            translate,
            transcribe: id("<|transcribe|>")?,
            sot_lm: id("<|startoflm|>")?,
            sot_prev: id("<|startofprev|>")?,
            no_speech,
            no_timestamps,
            timestamp_begin,
            languages,
        };
        if (special.timestamp_begin + N_TIMESTAMPS) as usize > vocab_size {
            return Err(Error::Tokenizer(format!(
                "{}: timestamp tokens end at {} but the model has {vocab_size} tokens",
                path.display(),
                special.timestamp_begin + N_TIMESTAMPS
            )));
        }
        Ok(WhisperTokenizer { inner, special, multilingual: vocab_size >= 51865 })
    }

    pub fn language_token(&self, code: &str) -> Result<u32> {
        LANGUAGES
            .iter()
            .position(|&l| l == code)
            .and_then(|i| self.special.languages.get(i).copied())
            .ok_or_else(|| Error::Other(format!("unknown language code `{code}` for this model")))
    }

    /// The start-of-transcript sequence: `<|startoftranscript|>` and, for multilingual models,
    /// `<|lang|><|task|>` (openai tokenizer.py `sot_sequence`).
    pub fn sot_sequence(&self, language: Option<&str>, task: Task) -> Result<Vec<u32>> {
        let mut seq = vec![self.special.sot];
        if self.multilingual {
            seq.push(self.language_token(language.unwrap_or("en"))?);
            seq.push(match task {
                Task::Transcribe => self.special.transcribe,
                Task::Translate => self.special.translate,
            });
        } else if task == Task::Translate {
            return Err(Error::Other("translate needs a multilingual model; this one is English-only".into()));
        }
        Ok(seq)
    }

    /// Text of ordinary tokens; special and timestamp tokens are dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let text_ids: Vec<u32> = ids.iter().copied().filter(|&t| t < self.special.eot).collect();
        self.inner.decode(&text_ids, false).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.inner.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?.get_ids().to_vec())
    }

    /// The tokens openai always suppresses besides the checkpoint's list
    /// (decoding.py `DecodingTask._get_suppress_tokens`).
    pub fn always_suppressed(&self) -> [u32; 6] {
        let s = &self.special;
        [s.transcribe, s.translate, s.sot, s.sot_prev, s.sot_lm, s.no_speech]
    }
}
