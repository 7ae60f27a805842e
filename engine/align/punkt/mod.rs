//! Punkt sentence boundaries as WhisperX uses them: NLTK's `PunktSentenceTokenizer` with a
//! pretrained punkt_tab model, `span_tokenize(text)` with its defaults (NLTK 3.10.4,
//! nltk/tokenize/punkt.py; WhisperX 3.8.6 whisperx/alignment.py splits each segment's text into
//! sentences this way). Written from the algorithm, not translated line by line; each file says
//! which NLTK functions it reproduces:
//!
//! * [`params`]: the punkt_tab files (`load_punkt_params`);
//! * [`language`]: WhisperX's language code → model name;
//! * `words`: word tokenization (`word_tokenize`, `_tokenize_words`);
//! * `tokens`: `PunktToken` and its derived properties;
//! * `ortho`: orthographic context flags and `_ortho_heuristic`;
//! * `annotate`: the first and second annotation passes, `text_contains_sentbreak`;
//! * `contexts`: candidate ends (`period_context_re`, `_match_potential_end_contexts`);
//! * `spans`: `_slices_from_text`, `_realign_boundaries`, `span_tokenize`;
//! * `chars` / `unicode_tables`: Python's and the `regex` module's character classes.
//!
//! Offsets are **character offsets** (Python `str` indices: Unicode scalar values, not bytes);
//! [`Punkt::span_tokenize_bytes`] gives byte offsets into the `&str` instead. Nothing here
//! panics on any input; `tests/punkt_reference.rs` checks the spans against NLTK's.

pub mod language;
pub mod params;

mod annotate;
mod chars;
mod contexts;
mod ortho;
mod spans;
mod tokens;
mod unicode_tables;
mod words;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub use language::{punkt_language, DEFAULT_PUNKT_LANGUAGE, PUNKT_LANGUAGES};
pub use params::PunktParameters;

/// `PunktLanguageVars.sent_end_chars`: the characters that may end a sentence.
pub const SENT_END_CHARS: [char; 3] = ['.', '?', '!'];

/// `span_tokenize`'s default for `realign_boundaries` (what WhisperX gets).
pub const REALIGN_BOUNDARIES: bool = true;

/// Where `models/fetch punkt` puts the punkt_tab models, under the models directory.
pub const PUNKT_MODELS_SUBDIR: &str = "punkt";

/// A punkt sentence tokenizer for one language (`PunktTokenizer(lang)`).
#[derive(Debug, Clone)]
pub struct Punkt {
    params: PunktParameters,
    dir: PathBuf,
}

impl Punkt {
    /// Loads a punkt_tab language directory (abbrev_types.txt, collocations.tab,
    /// ortho_context.tab, sent_starters.txt); errors name the missing or malformed file.
    pub fn load(dir: &Path) -> Result<Punkt> {
        if !dir.is_dir() {
            return Err(Error::format(dir, "not a punkt_tab language directory (run `models/fetch punkt`)"));
        }
        Ok(Punkt { params: PunktParameters::load(dir)?, dir: dir.to_owned() })
    }

    /// The model WhisperX would use for a Whisper language code (see [`punkt_language`]: codes
    /// outside `PUNKT_LANGUAGES` get English), from `models_dir/punkt/<language>/`.
    pub fn for_language(models_dir: &Path, lang: &str) -> Result<Punkt> {
        Punkt::load(&models_dir.join(PUNKT_MODELS_SUBDIR).join(punkt_language(lang)))
    }

    /// A tokenizer on parameters built in memory.
    pub fn from_parameters(params: PunktParameters) -> Punkt {
        Punkt { params, dir: PathBuf::new() }
    }

    pub fn parameters(&self) -> &PunktParameters {
        &self.params
    }

    /// The directory the model was loaded from (empty for [`Punkt::from_parameters`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `span_tokenize(text)`: `(start, end)` of each sentence in **character** offsets (Python
    /// `str` indices), exactly as NLTK yields them: closing quotes and brackets after a sentence
    /// end belong to that sentence (`realign_boundaries=True`), the first sentence keeps the
    /// text's leading whitespace, the last one stops before the trailing whitespace, and text
    /// without a non-space character gives no span.
    pub fn span_tokenize(&self, text: &str) -> Vec<(usize, usize)> {
        self.span_tokenize_with(text, REALIGN_BOUNDARIES)
    }

    /// `span_tokenize(text, realign_boundaries)`, character offsets.
    pub fn span_tokenize_with(&self, text: &str, realign_boundaries: bool) -> Vec<(usize, usize)> {
        let chars: Vec<char> = text.chars().collect();
        spans::span_tokenize(&self.params, &chars, realign_boundaries)
    }

    /// [`Punkt::span_tokenize`] in **byte** offsets into `text` (always on character boundaries,
    /// so `&text[start..end]` is the sentence).
    pub fn span_tokenize_bytes(&self, text: &str) -> Vec<(usize, usize)> {
        let byte_at: Vec<usize> = text.char_indices().map(|(b, _)| b).chain([text.len()]).collect();
        let byte = |c: usize| byte_at.get(c).copied().unwrap_or(text.len());
        self.span_tokenize(text).into_iter().map(|(s, e)| (byte(s), byte(e))).collect()
    }

    /// The sentences (`tokenize(text)`), as slices of `text`.
    pub fn sentences<'a>(&self, text: &'a str) -> Vec<&'a str> {
        self.span_tokenize_bytes(text).into_iter().map(|(s, e)| text.get(s..e.max(s)).unwrap_or("")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn english_like() -> Punkt {
        let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        Punkt::from_parameters(PunktParameters { abbrev_types: set(&["dr", "mr", "u.s"]), ..Default::default() })
    }

    /// `span_tokenize` counts characters, not bytes; the byte variant slices the `&str`.
    #[test]
    fn character_and_byte_offsets() {
        let p = english_like();
        let text = "Größe zählt. Ünd dann?  ";
        assert_eq!(p.span_tokenize(text), [(0, 12), (13, 22)]);
        assert_eq!(p.span_tokenize_bytes(text), [(0, 15), (16, 26)]);
        assert_eq!(p.sentences(text), ["Größe zählt.", "Ünd dann?"]);
        assert_eq!(p.span_tokenize_with("(A b.) C d.", false), [(0, 5), (5, 11)]);
        assert_eq!(p.span_tokenize("(A b.) C d."), [(0, 6), (7, 11)]);
    }

    /// No panic and sane spans (ordered, inside the text) on arbitrary Unicode, seeded.
    #[test]
    fn arbitrary_unicode_never_panics() {
        let p = english_like();
        let pieces = [
            ".",
            "?",
            "!",
            " ",
            "\n",
            "\r",
            "\t",
            "\u{a0}",
            "\u{1c}",
            "\u{2028}",
            ")",
            "\"",
            "«",
            "»",
            "”",
            "(",
            "-",
            "--",
            ",",
            ";",
            ":",
            "Dr",
            "U.S",
            "a",
            "B",
            "3",
            "٣",
            "é",
            "\u{301}",
            "Σ",
            "İ",
            "😀",
            "中",
            "\u{0}",
            "\u{feff}",
            "\u{10ffff}",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| {
                    if next() % 5 == 0 {
                        char::from_u32((next() % 0x11_0000) as u32).unwrap_or('x').to_string()
                    } else {
                        pieces[(next() % pieces.len() as u64) as usize].to_string()
                    }
                })
                .collect();
            let n = text.chars().count();
            for realign in [true, false] {
                for (s, e) in p.span_tokenize_with(&text, realign) {
                    assert!(s <= n && e <= n, "{text:?}");
                }
            }
            let _ = p.sentences(&text);
        }
        assert!(p.span_tokenize("").is_empty());
        assert!(p.span_tokenize(" \n\u{1c} ").is_empty());
    }

    /// A missing language directory is an error naming it, with what to run.
    #[test]
    fn missing_model_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Punkt::for_language(dir.path(), "de").unwrap_err().to_string();
        assert!(err.contains("punkt/german") && err.contains("models/fetch punkt"), "{err}");
    }
}
