//! Word tokenization: `PunktLanguageVars.word_tokenize` (the `_word_tokenize_fmt` pattern) and
//! `PunktBaseClass._tokenize_words` (nltk/tokenize/punkt.py), matched by hand.
//!
//! The pattern, scanned left to right like `findall`, takes at each position the first of:
//! 1. `_re_multi_char_punct`: `-{2,}`, `\.{2,}` or `(?:\.\s){2,}\.`;
//! 2. a word: a character allowed to start one (`_re_word_start`), then the fewest further
//!    non-space characters after which a word may end (see [`word_may_end_at`]);
//! 3. any single non-space character.
//!
//! A space matches none of them and is skipped. Periods stay attached to words ("Dr." is one
//! token); the characters of `_re_non_word_chars` end a word.

use super::chars::{is_py_blank, is_regex_space};

/// Characters `_re_word_start` (`[^\(\"\`{\[:;&\#\*@\)}\]\-,]`) refuses as a word's first.
pub(super) const NOT_WORD_START: [char; 16] =
    ['(', '"', '`', '{', '[', ':', ';', '&', '#', '*', '@', ')', '}', ']', '-', ','];

/// `_re_non_word_chars`: characters that cannot be inside a word — `)";}]*:@'({[`, the curly
/// quotes and guillemets, and the sentence end characters other than `.`.
pub(super) const NON_WORD_CHARS: [char; 20] = [
    ')', '"', ';', '}', ']', '*', ':', '@', '\'', '(', '{', '[', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}',
    '\u{ab}', '\u{bb}', '?', '!',
];

pub(super) fn is_non_word_char(c: char) -> bool {
    NON_WORD_CHARS.contains(&c)
}

/// `_tokenize_words`: the tokens of every line (`plaintext.split("\n")`) that is not blank after
/// `str.strip()`, as character ranges of `text`.
pub(super) fn tokenize_words(text: &[char]) -> Vec<(usize, usize)> {
    let mut tokens = Vec::new();
    let mut line_start = 0;
    for line in text.split(|&c| c == '\n') {
        if !is_py_blank(line) {
            tokens.extend(word_tokenize(line).into_iter().map(|(s, e)| (line_start + s, line_start + e)));
        }
        line_start += line.len() + 1;
    }
    tokens
}

/// `word_tokenize` on one line (which holds no `\n`): token character ranges.
pub(super) fn word_tokenize(line: &[char]) -> Vec<(usize, usize)> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if is_regex_space(line[i]) {
            i += 1;
            continue;
        }
        let end = if let Some(len) = multi_char_punct_len(line, i) {
            i + len
        } else if !NOT_WORD_START.contains(&line[i]) {
            (i + 1..=line.len()).find(|&e| word_may_end_at(line, e)).unwrap_or(line.len())
        } else {
            i + 1
        };
        tokens.push((i, end));
        i = end;
    }
    tokens
}

/// `_re_multi_char_punct = (?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)` matched at `i`: its length.
pub(super) fn multi_char_punct_len(s: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| s.get(k).copied();
    let run = |c: char| s[i..].iter().take_while(|&&x| x == c).count();
    match (at(i), at(i + 1)) {
        (Some('-'), Some('-')) => Some(run('-')),
        (Some('.'), Some('.')) => Some(run('.')),
        (Some('.'), _) => {
            // as many ". " pairs as there are, then a period; backtracking one pair always finds
            // that pair's period, so three or more pairs always match
            let pairs = (0..)
                .take_while(|&k| at(i + 2 * k) == Some('.') && at(i + 2 * k + 1).is_some_and(is_regex_space))
                .count();
            if pairs >= 2 && at(i + 2 * pairs) == Some('.') {
                Some(2 * pairs + 1)
            } else if pairs >= 3 {
                Some(2 * pairs - 1)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The lookahead that ends a word before position `e`: a space, the end, a non-word character,
/// multi-character punctuation, or a comma followed by one of those (so "3,5" stays one word
/// and "word," does not).
fn word_may_end_at(s: &[char], e: usize) -> bool {
    let boundary = |k: usize| match s.get(k) {
        None => true,
        Some(&c) => is_regex_space(c) || is_non_word_char(c) || multi_char_punct_len(s, k).is_some(),
    };
    boundary(e) || (s.get(e) == Some(&',') && boundary(e + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        tokenize_words(&chars).into_iter().map(|(s, e)| chars[s..e].iter().collect()).collect()
    }

    /// punkt.py `PunktLanguageVars.word_tokenize`: periods stay on words, other punctuation is
    /// split off, commas only at a word's end.
    #[test]
    fn word_tokenize_splits_punctuation_but_not_periods() {
        assert_eq!(
            words("Mr. Smith, (the U.S.A. one) said: \"hi!\""),
            ["Mr.", "Smith", ",", "(", "the", "U.S.A.", "one", ")", "said", ":", "\"", "hi", "!", "\""]
        );
        assert_eq!(words("3,5 a,b word, x,\"y\""), ["3,5", "a,b", "word", ",", "x", ",", "\"", "y", "\""]);
        // opening curly quotes and guillemets may start a word; closing ones end it
        assert_eq!(words("etc.) «Oui.» “Yes.”"), ["etc.", ")", "«Oui.", "»", "“Yes.", "”"]);
        assert_eq!(words("a?b what?! ok"), ["a", "?b", "what", "?", "!", "ok"]);
        assert_eq!(words("#tag @user x-ray -x --y"), ["#", "tag", "@", "user", "x-ray", "-", "x", "--", "y"]);
    }

    /// punkt.py `_re_multi_char_punct`: dashes, period runs and spaced ellipses are one token
    /// and also end a word.
    #[test]
    fn multi_char_punctuation() {
        assert_eq!(
            words("Wait... what.. so--then . . . end . . x"),
            ["Wait", "...", "what", "..", "so", "--", "then", ". . .", "end", ".", ".", "x"]
        );
        assert_eq!(words(". . . . x"), [". . . .", "x"]);
        assert_eq!(words(". . . . .x"), [". . . . .", "x"]);
        assert_eq!(words("a. . ."), ["a", ". . ."]);
        assert_eq!(multi_char_punct_len(&['.', ' ', '.', ' ', '.', ' ', 'x'], 0), Some(5));
        assert_eq!(multi_char_punct_len(&['.', ' ', '.', ' ', 'x'], 0), None);
        assert_eq!(multi_char_punct_len(&['.', '\u{a0}', '.', '\u{3000}', '.'], 0), Some(5));
    }

    /// punkt.py `_tokenize_words`: lines split on `\n` only (`\r`, U+2028 are spaces inside a
    /// line); lines blank by `str.strip()`, which counts U+001C..U+001F as space, give no tokens,
    /// while inside a line those characters are part of a word (`\s` excludes them).
    #[test]
    fn tokenize_words_lines() {
        assert_eq!(words("one.\n\n two\r\nthree\u{2028}four"), ["one.", "two", "three", "four"]);
        assert_eq!(words("\u{1c}\n \u{1f} \nx\u{1c}y"), ["x\u{1c}y"]);
        assert!(words("").is_empty() && words(" \n\t").is_empty());
        let chars: Vec<char> = "ab\ncd".chars().collect();
        assert_eq!(tokenize_words(&chars), [(0, 2), (3, 5)]);
    }
}
