//! Segments → subtitle cues, shared by the SRT and VTT writers.
//!
//! Ports `SubtitlesWriter.iterate_result` of whisperX `whisperx/utils.py` (m-bain/whisperX
//! 2cfd7b7), itself openai/whisper's `iterate_result` with speakers, words without times and
//! space-joined words:
//! - Without `max_line_width` and `max_line_count` both set, each segment is its own cue
//!   ("preserve segments"), its words wrapped at `max_line_width` (1000 when unset).
//! - With both set, words flow across segments: a line breaks when the next word would pass
//!   `max_line_width` characters, a cue breaks after `max_line_count` lines or before a word that
//!   starts more than 3 s after the previous one.
//! - A cue runs from its earliest word start to its latest word end, or over its first word's
//!   segment when none of its words has a time; `[SPEAKER]: ` is prefixed from that segment.
//! - `highlight_words` writes one cue per timed word with that word underlined (`<u>..</u>`),
//!   and fills the gaps between words with the plain cue text.
//! - A transcript without words (not aligned) gives one cue per segment from its text.
//!
//! Word joining: WhisperX's aligned words carry no spaces and are joined with `" "` (with `""`
//! for ja/zh); a word that already starts with whitespace (openai's DTW words, `" word"`) is
//! joined with `""`, as openai does, so both word styles read correctly.
//!
//! One deliberate difference: WhisperX drops a segment whose words list is empty from the
//! subtitles (its text is lost); here such a segment becomes a single untimed-span "word" made of
//! its text and its segment times.

use super::result::{Segment, Transcript};
use super::timestamp::TimestampStyle;
use crate::Result;

/// Default line width when only line breaking at segment boundaries is wanted.
const UNLIMITED_LINE_WIDTH: usize = 1000;
/// A word starting this long after the previous one opens a new cue (when cues may span segments).
const LONG_PAUSE_S: f64 = 3.0;
/// Languages whose words are joined without spaces (whisperX `LANGUAGES_WITHOUT_SPACES`).
const LANGUAGES_WITHOUT_SPACES: [&str; 2] = ["ja", "zh"];

/// How cues are cut, from the CLI's `--max_line_width`, `--max_line_count`, `--highlight_words`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterOptions {
    pub max_line_width: Option<usize>,
    pub max_line_count: Option<usize>,
    pub highlight_words: bool,
}

/// One subtitle cue with its times already formatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    pub start: String,
    pub end: String,
    pub text: String,
}

/// A word as the cue builder sees it (whisperX's `timing` dict).
#[derive(Clone, Debug)]
struct Piece {
    /// The word, stripped and prefixed with `\n` when it opens a new line.
    text: String,
    start: Option<f64>,
    end: Option<f64>,
    /// Joined to the previous word without a separator (the word brought its own whitespace).
    glued: bool,
    /// Index of the segment the word came from.
    segment: usize,
}

/// True when any segment has words (the transcript was aligned or word-timed).
pub fn has_words(t: &Transcript) -> bool {
    t.segments.iter().any(|s| !s.words.is_empty())
}

/// The cues of `t`, times formatted in `style`.
pub fn cues(t: &Transcript, opts: &WriterOptions, style: TimestampStyle) -> Result<Vec<Cue>> {
    if t.segments.is_empty() {
        return Ok(Vec::new());
    }
    if !has_words(t) {
        return t.segments.iter().map(|s| segment_cue(s, style)).collect();
    }
    let join_nothing = LANGUAGES_WITHOUT_SPACES.contains(&t.language.as_str());
    let mut out = Vec::new();
    for group in group_words(t, opts, join_nothing) {
        let first_segment = &t.segments[group[0].segment];
        let word_start = group.iter().filter_map(|p| p.start).reduce(f64::min);
        let word_end = group.iter().filter_map(|p| p.end).reduce(f64::max);
        let (start, end) = match (word_start, word_end) {
            (Some(s), Some(e)) => (s, e),
            _ => (first_segment.start, first_segment.end),
        };
        let start = style.format(start)?;
        let end = style.format(end)?;
        let prefix = first_segment.speaker.as_ref().map(|s| format!("[{s}]: ")).unwrap_or_default();
        let text = join(&group, None);
        let has_timing = group.iter().any(|p| p.start.is_some());
        if opts.highlight_words && has_timing {
            let mut last = start;
            for (i, piece) in group.iter().enumerate() {
                let Some(start_s) = piece.start else { continue };
                let word_start = style.format(start_s)?;
                let word_end = style.format(piece.end.unwrap_or(start_s))?;
                if last != word_start {
                    out.push(Cue { start: last, end: word_start.clone(), text: format!("{prefix}{text}") });
                }
                out.push(Cue {
                    start: word_start,
                    end: word_end.clone(),
                    text: format!("{prefix}{}", join(&group, Some(i))),
                });
                last = word_end;
            }
        } else {
            out.push(Cue { start, end, text: format!("{prefix}{text}") });
        }
    }
    Ok(out)
}

/// A cue for a segment without words: its stripped text, `-->` defused.
fn segment_cue(s: &Segment, style: TimestampStyle) -> Result<Cue> {
    let mut text = s.text.trim().replace("-->", "->");
    if let Some(speaker) = &s.speaker {
        text = format!("[{speaker}]: {text}");
    }
    Ok(Cue { start: style.format(s.start)?, end: style.format(s.end)?, text })
}

/// Join a cue's words, underlining word `highlight` if given.
fn join(group: &[Piece], highlight: Option<usize>) -> String {
    let mut text = String::new();
    for (i, piece) in group.iter().enumerate() {
        if i > 0 && !piece.glued {
            text.push(' ');
        }
        if highlight == Some(i) {
            let body = piece.text.trim_start();
            text.push_str(&piece.text[..piece.text.len() - body.len()]);
            text.push_str("<u>");
            text.push_str(body);
            text.push_str("</u>");
        } else {
            text.push_str(&piece.text);
        }
    }
    text
}

/// whisperX's `iterate_subtitles`: the words of every segment, grouped into cues, with `\n`
/// before each word that starts a new line.
fn group_words(t: &Transcript, opts: &WriterOptions, join_nothing: bool) -> Vec<Vec<Piece>> {
    let max_line_count = opts.max_line_count;
    let preserve_segments = max_line_count.is_none() || opts.max_line_width.is_none();
    let max_line_width = opts.max_line_width.unwrap_or(UNLIMITED_LINE_WIDTH);

    let mut groups = Vec::new();
    let mut line_len = 0usize;
    let mut line_count = 1usize;
    let mut subtitle: Vec<Piece> = Vec::new();
    let mut last = t.segments[0].start;
    for (segment_index, segment) in t.segments.iter().enumerate() {
        for (i, mut piece) in segment_pieces(segment, segment_index, join_nothing).into_iter().enumerate() {
            let long_pause = !preserve_segments && piece.start.is_some_and(|s| s - last > LONG_PAUSE_S);
            let word_len = piece.text.chars().count();
            let has_room = line_len + word_len <= max_line_width;
            let seg_break = i == 0 && !subtitle.is_empty() && preserve_segments;
            if line_len > 0 && has_room && !long_pause && !seg_break {
                // Line continuation.
                line_len += word_len;
            } else {
                // New line.
                piece.text = piece.text.trim().to_string();
                let cue_full = max_line_count.is_some_and(|n| long_pause || line_count >= n);
                if (!subtitle.is_empty() && cue_full) || seg_break {
                    groups.push(std::mem::take(&mut subtitle));
                    line_count = 1;
                } else if line_len > 0 {
                    line_count += 1;
                    piece.text.insert(0, '\n');
                }
                line_len = piece.text.trim().chars().count();
            }
            if let Some(start) = piece.start {
                last = start;
            }
            subtitle.push(piece);
        }
    }
    if !subtitle.is_empty() {
        groups.push(subtitle);
    }
    groups
}

/// The words of one segment as pieces; a segment without words gives one piece of its text.
fn segment_pieces(segment: &Segment, index: usize, join_nothing: bool) -> Vec<Piece> {
    if segment.words.is_empty() {
        return vec![Piece {
            text: segment.text.trim().to_string(),
            start: Some(segment.start),
            end: Some(segment.end),
            glued: join_nothing,
            segment: index,
        }];
    }
    segment
        .words
        .iter()
        .map(|w| Piece {
            text: w.word.clone(),
            start: w.start,
            end: w.end,
            glued: join_nothing || w.word.starts_with(char::is_whitespace),
            segment: index,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Segment, Word};

    fn word(w: &str, start: f64, end: f64) -> Word {
        Word { word: w.into(), start: Some(start), end: Some(end), score: Some(0.9), speaker: None }
    }

    fn transcript(words: &[(&str, f64, f64)]) -> Transcript {
        let words: Vec<Word> = words.iter().map(|&(w, s, e)| word(w, s, e)).collect();
        let text = words.iter().map(|w| w.word.as_str()).collect::<Vec<_>>().join(" ");
        let seg = Segment {
            start: words[0].start.unwrap(),
            end: words.last().unwrap().end.unwrap(),
            text,
            words,
            ..Default::default()
        };
        Transcript { segments: vec![seg], word_segments: vec![], language: "en".into(), ..Default::default() }
    }

    fn texts(t: &Transcript, opts: &WriterOptions) -> Vec<String> {
        cues(t, opts, TimestampStyle::Vtt).unwrap().into_iter().map(|c| c.text).collect()
    }

    #[test]
    fn wraps_at_width_without_counting_the_joining_space() {
        // whisperX counts word lengths only: "aaaa bbbb" is 8 wide for the width check.
        let t = transcript(&[("aaaa", 0.0, 1.0), ("bbbb", 1.0, 2.0), ("cccc", 2.0, 3.0)]);
        let opts = WriterOptions { max_line_width: Some(8), ..Default::default() };
        assert_eq!(texts(&t, &opts), vec!["aaaa bbbb \ncccc"]);
        let opts = WriterOptions { max_line_width: Some(8), max_line_count: Some(1), ..Default::default() };
        assert_eq!(texts(&t, &opts), vec!["aaaa bbbb", "cccc"]);
    }

    #[test]
    fn openai_style_words_keep_their_own_spaces() {
        let t = transcript(&[(" Hello", 0.0, 1.0), (" big", 1.0, 2.0), (" world.", 2.0, 3.0)]);
        assert_eq!(texts(&t, &WriterOptions::default()), vec!["Hello big world."]);
        // "Hello" (stripped, 5) + " big" (4) fits in 9; + " world." (7) does not: a new line,
        // its word stripped and joined with no extra space.
        let opts = WriterOptions { max_line_width: Some(9), ..Default::default() };
        assert_eq!(texts(&t, &opts), vec!["Hello big\nworld."]);
    }

    #[test]
    fn long_pause_opens_a_cue_only_when_cues_span_segments() {
        let t = transcript(&[("one", 0.0, 0.5), ("two", 4.0, 4.5)]);
        assert_eq!(texts(&t, &WriterOptions::default()), vec!["one two"]);
        let opts = WriterOptions { max_line_width: Some(40), max_line_count: Some(2), ..Default::default() };
        assert_eq!(texts(&t, &opts), vec!["one", "two"]);
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let t = transcript(&[("été", 0.0, 1.0), ("où", 1.0, 2.0)]);
        let opts = WriterOptions { max_line_width: Some(5), ..Default::default() };
        assert_eq!(texts(&t, &opts), vec!["été où"]);
    }

    #[test]
    fn highlight_fills_gaps_between_words() {
        let t = transcript(&[("a", 0.0, 1.0), ("b", 2.0, 3.0)]);
        let opts = WriterOptions { highlight_words: true, ..Default::default() };
        let got: Vec<(String, String, String)> =
            cues(&t, &opts, TimestampStyle::Vtt).unwrap().into_iter().map(|c| (c.start, c.end, c.text)).collect();
        let want = [
            ("00:00.000", "00:01.000", "<u>a</u> b"),
            ("00:01.000", "00:02.000", "a b"),
            ("00:02.000", "00:03.000", "a <u>b</u>"),
        ];
        let want: Vec<(String, String, String)> =
            want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
        assert_eq!(got, want);
    }
}
