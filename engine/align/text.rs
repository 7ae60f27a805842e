//! A segment's text made ready for alignment: which characters are aligned, and the tokens
//! (model classes, or the wildcard) they become.
//!
//! Two sets of rules:
//! - [`prepare_compat`]: WhisperX 3.8.3+ `align()` step 1 (`alignment.py` L170-198, tokens
//!   L278-289), character for character.
//! - [`prepare_strict`]: the default mode's rules, which keep WhisperX's word boundaries but give
//!   the acoustic model only what is spoken (see its doc).

use std::ops::Range;

use super::dictionary::Dictionary;

/// Languages WhisperX writes without spaces: every character is a word, and a space is not `|`
/// (WX L30, L175, L184, L326).
pub const LANGUAGES_WITHOUT_SPACES: [&str; 2] = ["ja", "zh"];

pub fn without_spaces(language: &str) -> bool {
    LANGUAGES_WITHOUT_SPACES.contains(&language)
}

/// Python's `str.isspace()` for one character (what `strip()`, `lstrip()`, `rstrip()` remove):
/// Unicode White_Space plus the information separators U+001C..U+001F.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// What a token stands for: a model class, or the wildcard (any non-blank class, WX L278-287),
/// whose column is appended after the model's classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Class(usize),
    Wildcard,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PreparedText {
    /// The segment's text as Unicode scalars (Python's `str` indexing).
    pub chars: Vec<char>,
    /// Indices into `chars` of the aligned characters, in order (WX `clean_cdx`).
    pub kept: Vec<usize>,
    /// The tokens, in order.
    pub tokens: Vec<Token>,
    /// For each kept character (same order as `kept`), its tokens.
    pub token_ranges: Vec<Range<usize>>,
}

impl PreparedText {
    pub fn has_wildcard(&self) -> bool {
        self.tokens.contains(&Token::Wildcard)
    }

    /// Token classes, the wildcard being class `wildcard` (the appended column).
    pub fn token_ids(&self, wildcard: usize) -> Vec<usize> {
        self.tokens
            .iter()
            .map(|t| match *t {
                Token::Class(c) => c,
                Token::Wildcard => wildcard,
            })
            .collect()
    }

    fn push(&mut self, cdx: usize, tokens: impl IntoIterator<Item = Token>) {
        let start = self.tokens.len();
        self.tokens.extend(tokens);
        self.kept.push(cdx);
        self.token_ranges.push(start..self.tokens.len());
    }
}

/// The positions WhisperX skips as leading and trailing whitespace (WX L170-171, L188-191):
/// `cdx < num_leading` or `cdx > len − num_trailing − 1`.
fn inner_range(chars: &[char]) -> Range<usize> {
    let leading = chars.iter().take_while(|c| py_isspace(**c)).count();
    let trailing = chars.iter().rev().take_while(|c| py_isspace(**c)).count();
    // All-whitespace text: both counts are the whole length and nothing is kept.
    leading..(chars.len() - trailing).max(leading)
}

/// WhisperX's step 1 (WX L170-198) and tokens (L278-289):
/// - skip leading and trailing whitespace;
/// - lowercase each character on its own (`char.lower()`, which may give two code points:
///   `İ` → `i̇`), and outside ja/zh turn a space into `|`;
/// - keep it if the dictionary has it, or else if it is neither `' '` nor `|` (since 3.8.3 an
///   unknown character, other whitespace such as `\n` included, is aligned as the wildcard);
/// - tokens are the code points of the kept strings joined (`text_clean`), each its class or the
///   wildcard. A kept character that lowercases to two code points therefore makes two tokens;
///   WhisperX still times kept character `k` by token `k` (L310), see [`super::compat`].
pub fn prepare_compat(text: &str, dict: &Dictionary, language: &str) -> PreparedText {
    let chars: Vec<char> = text.chars().collect();
    let mut out = PreparedText { chars: chars.clone(), kept: Vec::new(), tokens: Vec::new(), token_ranges: Vec::new() };
    let inner = inner_range(&chars);
    for (cdx, &c) in chars.iter().enumerate() {
        let mut lowered: String = c.to_lowercase().collect();
        if !without_spaces(language) {
            lowered = lowered.replace(' ', "|");
        }
        if !inner.contains(&cdx) || !(dict.contains(&lowered) || (lowered != " " && lowered != "|")) {
            continue;
        }
        let tokens: Vec<Token> = lowered
            .chars()
            .map(|cp| dict.get(cp.encode_utf8(&mut [0; 4])).map_or(Token::Wildcard, Token::Class))
            .collect();
        out.push(cdx, tokens);
    }
    out
}

/// Punctuation that is written but not spoken: it gets no token in the default mode, so it
/// cannot take frames from the sounds around it. Symbols that are read out (`%`, `&`, `#`, `@`,
/// `$`, `+`, `=`, `/`, ...) are not here: they are aligned through the wildcard.
pub fn is_silent_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | '"'
            | '\''
            | '`'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '-'
            | '_'
            | '…'
            | '‐'
            | '‑'
            | '‒'
            | '–'
            | '—'
            | '―'
            | '«'
            | '»'
            | '‹'
            | '›'
            | '“'
            | '”'
            | '„'
            | '‟'
            | '‘'
            | '’'
            | '‚'
            | '‛'
            | '¿'
            | '¡'
            | '·'
            | '、'
            | '。'
            | '，'
            | '！'
            | '？'
            | '：'
            | '；'
            | '「'
            | '」'
            | '『'
            | '』'
            | '（'
            | '）'
            | '【'
            | '】'
            | '《'
            | '》'
            | '〈'
            | '〉'
            | '・'
            | '～'
            | '〜'
            | '،'
            | '؛'
            | '؟'
            | '।'
            | '॥'
            | '\u{37e}'
            | '\u{387}'
            | '״'
            | '׳'
            | '־'
    )
}

/// The default mode's rules: WhisperX's trimming and lowercasing, but
/// - a character in the dictionary is its class, unless that class is the blank (the English
///   torchaudio model spells its blank `-`): then it is punctuation, or, if not, the wildcard;
/// - punctuation that is not spoken ([`is_silent_punctuation`]) and whitespace other than a
///   space get no token; a run of spaces (and the silent characters within it) gives one `|`;
/// - any other character is the wildcard (digits, symbols, other scripts); a character that
///   lowercases to several code points is one token when the dictionary has the whole string,
///   else the code points the dictionary has, else one wildcard.
pub fn prepare_strict(text: &str, dict: &Dictionary, language: &str) -> PreparedText {
    let chars: Vec<char> = text.chars().collect();
    let mut out = PreparedText { chars: chars.clone(), kept: Vec::new(), tokens: Vec::new(), token_ranges: Vec::new() };
    let inner = inner_range(&chars);
    let delimiter = dict.word_delimiter();
    let spaces = !without_spaces(language);
    let usable = |label: &str| dict.get(label).filter(|&id| id != dict.blank());
    for cdx in inner {
        let c = chars[cdx];
        if c == ' ' || c == '|' {
            let previous_is_delimiter = out.tokens.last().is_some_and(|t| Some(*t) == delimiter.map(Token::Class));
            if let (true, Some(d), false) = (spaces, delimiter, previous_is_delimiter) {
                out.push(cdx, [Token::Class(d)]);
            }
            continue;
        }
        let lowered: String = c.to_lowercase().collect();
        let tokens: Vec<Token> = match usable(&lowered) {
            Some(id) => vec![Token::Class(id)],
            None if py_isspace(c) || is_silent_punctuation(c) => continue,
            None => {
                let known: Vec<Token> =
                    lowered.chars().filter_map(|cp| usable(cp.encode_utf8(&mut [0; 4]))).map(Token::Class).collect();
                if known.is_empty() {
                    vec![Token::Wildcard]
                } else {
                    known
                }
            }
        };
        out.push(cdx, tokens);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en() -> Dictionary {
        Dictionary::torchaudio_base_960h()
    }

    fn classes(p: &PreparedText) -> Vec<Option<usize>> {
        p.tokens
            .iter()
            .map(|t| match t {
                Token::Class(c) => Some(*c),
                Token::Wildcard => None,
            })
            .collect()
    }

    #[test]
    fn compat_trims_lowercases_maps_spaces_and_keeps_unknown_characters_as_wildcards() {
        // WX L170-198: " Hi 1!" → h i | 1 ! (the leading space skipped; '1' and '!' wildcards).
        let p = prepare_compat(" Hi 1! ", &en(), "en");
        assert_eq!(p.kept, [1, 2, 3, 4, 5]);
        assert_eq!(classes(&p), [Some(8), Some(7), Some(1), None, None]);
        assert!(p.has_wildcard());
        assert_eq!(p.token_ids(29), [8, 7, 1, 29, 29]);
    }

    #[test]
    fn compat_maps_a_dash_to_the_blank_and_other_whitespace_to_the_wildcard() {
        // '-' is in the torchaudio English dictionary (it is the blank, class 0); '\n' is not
        // a ' ', so since 3.8.3 it is kept as a wildcard.
        let p = prepare_compat("a-b\nc", &en(), "en");
        assert_eq!(classes(&p), [Some(4), Some(0), Some(21), None, Some(16)]);
    }

    #[test]
    fn compat_without_spaces_drops_spaces_for_ja_and_zh() {
        let dict = Dictionary::from_vocab([("<pad>".into(), 0), ("你".into(), 1), ("好".into(), 2), ("|".into(), 3)]);
        let p = prepare_compat("你 好", &dict, "zh");
        assert_eq!(p.kept, [0, 2]);
        assert_eq!(classes(&p), [Some(1), Some(2)]);
        // In another language the same space is '|'.
        assert_eq!(classes(&prepare_compat("你 好", &dict, "de")), [Some(1), Some(3), Some(2)]);
    }

    #[test]
    fn compat_a_character_that_lowercases_to_two_code_points_makes_two_tokens() {
        // 'İ'.lower() == 'i̇' (i + U+0307): not in the dictionary, so kept; text_clean then has
        // two code points for it, 'i' (class 7) and the combining dot (wildcard).
        let p = prepare_compat("İt", &en(), "en");
        assert_eq!(p.kept, [0, 1]);
        assert_eq!(classes(&p), [Some(7), None, Some(3)]);
        assert_eq!(p.token_ranges, [0..2, 2..3]);
    }

    #[test]
    fn compat_all_whitespace_keeps_nothing() {
        assert!(prepare_compat("   ", &en(), "en").kept.is_empty());
        assert!(prepare_compat("", &en(), "en").kept.is_empty());
    }

    #[test]
    fn strict_skips_silent_punctuation_and_collapses_spaces() {
        // "Well - it's 5%." → w e l l | i t ' s | 5 % (the dash and its space collapse into
        // one '|'; the apostrophe is in the dictionary; '5' and '%' are wildcards; '.' silent).
        let p = prepare_strict("Well - it's 5%.", &en(), "en");
        let expect =
            [Some(15), Some(2), Some(12), Some(12), Some(1), Some(7), Some(3), Some(24), Some(9), Some(1), None, None];
        assert_eq!(classes(&p), expect);
        assert_eq!(p.kept, [0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13]);
    }

    #[test]
    fn strict_never_uses_the_blank_as_a_token() {
        // '#' is not in the dictionary (wildcard); a '-' that is not between words is silent.
        let p = prepare_strict("a-b #", &en(), "en");
        assert_eq!(classes(&p), [Some(4), Some(21), Some(1), None]);
        let dict = Dictionary::from_vocab([("<pad>".into(), 0), ("x".into(), 1), ("~".into(), 0)]);
        // '~' has the blank's id and is not silent punctuation: the wildcard.
        assert_eq!(classes(&prepare_strict("x~", &dict, "en")), [Some(1), None]);
    }
}
