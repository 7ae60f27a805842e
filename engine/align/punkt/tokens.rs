//! `PunktToken`: a word token with the annotations the two passes set (nltk/tokenize/punkt.py
//! `PunktToken`). Only what the sentence tokenizer reads is kept: `parastart` / `linestart`
//! are set by NLTK but used only by its trainer.

use super::chars::{is_py_lower, is_py_upper, is_regex_digit, is_regex_word_not_digit, py_lower};

/// The type every numeric token gets (`_get_type`).
pub(super) const NUMBER_TYPE: &str = "##number##";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PunktToken {
    /// `tok`: the token text (never empty: the word tokenizer matches at least one character).
    pub tok: Vec<char>,
    /// `type`: lowercase, or [`NUMBER_TYPE`] for a number.
    pub typ: String,
    /// `period_final`: the token ends with `.`.
    pub period_final: bool,
    pub sentbreak: bool,
    pub abbr: bool,
    pub ellipsis: bool,
}

impl PunktToken {
    pub fn new(tok: &[char]) -> Self {
        let lower = py_lower(tok);
        let lower_chars: Vec<char> = lower.chars().collect();
        let typ = if is_numeric(&lower_chars) { NUMBER_TYPE.to_owned() } else { lower };
        Self {
            tok: tok.to_vec(),
            typ,
            period_final: tok.last() == Some(&'.'),
            sentbreak: false,
            abbr: false,
            ellipsis: false,
        }
    }

    /// `type_no_period`: the type without its final period, unless it is only a period.
    pub fn type_no_period(&self) -> &str {
        match self.typ.strip_suffix('.') {
            Some(rest) if !rest.is_empty() => rest,
            _ => &self.typ,
        }
    }

    /// `type_no_sentperiod`: the type without the period that is a sentence break.
    pub fn type_no_sentperiod(&self) -> &str {
        if self.sentbreak {
            self.type_no_period()
        } else {
            &self.typ
        }
    }

    /// `first_upper`: `tok[0].isupper()`.
    pub fn first_upper(&self) -> bool {
        self.tok.first().is_some_and(|&c| is_py_upper(c))
    }

    /// `first_lower`: `tok[0].islower()`.
    pub fn first_lower(&self) -> bool {
        self.tok.first().is_some_and(|&c| is_py_lower(c))
    }

    /// `is_ellipsis`: `_RE_ELLIPSIS = \.\.+$` matched at the start — two or more periods only.
    pub fn is_ellipsis(&self) -> bool {
        self.tok.len() >= 2 && self.tok.iter().all(|&c| c == '.')
    }

    /// `is_initial`: `_RE_INITIAL = [^\W\d]\.$` matched at the start — one word character
    /// that is not a digit, then a period, then the end.
    pub fn is_initial(&self) -> bool {
        matches!(self.tok[..], [c, '.'] if is_regex_word_not_digit(c))
    }

    /// `text in sent_end_chars`: the token is exactly `.`, `?` or `!`.
    pub fn is_sent_end_char(&self) -> bool {
        matches!(self.tok[..], [c] if super::SENT_END_CHARS.contains(&c))
    }

    /// `tok.endswith("..")`.
    pub fn ends_with_two_periods(&self) -> bool {
        self.tok.ends_with(&['.', '.'])
    }

    /// `tok[:-1].lower()`: the token without its last character, lowercased.
    pub fn lower_without_last(&self) -> String {
        py_lower(&self.tok[..self.tok.len().saturating_sub(1)])
    }
}

/// `_RE_NUMERIC = ^-?[\.,]?\d[\d,\.-]*\.?$` on the lowercased token (`_get_type`). The pattern is
/// deterministic: an optional `-`, an optional `.` or `,`, a digit, then digits, `,`, `.` and
/// `-` only (the final `\.?` is covered by the class). A token has no newline, so `$` is the end.
fn is_numeric(s: &[char]) -> bool {
    let s = s.strip_prefix(&['-']).unwrap_or(s);
    let s = match s.first() {
        Some('.' | ',') => &s[1..],
        _ => s,
    };
    match s.split_first() {
        Some((&first, rest)) => {
            is_regex_digit(first) && rest.iter().all(|&c| is_regex_digit(c) || matches!(c, ',' | '.' | '-'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> PunktToken {
        PunktToken::new(&s.chars().collect::<Vec<_>>())
    }

    /// punkt.py `PunktToken._get_type` with `_RE_NUMERIC`: numbers (with `-`, `.`, `,` inside,
    /// any script's decimal digits) become `##number##`, everything else is lowercased.
    #[test]
    fn get_type_numbers_and_lowercase() {
        for n in ["3.5", "1999", "-4", ".9", ",5", "-.5", "1,000.00", "2.0.1", "12.", "555-1234", "5--", "٣", "൧."] {
            assert_eq!(token(n).typ, NUMBER_TYPE, "{n:?}");
        }
        for w in ["--4", "-", ".", "a1", "1a", "²", "3rd", "٣٫٥", "1/2", "+1"] {
            assert_ne!(token(w).typ, NUMBER_TYPE, "{w:?}");
        }
        assert_eq!(token("Hello.").typ, "hello.");
        assert_eq!(token("ΟΔΟΣ.").typ, "οδος.");
    }

    /// punkt.py `type_no_period` and `type_no_sentperiod`.
    #[test]
    fn type_without_periods() {
        assert_eq!(token("Dr.").type_no_period(), "dr");
        assert_eq!(token(".").type_no_period(), ".");
        assert_eq!(token("..").type_no_period(), ".");
        assert_eq!(token("12.").type_no_period(), NUMBER_TYPE);
        let mut t = token("End.");
        assert_eq!(t.type_no_sentperiod(), "end.");
        t.sentbreak = true;
        assert_eq!(t.type_no_sentperiod(), "end");
    }

    /// punkt.py `is_ellipsis`, `is_initial`, `first_upper`, `first_lower`, `period_final`.
    #[test]
    fn derived_properties() {
        assert!(token("..").is_ellipsis() && token(".....").is_ellipsis());
        assert!(!token(".").is_ellipsis() && !token("..a").is_ellipsis() && !token("a..").is_ellipsis());
        for t in ["J.", "j.", "é.", "Ω.", "_.", "\u{301}.", "ǅ."] {
            assert!(token(t).is_initial(), "{t:?}");
        }
        for t in ["1.", "².", "JR.", "J", ".."] {
            assert!(!token(t).is_initial(), "{t:?}");
        }
        assert!(token("Ärger").first_upper() && !token("Ärger").first_lower());
        assert!(token("ärger").first_lower());
        let titlecase = token("ǅungla");
        assert!(!titlecase.first_upper() && !titlecase.first_lower());
        assert!(token("a.").period_final && !token(".a").period_final);
        assert!(token("?").is_sent_end_char() && !token("?!").is_sent_end_char());
        assert_eq!(token("U.S.").lower_without_last(), "u.s");
    }
}
