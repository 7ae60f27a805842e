//! Orthographic context: the flags of ortho_context.tab and `_ortho_heuristic`
//! (nltk/tokenize/punkt.py, Kiss & Strunk 2006 section 4.1.1). BEG = sentence-initial, MID =
//! sentence-internal, UNK = unknown position; UC / LC = first letter upper / lower case.

use super::params::PunktParameters;
use super::tokens::PunktToken;

pub const ORTHO_BEG_UC: i64 = 1 << 1;
pub const ORTHO_MID_UC: i64 = 1 << 2;
pub const ORTHO_UNK_UC: i64 = 1 << 3;
pub const ORTHO_BEG_LC: i64 = 1 << 4;
pub const ORTHO_MID_LC: i64 = 1 << 5;
pub const ORTHO_UNK_LC: i64 = 1 << 6;
/// Seen with an upper case first letter anywhere.
pub const ORTHO_UC: i64 = ORTHO_BEG_UC + ORTHO_MID_UC + ORTHO_UNK_UC;
/// Seen with a lower case first letter anywhere.
pub const ORTHO_LC: i64 = ORTHO_BEG_LC + ORTHO_MID_LC + ORTHO_UNK_LC;

/// `PunktSentenceTokenizer.PUNCTUATION`: tokens that never start a sentence.
pub const PUNCTUATION: [char; 6] = [';', ':', ',', '.', '!', '?'];

/// What `_ortho_heuristic` returns: `True`, `False` or `"unknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SentStarter {
    Yes,
    No,
    Unknown,
}

/// `_ortho_heuristic`: does the token start a sentence, judging by the cases its type was seen in?
pub(super) fn ortho_heuristic(params: &PunktParameters, tok: &PunktToken) -> SentStarter {
    if matches!(tok.tok[..], [c] if PUNCTUATION.contains(&c)) {
        return SentStarter::No;
    }
    let context = params.ortho_context(tok.type_no_sentperiod());
    // capitalized, seen lower case, never capitalized mid-sentence: a sentence starter
    if tok.first_upper() && context & ORTHO_LC != 0 && context & ORTHO_MID_UC == 0 {
        return SentStarter::Yes;
    }
    // lower case, and seen capitalized or never seen lower case at a sentence start: not one
    if tok.first_lower() && (context & ORTHO_UC != 0 || context & ORTHO_BEG_LC == 0) {
        return SentStarter::No;
    }
    SentStarter::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> PunktToken {
        PunktToken::new(&s.chars().collect::<Vec<_>>())
    }

    fn params(ortho: &[(&str, i64)]) -> PunktParameters {
        PunktParameters { ortho_context: ortho.iter().map(|&(t, f)| (t.to_owned(), f)).collect(), ..Default::default() }
    }

    /// The flag values of punkt.py `_ORTHO_*`.
    #[test]
    fn ortho_flags() {
        assert_eq!((ORTHO_UC, ORTHO_LC), (14, 112));
    }

    /// punkt.py `_ortho_heuristic`, each branch.
    #[test]
    fn ortho_heuristic_branches() {
        let p = params(&[
            ("the", ORTHO_BEG_UC | ORTHO_MID_LC),
            ("smith", ORTHO_MID_UC | ORTHO_BEG_UC),
            ("ebay", ORTHO_BEG_LC),
            ("cheap", ORTHO_MID_LC),
        ]);
        for punct in [",", ";", ":", ".", "!", "?"] {
            assert_eq!(ortho_heuristic(&p, &token(punct)), SentStarter::No, "{punct}");
        }
        assert_eq!(ortho_heuristic(&p, &token("The")), SentStarter::Yes);
        assert_eq!(ortho_heuristic(&p, &token("Smith")), SentStarter::Unknown);
        assert_eq!(ortho_heuristic(&p, &token("the")), SentStarter::No);
        assert_eq!(ortho_heuristic(&p, &token("unseen")), SentStarter::No);
        assert_eq!(ortho_heuristic(&p, &token("ebay")), SentStarter::Unknown);
        assert_eq!(ortho_heuristic(&p, &token("Unseen")), SentStarter::Unknown);
        assert_eq!(ortho_heuristic(&p, &token("(")), SentStarter::Unknown);
        assert_eq!(ortho_heuristic(&p, &token("?!")), SentStarter::Unknown);
        // the type looked up drops a sentence-break period: "Cheap." marked as a break is "cheap"
        let mut cheap = token("Cheap.");
        assert_eq!(ortho_heuristic(&p, &cheap), SentStarter::Unknown);
        cheap.sentbreak = true;
        assert_eq!(ortho_heuristic(&p, &cheap), SentStarter::Yes);
    }
}
