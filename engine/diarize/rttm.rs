//! RTTM (NIST Rich Transcription Time Marked) speaker turns: the format diarization references and
//! hypotheses are exchanged in (pyannote's `Annotation.write_rttm`, dscore, md-eval). One
//! `SPEAKER` line per turn:
//!
//! ```text
//! SPEAKER <file id> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>
//! ```
//!
//! The writer follows pyannote.core 6.1 `Annotation.write_rttm`: channel 1, onset and duration
//! with three decimals, `<NA>` in the unused fields. The reader takes any whitespace between
//! fields, skips blank lines, `#`/`;;` comments and the other RTTM record types (`SPKR-INFO`,
//! `LEXEME`, ...), accepts a `SPEAKER` line with only the first eight fields, and fails with the
//! line number on a `SPEAKER` line it cannot read.

use std::fmt::Write as _;
use std::path::Path;

/// One speaker turn, in seconds: the diarization's own turn type.
pub use super::assign::SpeakerTurn as Turn;

/// A `SPEAKER` line as read: its file id and channel are kept so that a multi-file RTTM can be
/// split (`by_file`).
#[derive(Debug, Clone, PartialEq)]
pub struct RttmTurn {
    pub file_id: String,
    pub channel: String,
    pub turn: Turn,
}

/// What went wrong on which line (1-based) of an RTTM text.
#[derive(Debug, Clone, PartialEq)]
pub struct RttmError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for RttmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RTTM line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RttmError {}

/// The fields of a `SPEAKER` line that carry data; the last two (`<NA> <NA>`) may be missing.
const MIN_SPEAKER_FIELDS: usize = 8;

/// Parses every `SPEAKER` line of an RTTM text, in file order.
pub fn parse(text: &str) -> Result<Vec<RttmTurn>, RttmError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(";;") {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[0] != "SPEAKER" {
            continue;
        }
        let err = |message: String| RttmError { line: line_no, message };
        if fields.len() < MIN_SPEAKER_FIELDS {
            return Err(err(format!(
                "a SPEAKER line needs at least {MIN_SPEAKER_FIELDS} fields (type, file, channel, onset, \
                 duration, <NA>, <NA>, speaker), found {}: {line:?}",
                fields.len()
            )));
        }
        let number = |name: &str, s: &str| -> Result<f64, RttmError> {
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(err(format!("{name} {s:?} is not a finite number: {line:?}"))),
            }
        };
        let onset = number("onset", fields[3])?;
        let duration = number("duration", fields[4])?;
        if duration < 0.0 {
            return Err(err(format!("duration {duration} is negative: {line:?}")));
        }
        out.push(RttmTurn {
            file_id: fields[1].to_string(),
            channel: fields[2].to_string(),
            turn: Turn { start: onset, end: onset + duration, speaker: fields[7].to_string() },
        });
    }
    Ok(out)
}

/// The turns of each file id, in order of first appearance.
pub fn by_file(turns: Vec<RttmTurn>) -> Vec<(String, Vec<Turn>)> {
    let mut files: Vec<(String, Vec<Turn>)> = Vec::new();
    for t in turns {
        match files.iter_mut().find(|(id, _)| *id == t.file_id) {
            Some((_, v)) => v.push(t.turn),
            None => files.push((t.file_id, vec![t.turn])),
        }
    }
    files
}

/// Reads an RTTM file and returns all its turns, whatever their file id (the common case: one
/// file per RTTM). Errors name the path and the line.
pub fn read(path: &Path) -> anyhow::Result<Vec<Turn>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let turns = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(turns.into_iter().map(|t| t.turn).collect())
}

/// A file id RTTM can hold: fields are whitespace-separated, so whitespace becomes `_`.
fn field(s: &str) -> String {
    let f: String = s.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
    if f.is_empty() {
        "<NA>".to_string()
    } else {
        f
    }
}

/// Formats turns as RTTM `SPEAKER` lines, in the order given (pyannote.core's `write_rttm`).
pub fn format(file_id: &str, turns: &[Turn]) -> String {
    let file_id = field(file_id);
    let mut out = String::new();
    for t in turns {
        let _ = writeln!(
            out,
            "SPEAKER {file_id} 1 {:.3} {:.3} <NA> <NA> {} <NA> <NA>",
            t.start,
            t.end - t.start,
            field(&t.speaker)
        );
    }
    out
}

/// Writes `format(file_id, turns)` to `path`.
pub fn write(path: &Path, file_id: &str, turns: &[Turn]) -> std::io::Result<()> {
    std::fs::write(path, format(file_id, turns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pyannote_lines() {
        let text = "SPEAKER sample 1 6.690 0.430 <NA> <NA> speaker90 <NA> <NA>\n\
                    SPEAKER sample 1 7.550 0.800 <NA> <NA> speaker91 <NA> <NA>\n";
        let turns = parse(text).unwrap();
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0].file_id, "sample");
        assert_eq!(turns[0].channel, "1");
        assert_eq!(turns[0].turn, Turn::new(6.69, 6.69 + 0.43, "speaker90"));
        assert_eq!(turns[1].turn.speaker, "speaker91");
    }

    #[test]
    fn tolerates_tabs_comments_other_types_and_short_lines() {
        let text = "\u{feff}# comment\n;; another\n\n\
                    SPKR-INFO f 1 <NA> <NA> <NA> unknown A <NA> <NA>\n\
                    SPEAKER\tf\t1\t0.5\t1.25\t<NA>\t<NA>\tA\r\n\
                    SPEAKER   f  1  2  0  <NA> <NA> B <NA> <NA> 0.9\n";
        let turns = parse(text).unwrap();
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0].turn, Turn::new(0.5, 1.75, "A"));
        assert_eq!(turns[1].turn, Turn::new(2.0, 2.0, "B"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("SPEAKER f 1 0 1 <NA> <NA> A\nSPEAKER f 1 x 1 <NA> <NA> A\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("RTTM line 2: onset \"x\""), "{e}");
        let e = parse("\nSPEAKER f 1 0 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("at least 8 fields"), "{e}");
        let e = parse("SPEAKER f 1 0 -1 <NA> <NA> A").unwrap_err();
        assert!(e.message.contains("negative"), "{e}");
        let e = parse("SPEAKER f 1 0 nan <NA> <NA> A").unwrap_err();
        assert!(e.message.contains("duration"), "{e}");
    }

    #[test]
    fn writes_like_pyannote_and_reads_back() {
        let turns = vec![Turn::new(0.5, 2.25, "SPEAKER_00"), Turn::new(1.0, 3.5004, "SPEAKER 01")];
        let text = format("my file", &turns);
        assert_eq!(
            text,
            "SPEAKER my_file 1 0.500 1.750 <NA> <NA> SPEAKER_00 <NA> <NA>\n\
             SPEAKER my_file 1 1.000 2.500 <NA> <NA> SPEAKER_01 <NA> <NA>\n"
        );
        let back = parse(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].file_id, "my_file");
        assert!((back[1].turn.end - 3.5).abs() < 1e-12);
    }

    #[test]
    fn splits_by_file() {
        let text = "SPEAKER a 1 0 1 <NA> <NA> X\nSPEAKER b 1 0 1 <NA> <NA> Y\nSPEAKER a 1 2 1 <NA> <NA> Z\n";
        let files = by_file(parse(text).unwrap());
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].0, "a");
        assert_eq!(files[0].1.len(), 2);
        assert_eq!(files[1].1[0].speaker, "Y");
    }
}
