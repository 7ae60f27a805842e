//! The two annotation passes over word tokens and the sentence-break test built on them
//! (nltk/tokenize/punkt.py `_first_pass_annotation`, `_second_pass_annotation`,
//! `text_contains_sentbreak`).

use super::ortho::{ortho_heuristic, SentStarter, ORTHO_LC};
use super::params::PunktParameters;
use super::tokens::{PunktToken, NUMBER_TYPE};
use super::words::tokenize_words;

/// `text_contains_sentbreak`: whether a token other than the last one ends a sentence once both
/// passes have run over `text`'s tokens.
pub(super) fn text_contains_sentbreak(params: &PunktParameters, text: &[char]) -> bool {
    let mut tokens: Vec<PunktToken> =
        tokenize_words(text).into_iter().map(|(s, e)| PunktToken::new(&text[s..e])).collect();
    for tok in &mut tokens {
        first_pass_annotation(params, tok);
    }
    // the second pass looks at the next token as the first pass left it
    for i in 0..tokens.len().saturating_sub(1) {
        let (head, tail) = tokens.split_at_mut(i + 1);
        second_pass_annotation(params, &mut head[i], &tail[0]);
    }
    tokens.iter().rev().skip(1).any(|t| t.sentbreak)
}

/// `_first_pass_annotation`: decisions from the token alone. `.`, `?`, `!` are breaks; runs of
/// periods are ellipses; a word ending in one period is an abbreviation when it (or its part
/// after the last `-`) is a known abbreviation type, else a break.
pub(super) fn first_pass_annotation(params: &PunktParameters, tok: &mut PunktToken) {
    if tok.is_sent_end_char() {
        tok.sentbreak = true;
    } else if tok.is_ellipsis() {
        tok.ellipsis = true;
    } else if tok.period_final && !tok.ends_with_two_periods() {
        let stem = tok.lower_without_last();
        let last_part = stem.rsplit('-').next().unwrap_or("");
        if params.abbrev_types.contains(&stem) || params.abbrev_types.contains(last_part) {
            tok.abbr = true;
        } else {
            tok.sentbreak = true;
        }
    }
}

/// `_second_pass_annotation`: revises a period-final token from the token that follows it
/// (sections 4.1.1-4.3 of Kiss & Strunk).
pub(super) fn second_pass_annotation(params: &PunktParameters, tok: &mut PunktToken, next: &PunktToken) {
    if !tok.period_final {
        return;
    }
    let typ = tok.type_no_period();
    let next_typ = next.type_no_sentperiod();
    let tok_is_initial = tok.is_initial();

    // [4.1.2] a known collocation around the period: an abbreviation, not a break
    if params.collocations.contains(&(typ.to_owned(), next_typ.to_owned())) {
        tok.sentbreak = false;
        tok.abbr = true;
        return;
    }

    // [4.2] an abbreviation or ellipsis may also end the sentence: the orthographic heuristic,
    // then [4.1.3] a capitalized frequent sentence starter
    if (tok.abbr || tok.ellipsis) && !tok_is_initial {
        if ortho_heuristic(params, next) == SentStarter::Yes {
            tok.sentbreak = true;
            return;
        }
        if next.first_upper() && params.sent_starters.contains(next_typ) {
            tok.sentbreak = true;
            return;
        }
    }

    // [4.3] initials and ordinal numbers marked as breaks may be abbreviations
    if tok_is_initial || typ == NUMBER_TYPE {
        let is_sent_starter = ortho_heuristic(params, next);
        if is_sent_starter == SentStarter::No {
            tok.sentbreak = false;
            tok.abbr = true;
            return;
        }
        // an initial before a word never seen in lower case (J. Bach)
        if is_sent_starter == SentStarter::Unknown
            && tok_is_initial
            && next.first_upper()
            && params.ortho_context(next_typ) & ORTHO_LC == 0
        {
            tok.sentbreak = false;
            tok.abbr = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ortho::{ORTHO_BEG_UC, ORTHO_MID_LC, ORTHO_MID_UC};
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn token(s: &str) -> PunktToken {
        PunktToken::new(&chars(s))
    }

    fn params() -> PunktParameters {
        let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        PunktParameters {
            abbrev_types: set(&["dr", "u.s", "inc", "co"]),
            collocations: [("##number##", "international"), ("b", "smith")]
                .iter()
                .map(|&(a, b)| (a.into(), b.into()))
                .collect(),
            sent_starters: set(&["however"]),
            ortho_context: [
                ("the", ORTHO_BEG_UC | ORTHO_MID_LC),
                ("smith", ORTHO_MID_UC),
                ("bach", ORTHO_MID_UC),
                ("however", ORTHO_BEG_UC | ORTHO_MID_UC),
                ("may", ORTHO_MID_LC | ORTHO_MID_UC),
            ]
            .iter()
            .map(|&(t, f)| (t.to_owned(), f))
            .collect(),
        }
    }

    fn first(s: &str) -> PunktToken {
        let mut t = token(s);
        first_pass_annotation(&params(), &mut t);
        t
    }

    /// punkt.py `_first_pass_annotation`: sentence end characters, ellipses, known abbreviations
    /// (whole, or after the last hyphen), other period-final words.
    #[test]
    fn first_pass_annotation_rules() {
        for s in [".", "?", "!"] {
            assert!(first(s).sentbreak, "{s}");
        }
        let e = first("...");
        assert!(e.ellipsis && !e.sentbreak && !e.abbr);
        for s in ["Dr.", "U.S.", "ex-Dr.", "a-b-co."] {
            let t = first(s);
            assert!(t.abbr && !t.sentbreak, "{s}");
        }
        for s in ["Smith.", "Dr-x.", "12."] {
            let t = first(s);
            assert!(t.sentbreak && !t.abbr, "{s}");
        }
        // `endswith("..")` but not all periods: neither
        let t = first("a..");
        assert!(!t.sentbreak && !t.abbr && !t.ellipsis);
        assert!(!first("?!").sentbreak && !first("Dr").abbr);
    }

    fn second(tok: &str, next: &str) -> PunktToken {
        let p = params();
        let (mut t, mut n) = (token(tok), token(next));
        first_pass_annotation(&p, &mut t);
        first_pass_annotation(&p, &mut n);
        second_pass_annotation(&p, &mut t, &n);
        t
    }

    /// punkt.py `_second_pass_annotation` [4.1.2]: a collocation makes the period an abbreviation.
    #[test]
    fn second_pass_collocation() {
        let t = second("12.", "International");
        assert!(t.abbr && !t.sentbreak);
        let t = second("B.", "Smith.");
        assert!(t.abbr && !t.sentbreak);
    }

    /// [4.2] an abbreviation or ellipsis before a word the orthographic heuristic calls a
    /// sentence starter, or before a capitalized frequent sentence starter, is also a break.
    #[test]
    fn second_pass_abbreviation_reclassified_as_break() {
        assert!(second("Inc.", "The").sentbreak);
        assert!(second("...", "The").sentbreak);
        assert!(second("Inc.", "However").sentbreak);
        assert!(!second("Inc.", "however").sentbreak);
        assert!(!second("Dr.", "Smith").sentbreak);
    }

    /// [4.3] an initial or ordinal before a word that does not start sentences is an
    /// abbreviation; an initial before a capitalized word never seen lower case too.
    #[test]
    fn second_pass_initials_and_ordinals() {
        let t = second("3.", "may");
        assert!(t.abbr && !t.sentbreak);
        let t = second("J.", "Bach");
        assert!(t.abbr && !t.sentbreak);
        assert!(second("J.", "The").sentbreak);
        assert!(second("3.", "Bach").sentbreak);
        assert!(second("3.", "The").sentbreak);
        // an abbreviation that is also an initial skips [4.2]
        let p = PunktParameters { abbrev_types: ["j".to_string()].into(), ..params() };
        let (mut t, n) = (token("J."), token("The"));
        first_pass_annotation(&p, &mut t);
        second_pass_annotation(&p, &mut t, &n);
        assert!(t.abbr && !t.sentbreak);
    }

    /// punkt.py `text_contains_sentbreak`: a break on the last token does not count.
    #[test]
    fn contains_sentbreak_ignores_the_last_token() {
        let p = params();
        assert!(text_contains_sentbreak(&p, &chars("end. The")));
        assert!(!text_contains_sentbreak(&p, &chars("the end.")));
        assert!(!text_contains_sentbreak(&p, &chars("Dr. Smith")));
        assert!(text_contains_sentbreak(&p, &chars("acting!!! I")));
        assert!(!text_contains_sentbreak(&p, &chars("")));
    }
}
