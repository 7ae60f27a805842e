//! Sentence spans: `PunktSentenceTokenizer._slices_from_text`, `_realign_boundaries` and
//! `span_tokenize` (nltk/tokenize/punkt.py), in character offsets.

use super::annotate::text_contains_sentbreak;
use super::chars::{is_regex_space, py_rstrip_len};
use super::contexts::potential_end_contexts;
use super::params::PunktParameters;

/// `re_boundary_realignment`'s closing characters: `"')]}`, the curly quotes and guillemets.
pub const BOUNDARY_REALIGNMENT_CHARS: [char; 11] =
    ['"', '\'', ')', ']', '}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{ab}', '\u{bb}'];

/// `span_tokenize(text, realign_boundaries)`: `(start, stop)` of each sentence, in characters,
/// exactly as NLTK yields them.
pub(super) fn span_tokenize(params: &PunktParameters, text: &[char], realign_boundaries: bool) -> Vec<(usize, usize)> {
    let slices = slices_from_text(params, text);
    if realign_boundaries {
        realign(text, &slices)
    } else {
        slices
    }
}

/// `_slices_from_text`: a sentence ends at each candidate whose context holds a sentence break;
/// the next one starts at the token after the whitespace, or right after the candidate when a
/// non-word character follows it. The last one runs to the end of the text without its trailing
/// `str.isspace()` characters (even when that is before its start).
pub(super) fn slices_from_text(params: &PunktParameters, text: &[char]) -> Vec<(usize, usize)> {
    let mut slices = Vec::new();
    let mut last_break = 0;
    for (m, context) in potential_end_contexts(text) {
        if text_contains_sentbreak(params, &text[context]) {
            slices.push((last_break, m.end()));
            last_break = m.next_tok_start.unwrap_or(m.end());
        }
    }
    slices.push((last_break, py_rstrip_len(text)));
    slices
}

/// `_realign_boundaries`: closing quotes and brackets at the start of a sentence move to the end
/// of the sentence before. Empty sentences are dropped, except where NLTK does not check: a
/// sentence whose successor starts with closers is yielded, from its (shifted) start to those
/// closers, whatever it holds.
pub(super) fn realign(text: &[char], slices: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let nonempty = |(start, stop): (usize, usize)| start < stop.min(text.len());
    let mut out = Vec::new();
    let mut realign = 0;
    for (i, &(start, stop)) in slices.iter().enumerate() {
        let sentence1 = (start + realign, stop);
        let Some(&sentence2) = slices.get(i + 1) else {
            if nonempty(sentence1) {
                out.push(sentence1);
            }
            continue;
        };
        let s2 = &text[sentence2.0.min(text.len())..sentence2.1.clamp(sentence2.0.min(text.len()), text.len())];
        if let Some((closers, matched)) = boundary_realignment(s2) {
            out.push((sentence1.0, sentence2.0 + closers));
            realign = matched;
        } else {
            realign = 0;
            if nonempty(sentence1) {
                out.push(sentence1);
            }
        }
    }
    out
}

/// `re_boundary_realignment.match(s)`, pattern `[closers]+?(?:\s+|(?=--)|$)` (MULTILINE): the
/// fewest closers followed by whitespace (taken greedily), `--`, or the end. Returns the number
/// of closers (`len(m.group(0).rstrip())`: closers are never whitespace) and `m.end()`. `$`
/// before a `\n` is never reached: `\s+` takes the newline first.
fn boundary_realignment(s: &[char]) -> Option<(usize, usize)> {
    for k in 1..=s.len() {
        if !BOUNDARY_REALIGNMENT_CHARS.contains(&s[k - 1]) {
            return None;
        }
        let spaces = s[k..].iter().take_while(|&&c| is_regex_space(c)).count();
        if spaces > 0 {
            return Some((k, k + spaces));
        }
        if s[k..].starts_with(&['-', '-']) || k == s.len() {
            return Some((k, k));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn sentences(s: &str, realign_boundaries: bool) -> Vec<String> {
        let text = chars(s);
        let params = PunktParameters { abbrev_types: ["dr".to_string()].into(), ..Default::default() };
        span_tokenize(&params, &text, realign_boundaries)
            .into_iter()
            .map(|(a, b)| text[a.min(b)..b].iter().collect())
            .collect()
    }

    /// punkt.py `_slices_from_text`: breaks after candidates whose context has a break, the next
    /// sentence at the next token; the last without trailing whitespace; leading whitespace kept.
    #[test]
    fn slices_from_text_breaks() {
        assert_eq!(sentences(" Hello world. This is Dr. Smith.  \n", true), [" Hello world.", "This is Dr. Smith."]);
        assert_eq!(sentences("One.\n\nTwo!Three? four", true), ["One.", "Two!Three?", "four"]);
        assert_eq!(sentences("", true), Vec::<String>::new());
        let text = chars("   ");
        assert_eq!(slices_from_text(&PunktParameters::default(), &text), [(0, 0)]);
    }

    /// punkt.py `_realign_boundaries`, its docstring's example: "(Sent1.) Sent2." keeps the ")"
    /// in the first sentence; without realignment the ")" starts the second.
    #[test]
    fn realign_boundaries_moves_closers() {
        assert_eq!(sentences("(Sent1.) Sent2.", true), ["(Sent1.)", "Sent2."]);
        assert_eq!(sentences("(Sent1.) Sent2.", false), ["(Sent1.", ") Sent2."]);
        assert_eq!(sentences("He said \"Stop.\" Then left.", true), ["He said \"Stop.\"", "Then left."]);
        assert_eq!(sentences("«Oui.» Non.", true), ["«Oui.»", "Non."]);
        assert_eq!(sentences("Closing.)-- Next.", true), ["Closing.)", "-- Next."]);
    }

    /// `re_boundary_realignment`: lazy closers, then whitespace (greedy), `--` or the end.
    #[test]
    fn boundary_realignment_pattern() {
        assert_eq!(boundary_realignment(&chars(")\" \n x")), Some((2, 5)));
        assert_eq!(boundary_realignment(&chars(")--x")), Some((1, 1)));
        assert_eq!(boundary_realignment(&chars("))")), Some((2, 2)));
        assert_eq!(boundary_realignment(&chars(")x")), None);
        assert_eq!(boundary_realignment(&chars("x)")), None);
        assert_eq!(boundary_realignment(&[]), None);
    }

    /// `_realign_boundaries` on hand-made slices: a sentence emptied by the move is dropped when
    /// it is the last; when the one after it starts with closers too, it is yielded from its
    /// shifted start to those closers (here " )").
    #[test]
    fn realign_edge_cases() {
        let text = chars("a.) ) b");
        assert_eq!(realign(&text, &[(0, 2), (2, 3), (4, 7)]), [(0, 3), (3, 5), (6, 7)]);
        let text = chars("a.)");
        assert_eq!(realign(&text, &[(0, 2), (2, 3)]), [(0, 3)]);
        assert_eq!(realign(&text, &[(0, 0)]), []);
    }
}
