//! `PunktParameters` and the punkt_tab files they are read from (nltk/tokenize/punkt.py
//! `load_punkt_params`, decoders in nltk/tabdata.py `PunktDecoder`).
//!
//! Each file is UTF-8 text read line by line as Python's text mode does it (`\r\n` and `\r` end a
//! line like `\n`), one trailing newline removed per line (`rm_nl`). Lines are kept as they are:
//! no trimming, and an empty line is an empty entry (Russian's abbrev_types.txt has one, which
//! NLTK matches against the empty text after a final `-`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};

/// One abbreviation type per line, lowercase, without its final period.
pub const ABBREV_TYPES_FILE: &str = "abbrev_types.txt";
/// `first<TAB>second`: word pairs whose period is not a sentence break.
pub const COLLOCATIONS_FILE: &str = "collocations.tab";
/// One frequent sentence starter type per line.
pub const SENT_STARTERS_FILE: &str = "sent_starters.txt";
/// `type<TAB>flags`: the orthographic contexts a type was seen in (see [`super::ortho`]).
pub const ORTHO_CONTEXT_FILE: &str = "ortho_context.tab";

/// The four tables of one language's model (`PunktParameters`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PunktParameters {
    /// `abbrev_types`: known abbreviations, lowercase, without the final period.
    pub abbrev_types: HashSet<String>,
    /// `collocations`: (type before the period, type after) pairs.
    pub collocations: HashSet<(String, String)>,
    /// `sent_starters`: types that often begin a sentence.
    pub sent_starters: HashSet<String>,
    /// `ortho_context`: orthographic context flags per type (a `defaultdict(int)`: absent is 0).
    pub ortho_context: HashMap<String, i64>,
}

impl PunktParameters {
    /// Reads the four files of a punkt_tab language directory (`load_punkt_params`); an error
    /// names the file and, for malformed content, the line.
    pub fn load(dir: &Path) -> Result<Self> {
        let abbrev_types = read_lines(&dir.join(ABBREV_TYPES_FILE))?.into_iter().collect();
        let sent_starters = read_lines(&dir.join(SENT_STARTERS_FILE))?.into_iter().collect();
        let path = dir.join(COLLOCATIONS_FILE);
        let mut collocations = HashSet::new();
        for (i, line) in read_lines(&path)?.into_iter().enumerate() {
            let (first, second) = split_pair(&line).ok_or_else(|| {
                Error::format(&path, format!("line {}: expected `first<TAB>second`, got {line:?}", i + 1))
            })?;
            collocations.insert((first.to_owned(), second.to_owned()));
        }
        let path = dir.join(ORTHO_CONTEXT_FILE);
        let mut ortho_context = HashMap::new();
        for (i, line) in read_lines(&path)?.into_iter().enumerate() {
            let bad = |what: &str| Error::format(&path, format!("line {}: {what}, got {line:?}", i + 1));
            let (typ, flags) = split_pair(&line).ok_or_else(|| bad("expected `type<TAB>flags`"))?;
            let flags = parse_py_int(flags).ok_or_else(|| bad("flags are not an integer"))?;
            // a dict built from the lines: a repeated type keeps its last value
            ortho_context.insert(typ.to_owned(), flags);
        }
        Ok(Self { abbrev_types, collocations, sent_starters, ortho_context })
    }

    /// `ortho_context[typ]` of the `defaultdict(int)`.
    pub(super) fn ortho_context(&self, typ: &str) -> i64 {
        self.ortho_context.get(typ).copied().unwrap_or(0)
    }
}

/// `TabDecoder.txt2list`: the file's lines in text mode, each without its final newline.
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| Error::format(path, format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to())))?;
    Ok(text_mode_lines(&text))
}

/// Python's universal newlines: `\r\n`, `\r` and `\n` each end a line; an empty file has no
/// lines and a final newline does not start one.
fn text_mode_lines(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// `tuple(line.split("\t"))` when it has exactly two fields (`tab2tups`, unpacked in pairs).
fn split_pair(line: &str) -> Option<(&str, &str)> {
    let (first, second) = line.split_once('\t')?;
    (!second.contains('\t')).then_some((first, second))
}

/// Python's `int(text)` for ASCII digits: surrounding whitespace, an optional sign, and `_`
/// between digits. (Python also takes other scripts' decimal digits; those are refused here.)
fn parse_py_int(text: &str) -> Option<i64> {
    let text = text.trim_matches(super::chars::is_py_space);
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let mut value: i64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = i64::from(c.to_digit(10)?);
        value = value.checked_mul(10)?.checked_add(if negative { -d } else { d })?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: [(&str, &[u8]); 4]) {
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
    }

    /// nltk/tabdata.py `txt2set` / `tab2tups` / `PunktDecoder.tab2intdict`, through
    /// punkt.py `load_punkt_params`: entries kept verbatim (spaces, empty lines), CRLF and CR
    /// read as newlines, the last value of a repeated ortho type wins.
    #[test]
    fn load_punkt_params_reads_the_four_tables() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            [
                (ABBREV_TYPES_FILE, b"dr\r\nu.s\n. . \n\nmr"),
                (COLLOCATIONS_FILE, b"##number##\tinternational\rb\tsmith\n"),
                (SENT_STARTERS_FILE, b""),
                (ORTHO_CONTEXT_FILE, "the\t110\nd\u{e9}j\u{e0}\t 4 \nthe\t+1_2\nneg\t-3".as_bytes()),
            ],
        );
        let p = PunktParameters::load(dir.path()).unwrap();
        let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        assert_eq!(p.abbrev_types, set(&["dr", "u.s", ". . ", "", "mr"]));
        assert!(p.collocations.contains(&("##number##".into(), "international".into())));
        assert!(p.collocations.contains(&("b".into(), "smith".into())));
        assert!(p.sent_starters.is_empty());
        assert_eq!(p.ortho_context("the"), 12);
        assert_eq!(p.ortho_context("déjà"), 4);
        assert_eq!(p.ortho_context("neg"), -3);
        assert_eq!(p.ortho_context("unseen"), 0);
    }

    /// `load_punkt_params` fails on a missing file or a line `tab2intdict` cannot unpack or
    /// convert; the error names the file (and line).
    #[test]
    fn malformed_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ok: [(&str, &[u8]); 4] = [
            (ABBREV_TYPES_FILE, b"dr"),
            (COLLOCATIONS_FILE, b"a\tb"),
            (SENT_STARTERS_FILE, b"the"),
            (ORTHO_CONTEXT_FILE, b"the\t2"),
        ];
        write(dir.path(), ok);
        assert!(PunktParameters::load(dir.path()).is_ok());

        let cases: [(&str, &[u8], &str); 7] = [
            (ORTHO_CONTEXT_FILE, b"the\t2\nbroken", "line 2"),
            (ORTHO_CONTEXT_FILE, b"the\tmany", "line 1"),
            (ORTHO_CONTEXT_FILE, b"the\t1\t2", "line 1"),
            (ORTHO_CONTEXT_FILE, b"the\t99999999999999999999", "line 1"),
            (ORTHO_CONTEXT_FILE, b"the\t2\n\n", "line 2"),
            (COLLOCATIONS_FILE, b"a\tb\nc", "line 2"),
            (ABBREV_TYPES_FILE, b"dr\n\xff", "not UTF-8"),
        ];
        for (name, content, what) in cases {
            write(dir.path(), ok);
            std::fs::write(dir.path().join(name), content).unwrap();
            let err = PunktParameters::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(what), "{name}: {err}");
        }

        write(dir.path(), ok);
        std::fs::remove_file(dir.path().join(SENT_STARTERS_FILE)).unwrap();
        let err = PunktParameters::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(SENT_STARTERS_FILE), "{err}");
    }

    /// Python's `int()` as `tab2intdict` applies it.
    #[test]
    fn py_int() {
        assert_eq!(parse_py_int(" 126\n"), Some(126));
        assert_eq!(parse_py_int("-0"), Some(0));
        assert_eq!(parse_py_int("1_000"), Some(1000));
        for bad in ["", "-", "1__0", "_1", "1_", "1.0", "0x10", "١٢"] {
            assert_eq!(parse_py_int(bad), None, "{bad:?}");
        }
        assert_eq!(parse_py_int("-9223372036854775808"), Some(i64::MIN));
    }

    /// Text mode: an empty file has no line, a final newline adds none, a blank line is one.
    #[test]
    fn text_mode_line_splitting() {
        assert!(text_mode_lines("").is_empty());
        assert_eq!(text_mode_lines("a\n"), ["a"]);
        assert_eq!(text_mode_lines("a\r\n\rb"), ["a", "", "b"]);
        assert_eq!(text_mode_lines("\n"), [""]);
    }
}
