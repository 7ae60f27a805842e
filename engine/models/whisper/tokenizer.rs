//! Whisper's tokenizer: byte-level BPE from `tokenizer.json` plus the special tokens that
//! steer decoding (openai/whisper tokenizer.py). Special ids are looked up by their text; the
//! timestamp tokens `<|0.00|>`…`<|30.00|>` may be absent from tokenizer.json and then follow
//! `<|notimestamps|>`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use super::bpe::TiktokenBpe;
use super::timing::py_strip;
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
    /// Encoding as openai's tokenizer does it (tiktoken ranks over the same vocabulary).
    bpe: TiktokenBpe,
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
        let table = byte_decoder();
        let ordinary = inner.get_vocab(false).into_iter().filter(|&(_, id)| id < special.eot).map(|(tok, id)| {
            let bytes = tok.chars().map(|c| table.get(&c).copied()).collect::<Option<Vec<u8>>>();
            (bytes.unwrap_or_else(|| tok.into_bytes()), id)
        });
        let bpe = TiktokenBpe::new(ordinary).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        Ok(WhisperTokenizer { inner, bpe, special, multilingual: vocab_size >= 51865 })
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

    /// The bytes a token stands for, as tiktoken holds them: ordinary tokens through the
    /// byte-level alphabet of `tokenizer.json`, special tokens as their text, and timestamp
    /// tokens missing from `tokenizer.json` as `<|1.08|>`.
    pub fn token_bytes(&self, id: u32) -> Result<Vec<u8>> {
        match self.inner.id_to_token(id) {
            Some(tok) if id < self.special.eot => {
                let table = byte_decoder();
                Ok(tok
                    .chars()
                    .map(|c| table.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_else(|| tok.into_bytes()))
            }
            Some(tok) => Ok(tok.into_bytes()),
            None if id >= self.special.timestamp_begin && id < self.special.timestamp_begin + N_TIMESTAMPS => {
                Ok(format!("<|{:.2}|>", (id - self.special.timestamp_begin) as f64 * 0.02).into_bytes())
            }
            None => Err(Error::Tokenizer(format!("token id {id} is not in the vocabulary"))),
        }
    }

    /// openai `decode_with_timestamps`: every token's bytes (special and timestamp tokens as
    /// their text), invalid UTF-8 replaced by U+FFFD per maximal invalid sequence as Python's
    /// `errors="replace"` does. Unlike [`decode`](Self::decode), a token holding half of a
    /// multi-byte character gives U+FFFD rather than being dropped or merged.
    pub fn decode_with_timestamps(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend(self.token_bytes(id)?);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Split tokens into words with the tokens of each (openai `split_to_word_tokens`):
    /// at unicode-character boundaries for zh, ja, th, lo, my and yue, else at a leading space,
    /// a punctuation-only piece or a special token.
    pub fn split_to_word_tokens(&self, tokens: &[u32], language: &str) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
        if matches!(language, "zh" | "ja" | "th" | "lo" | "my" | "yue") {
            self.split_tokens_on_unicode(tokens)
        } else {
            self.split_tokens_on_spaces(tokens)
        }
    }

    /// openai `split_tokens_on_unicode`: a word ends after each token where the text decoded
    /// so far is valid, or where its first U+FFFD is also U+FFFD in the whole decoded text.
    pub fn split_tokens_on_unicode(&self, tokens: &[u32]) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
        const REPLACEMENT: char = '\u{fffd}';
        let full: Vec<char> = self.decode_with_timestamps(tokens)?.chars().collect();
        let mut words = Vec::new();
        let mut word_tokens = Vec::new();
        let mut current = Vec::new();
        let mut offset = 0usize; // in characters, as Python indexes str
        for &token in tokens {
            current.push(token);
            let decoded = self.decode_with_timestamps(&current)?;
            let complete = match decoded.chars().position(|c| c == REPLACEMENT) {
                None => true,
                Some(p) => full.get(offset + p) == Some(&REPLACEMENT),
            };
            if complete {
                offset += decoded.chars().count();
                words.push(decoded);
                word_tokens.push(std::mem::take(&mut current));
            }
        }
        Ok((words, word_tokens))
    }

    /// openai `split_tokens_on_spaces`: unicode pieces joined into words; a piece starts a new
    /// word if it is a special token, starts with a space, or stripped is a substring of
    /// Python's `string.punctuation` (so an all-space piece or a run such as `"()"` counts).
    pub fn split_tokens_on_spaces(&self, tokens: &[u32]) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
        const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        let (subwords, subword_tokens) = self.split_tokens_on_unicode(tokens)?;
        let mut words: Vec<String> = Vec::new();
        let mut word_tokens: Vec<Vec<u32>> = Vec::new();
        for (subword, toks) in subwords.into_iter().zip(subword_tokens) {
            let special = toks[0] >= self.special.eot;
            let with_space = subword.starts_with(' ');
            let punctuation = PUNCTUATION.contains(py_strip(&subword));
            if special || with_space || punctuation || words.is_empty() {
                words.push(subword);
                word_tokens.push(toks);
            } else {
                words.last_mut().unwrap().push_str(&subword);
                word_tokens.last_mut().unwrap().extend(toks);
            }
        }
        Ok((words, word_tokens))
    }

    /// openai `Tokenizer.encode` (tiktoken, no special tokens).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.bpe.encode(text)
    }

    /// The tokens openai always suppresses besides the checkpoint's list
    /// (decoding.py `DecodingTask._get_suppress_tokens`).
    pub fn always_suppressed(&self) -> [u32; 6] {
        let s = &self.special;
        [s.transcribe, s.translate, s.sot, s.sot_prev, s.sot_lm, s.no_speech]
    }
}

/// GPT-2 `bytes_to_unicode`, inverted: the character standing for each byte in byte-level BPE
/// vocabularies → the byte.
fn byte_decoder() -> &'static HashMap<char, u8> {
    static TABLE: OnceLock<HashMap<char, u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let mut n = 0;
        (0u32..256)
            .map(|b| {
                let c = if printable(b) {
                    b
                } else {
                    n += 1;
                    255 + n
                };
                (char::from_u32(c).unwrap(), b as u8)
            })
            .collect()
    })
}
