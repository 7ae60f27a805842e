//! The character classes Punkt's decisions depend on, each as NLTK 3.10 evaluates it.
//!
//! NLTK compiles its patterns with the third-party `regex` module (`nltk/redos.py`), not `re`, and
//! also calls `str` methods; the two disagree about what whitespace and word characters are, so
//! each use below names which one it reproduces:
//!
//! * `regex` `\s`: Unicode `White_Space` — the word tokenizer, `period_context_re`,
//!   `re_boundary_realignment`.
//! * `str.isspace()`: `White_Space` plus U+001C..U+001F — `str.strip()` / `str.rstrip()`.
//! * `string.whitespace`: the six ASCII spaces — `_get_last_whitespace_index`.
//! * `regex` `\d` and `[^\W\d]`: tables generated from the pinned `regex` module
//!   ([`super::unicode_tables`]); `\w` there includes combining marks, unlike `re`'s.
//! * `str.isupper()` / `str.islower()` / `str.lower()` on the Unicode data of Rust's `char`
//!   (Python 3.11 has Unicode 14: characters added later may differ).

use super::unicode_tables::{REGEX_DECIMAL, REGEX_WORD_NOT_DIGIT};

/// `string.whitespace`: what `_get_last_whitespace_index` looks for (ASCII only).
pub(super) const STRING_WHITESPACE: [char; 6] = [' ', '\t', '\n', '\r', '\u{0b}', '\u{0c}'];

/// `\s` of the `regex` module (Unicode `White_Space`, the same set as Rust's).
pub(super) fn is_regex_space(c: char) -> bool {
    c.is_whitespace()
}

/// `str.isspace()` for one character: `White_Space` and the four ASCII information separators.
pub(super) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `\d` of the `regex` module: `Decimal_Number`.
pub(super) fn is_regex_digit(c: char) -> bool {
    in_table(REGEX_DECIMAL, c)
}

/// `[^\W\d]` of the `regex` module: a word character (letters, marks, connector punctuation...)
/// that is not a decimal digit.
pub(super) fn is_regex_word_not_digit(c: char) -> bool {
    in_table(REGEX_WORD_NOT_DIGIT, c)
}

/// `str.isupper()` on one character (the `Uppercase` property).
pub(super) fn is_py_upper(c: char) -> bool {
    c.is_uppercase()
}

/// `str.islower()` on one character (the `Lowercase` property).
pub(super) fn is_py_lower(c: char) -> bool {
    c.is_lowercase()
}

/// `str.lower()`: full case mapping, final sigma included (both Python and Rust apply it).
pub(super) fn py_lower(chars: &[char]) -> String {
    chars.iter().collect::<String>().to_lowercase()
}

/// `str.strip()` is empty: every character is `str.isspace()`.
pub(super) fn is_py_blank(chars: &[char]) -> bool {
    chars.iter().all(|&c| is_py_space(c))
}

/// `len(s.rstrip())`.
pub(super) fn py_rstrip_len(chars: &[char]) -> usize {
    chars.iter().rposition(|&c| !is_py_space(c)).map_or(0, |i| i + 1)
}

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `regex` `\s` as NLTK's patterns see it: exactly these 25 code points (listed by
    /// tests/reference/make_punkt_reference.py from regex 2026.11.19).
    #[test]
    fn regex_space_is_white_space() {
        let expected: Vec<u32> = vec![
            0x9, 0xa, 0xb, 0xc, 0xd, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
            0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
        ];
        let found: Vec<u32> =
            (0..=0x10ffffu32).filter_map(char::from_u32).filter(|&c| is_regex_space(c)).map(|c| c as u32).collect();
        assert_eq!(found, expected);
    }

    /// `str.isspace()` adds U+001C..U+001F (bidi class B/S) to `\s`: `line.strip()` in
    /// `_tokenize_words` drops them although the word tokenizer keeps them inside tokens.
    #[test]
    fn py_space_adds_information_separators() {
        for c in ['\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}'] {
            assert!(is_py_space(c) && !is_regex_space(c));
        }
        assert!(is_py_space('\u{3000}') && !is_py_space('\u{200b}'));
        assert_eq!(py_rstrip_len(&['a', ' ', '\u{1f}']), 1);
        assert!(is_py_blank(&[]) && is_py_blank(&['\u{1c}', ' ']) && !is_py_blank(&['.']));
    }

    /// `\d` and `[^\W\d]` of the `regex` module (`PunktToken._RE_NUMERIC`, `_RE_INITIAL`):
    /// Arabic-Indic and Malayalam digits are digits; `²` and `½` are neither digits nor word
    /// characters; combining marks and `_` are word characters.
    #[test]
    fn regex_digit_and_word_tables() {
        for c in ['0', '9', '\u{663}', '\u{d66}', '\u{ff19}'] {
            assert!(is_regex_digit(c) && !is_regex_word_not_digit(c), "{c:?}");
        }
        for c in ['a', 'Z', 'é', 'ß', 'Ω', 'я', '中', '_', '\u{301}', '\u{d3e}'] {
            assert!(is_regex_word_not_digit(c) && !is_regex_digit(c), "{c:?}");
        }
        for c in ['²', '½', '.', '-', ' ', '😀'] {
            assert!(!is_regex_word_not_digit(c) && !is_regex_digit(c), "{c:?}");
        }
    }

    /// The tables are sorted, disjoint ranges (binary search relies on it) and equal to the ones
    /// recorded in tests/reference/data/punkt_spans.json by the script that generated them.
    #[test]
    fn tables_sorted_and_match_reference_json() {
        for table in [REGEX_DECIMAL, REGEX_WORD_NOT_DIGIT] {
            assert!(table.iter().all(|&(lo, hi)| lo <= hi));
            assert!(table.windows(2).all(|w| w[0].1 + 1 < w[1].0));
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/data/punkt_spans.json");
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let ranges = |key: &str| -> Vec<(u32, u32)> {
            json["unicode_tables"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r[0].as_u64().unwrap() as u32, r[1].as_u64().unwrap() as u32))
                .collect()
        };
        assert_eq!(ranges("regex_decimal"), REGEX_DECIMAL);
        assert_eq!(ranges("regex_word_not_digit"), REGEX_WORD_NOT_DIGIT);
    }

    /// `str.lower()` applies the final-sigma rule, as Rust's `to_lowercase` does.
    #[test]
    fn lower_final_sigma() {
        let word: Vec<char> = "ΟΔΟΣ.".chars().collect();
        assert_eq!(py_lower(&word), "οδος.");
        assert_eq!(py_lower(&word[..4]), "οδος");
        assert_eq!(py_lower(&['İ']), "i\u{307}");
    }
}
