//! Which punkt_tab model a transcript's language code uses, as WhisperX 3.8.6 decides it:
//! `PUNKT_LANGUAGES.get(model_lang, "english")` (whisperx/alignment.py `align`, the table in
//! whisperx/utils.py). `LANGUAGES_WITHOUT_SPACES` ("ja", "zh") changes how WhisperX splits words,
//! not which punkt model it loads: those fall back to English like every unlisted code.

/// WhisperX's `PUNKT_LANGUAGES`: Whisper language code → punkt_tab directory name.
pub const PUNKT_LANGUAGES: [(&str, &str); 19] = [
    ("cs", "czech"),
    ("da", "danish"),
    ("de", "german"),
    ("el", "greek"),
    ("en", "english"),
    ("es", "spanish"),
    ("et", "estonian"),
    ("fi", "finnish"),
    ("fr", "french"),
    ("it", "italian"),
    ("nl", "dutch"),
    ("no", "norwegian"),
    ("pl", "polish"),
    ("pt", "portuguese"),
    ("sl", "slovene"),
    ("sv", "swedish"),
    ("tr", "turkish"),
    ("ml", "malayalam"),
    ("ru", "russian"),
];

/// The model any other code gets (the `.get` default).
pub const DEFAULT_PUNKT_LANGUAGE: &str = "english";

/// The punkt_tab directory name for a Whisper language code: an exact, case-sensitive lookup
/// (a dict's `.get`), so "EN" or "english" fall back to English too.
pub fn punkt_language(code: &str) -> &'static str {
    PUNKT_LANGUAGES.iter().find(|(c, _)| *c == code).map_or(DEFAULT_PUNKT_LANGUAGE, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// whisperx/alignment.py `align`: `PUNKT_LANGUAGES.get(model_lang, 'english')`.
    #[test]
    fn listed_codes_map_to_their_model_and_others_to_english() {
        assert_eq!(punkt_language("de"), "german");
        assert_eq!(punkt_language("ml"), "malayalam");
        assert_eq!(punkt_language("ru"), "russian");
        for code in ["ja", "zh", "uk", "", "EN", "german", "de "] {
            assert_eq!(punkt_language(code), DEFAULT_PUNKT_LANGUAGE, "{code:?}");
        }
        let mut codes: Vec<_> = PUNKT_LANGUAGES.iter().map(|(c, _)| c).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), PUNKT_LANGUAGES.len());
    }
}
