//! Candidate sentence ends and the text around each: `PunktLanguageVars.period_context_re` and
//! `PunktSentenceTokenizer._match_potential_end_contexts` (nltk/tokenize/punkt.py).

use super::chars::{is_regex_space, STRING_WHITESPACE};
use super::words::is_non_word_char;
use super::SENT_END_CHARS;

/// One match of `period_context_re`: `[.?!]` followed by `(?P<after_tok>NonWord|\s+(?P<next_tok>\S+))`
/// (a lookahead). Character offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeriodContext {
    /// The sentence end character (`match.start()`; `match.end()` is one more).
    pub start: usize,
    /// Where `after_tok` ends: after the non-word character, or after the next token.
    pub after_end: usize,
    /// `match.start("next_tok")`, when `after_tok` is whitespace and a token.
    pub next_tok_start: Option<usize>,
}

impl PeriodContext {
    pub fn end(&self) -> usize {
        self.start + 1
    }
}

/// `period_context_re().finditer(text)`: every `.`, `?`, `!` followed by a non-word character, or
/// by whitespace and then something that is not whitespace. Each match is one character, so
/// they never overlap.
pub(super) fn period_contexts(text: &[char]) -> Vec<PeriodContext> {
    let mut found = Vec::new();
    for (i, &c) in text.iter().enumerate() {
        if !SENT_END_CHARS.contains(&c) {
            continue;
        }
        match text.get(i + 1) {
            Some(&after) if is_non_word_char(after) => {
                found.push(PeriodContext { start: i, after_end: i + 2, next_tok_start: None })
            }
            Some(&after) if is_regex_space(after) => {
                let next = i + 1 + text[i + 1..].iter().take_while(|&&c| is_regex_space(c)).count();
                if next < text.len() {
                    let after_end = next + text[next..].iter().take_while(|&&c| !is_regex_space(c)).count();
                    found.push(PeriodContext { start: i, after_end, next_tok_start: Some(next) });
                }
            }
            _ => {}
        }
    }
    found
}

/// `_match_potential_end_contexts`: each candidate with its context, the text from the start of
/// the word before it to the end of `after_tok` (NLTK concatenates `text[previous_slice]`, the
/// match and `after_tok`, which are adjacent). Runs of candidates inside one word ("acting!!!")
/// keep only the last.
///
/// The word before a candidate starts after the last `string.whitespace` character between the
/// previous candidate and this one; when there is none, *or it is the first character there*
/// (`_get_last_whitespace_index` returns 0 for both), the previous word's start is reused.
pub(super) fn potential_end_contexts(text: &[char]) -> Vec<(PeriodContext, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut previous: Option<PeriodContext> = None;
    let mut previous_slice = 0..0;
    for m in period_contexts(text) {
        let before = &text[previous_slice.end..m.start];
        let last_space = before.iter().rposition(|c| STRING_WHITESPACE.contains(c)).unwrap_or(0);
        let word_start = if last_space != 0 { previous_slice.end + last_space + 1 } else { previous_slice.start };
        let word = word_start..m.start;
        if let Some(p) = previous {
            if previous_slice.end <= word.start {
                out.push((p, previous_slice.start..p.after_end));
            }
        }
        previous = Some(m);
        previous_slice = word;
    }
    if let Some(p) = previous {
        out.push((p, previous_slice.start..p.after_end));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn contexts(s: &str) -> Vec<(usize, String)> {
        let text = chars(s);
        potential_end_contexts(&text).into_iter().map(|(m, r)| (m.start, text[r].iter().collect())).collect()
    }

    /// punkt.py `period_context_re`: a candidate needs a non-word character, or whitespace and
    /// a token, after it; `after_tok` / `next_tok` as the groups capture them.
    #[test]
    fn period_context_re_matches() {
        let text = chars("A. b.) c?\n\n  dd!x e.");
        let found = period_contexts(&text);
        assert_eq!(
            found,
            [
                PeriodContext { start: 1, after_end: 6, next_tok_start: Some(3) },
                PeriodContext { start: 4, after_end: 6, next_tok_start: None },
                PeriodContext { start: 8, after_end: 17, next_tok_start: Some(13) },
            ]
        );
        assert!(period_contexts(&chars("end. \n ")).is_empty());
        assert!(period_contexts(&chars("")).is_empty());
    }

    /// punkt.py `_match_potential_end_contexts`, its docstring's example: "acting!!! I" is one
    /// context, at the last "!".
    #[test]
    fn overlapping_candidates_keep_the_last() {
        assert_eq!(contexts("Very bad acting!!! I promise."), [(17, "acting!!! I".to_string())]);
        assert_eq!(contexts("Mr. Smith. He left."), [(2, "Mr. Smith.".to_string()), (9, "Smith. He".to_string())]);
    }

    /// `_get_last_whitespace_index` sees only ASCII whitespace and returns 0 for "none" and for
    /// "at index 0": the previous word's start is then reused.
    #[test]
    fn last_whitespace_index_quirks() {
        // no-break space is not in string.whitespace: the word before "." reaches back to "a"
        assert_eq!(contexts("a\u{a0}b. C"), [(3, "a\u{a0}b. C".to_string())]);
        // leading space at index 0 of the first gap: the word starts at 0, not 1
        assert_eq!(contexts(" Hi. There"), [(3, " Hi. There".to_string())]);
        assert_eq!(contexts("  Hi. There"), [(4, "Hi. There".to_string())]);
    }
}
