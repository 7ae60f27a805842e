//! Speakers on the transcript. [`assign_word_speakers`] is WhisperX 3.8's
//! (`whisperx/diarize.py` `assign_word_speakers` and its `IntervalTree`): each segment, and each
//! word with a start, takes the speaker whose turns overlap it longest; with `fill_nearest`,
//! one that overlaps no turn takes the speaker of the turn whose middle is nearest its own.
//! [`split_at_speaker_changes`] is Scribe's addition: a segment whose words change speaker
//! becomes one segment per run of words, so no segment (and no subtitle) holds two speakers.

use crate::output::result::{CharAlignment, Segment, Word};

/// A speaker turn of the diarization: `speaker` speaks from `start` to `end` seconds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpeakerTurn {
    pub start: f64,
    pub end: f64,
    pub speaker: String,
}

impl SpeakerTurn {
    pub fn new(start: f64, end: f64, speaker: impl Into<String>) -> Self {
        SpeakerTurn { start, end, speaker: speaker.into() }
    }
}

/// WhisperX's `IntervalTree`: turns sorted by start (a stable sort, so equal starts keep their
/// order).
struct Turns<'a> {
    sorted: Vec<&'a SpeakerTurn>,
}

impl<'a> Turns<'a> {
    fn new(turns: &'a [SpeakerTurn]) -> Self {
        let mut sorted: Vec<&SpeakerTurn> = turns.iter().collect();
        sorted.sort_by(|a, b| a.start.total_cmp(&b.start));
        Turns { sorted }
    }

    /// `IntervalTree.query` summed per speaker as `assign_word_speakers` does, then its
    /// `max(items, key=duration)`: the speaker with the longest total intersection, the first
    /// one met (in start order) on a tie. Only intersections longer than 0 count.
    fn dominant(&self, start: f64, end: f64) -> Option<&'a str> {
        let mut totals: Vec<(&str, f64)> = Vec::new();
        // `searchsorted(starts, end, "left")`: candidates start strictly before `end`.
        for t in self.sorted.iter().take_while(|t| t.start < end) {
            if t.end > start {
                let intersection = t.end.min(end) - t.start.max(start);
                if intersection > 0.0 {
                    match totals.iter_mut().find(|(s, _)| *s == t.speaker) {
                        Some((_, total)) => *total += intersection,
                        None => totals.push((&t.speaker, intersection)),
                    }
                }
            }
        }
        let mut best: Option<(&str, f64)> = None;
        for (speaker, total) in totals {
            if best.is_none_or(|(_, b)| total > b) {
                best = Some((speaker, total));
            }
        }
        best.map(|(s, _)| s)
    }

    /// `IntervalTree.find_nearest`: the speaker of the turn whose middle is nearest `time`
    /// (`np.argmin`: the first on a tie).
    fn nearest(&self, time: f64) -> Option<&'a str> {
        let mut best: Option<(&str, f64)> = None;
        for t in &self.sorted {
            let distance = ((t.start + t.end) / 2.0 - time).abs();
            if best.is_none_or(|(_, b)| distance < b) {
                best = Some((&t.speaker, distance));
            }
        }
        best.map(|(s, _)| s)
    }

    fn speaker_of(&self, start: f64, end: f64, fill_nearest: bool) -> Option<&'a str> {
        self.dominant(start, end).or_else(|| if fill_nearest { self.nearest((start + end) / 2.0) } else { None })
    }
}

/// WhisperX's `assign_word_speakers(diarize_df, result, fill_nearest)`: sets `speaker` on each
/// segment and each word that has a start (a word without an end counts from its start to its
/// start). Nothing changes without turns; a segment or word no turn overlaps keeps what it had
/// unless `fill_nearest`.
pub fn assign_word_speakers(turns: &[SpeakerTurn], segments: &mut [Segment], fill_nearest: bool) {
    if turns.is_empty() {
        return;
    }
    let turns = Turns::new(turns);
    for segment in segments.iter_mut() {
        if let Some(s) = turns.speaker_of(segment.start, segment.end, fill_nearest) {
            segment.speaker = Some(s.to_string());
        }
        for word in &mut segment.words {
            let Some(start) = word.start else { continue };
            let end = word.end.unwrap_or(start);
            if let Some(s) = turns.speaker_of(start, end, fill_nearest) {
                word.speaker = Some(s.to_string());
            }
        }
    }
}

/// Languages written without spaces between words (WhisperX's `LANGUAGES_WITHOUT_SPACES`):
/// their words are joined without one when a segment is split.
pub const LANGUAGES_WITHOUT_SPACES: [&str; 5] = ["ja", "zh", "th", "lo", "my"];

/// Splits every segment whose words carry more than one speaker into one segment per run of
/// consecutive words of one speaker (words without a speaker stay with the run before them, or
/// the first run). Each piece spans its timed words (the first piece starts where the segment
/// starts, the last ends where it ends), takes its run's speaker and its words' text, and keeps
/// the characters (`chars`) whose time falls in it; the segment's decoding diagnostics are
/// copied to every piece, its tokens (which belong to the whole) to none.
pub fn split_at_speaker_changes(segments: Vec<Segment>, language: &str) -> Vec<Segment> {
    let separator = if LANGUAGES_WITHOUT_SPACES.contains(&language) { "" } else { " " };
    let mut out = Vec::with_capacity(segments.len());
    for segment in segments {
        let runs = speaker_runs(&segment.words);
        if runs.len() < 2 {
            out.push(segment);
            continue;
        }
        let pieces = runs.len();
        for (i, (range, speaker)) in runs.into_iter().enumerate() {
            let words: Vec<Word> = segment.words[range].to_vec();
            let first_start = words.iter().find_map(|w| w.start);
            let last_end = words.iter().rev().find_map(|w| w.end.or(w.start));
            let start = if i == 0 { segment.start } else { first_start.unwrap_or(segment.start) };
            let end = if i + 1 == pieces { segment.end } else { last_end.unwrap_or(segment.end) };
            let text =
                format!("{}{}", separator, words.iter().map(|w| w.word.trim()).collect::<Vec<_>>().join(separator));
            let chars = segment.chars.as_ref().map(|chars| chars_within(chars, start, end, i == 0, i + 1 == pieces));
            out.push(Segment {
                start,
                end,
                text,
                words,
                speaker: Some(speaker),
                tokens: Vec::new(),
                chars,
                ..segment.clone()
            });
        }
    }
    out
}

/// Runs of one speaker: (word range, speaker). Words without a speaker join the current run.
fn speaker_runs(words: &[Word]) -> Vec<(std::ops::Range<usize>, String)> {
    let mut runs: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let current = runs.last().map(|(_, s)| s);
        match &w.speaker {
            Some(s) if current != Some(s) => {
                // A new speaker: the first run also takes the speakerless words before it.
                let from = if runs.is_empty() { 0 } else { i };
                runs.push((from..i + 1, s.clone()));
            }
            _ => {
                if let Some((range, _)) = runs.last_mut() {
                    range.end = i + 1;
                }
            }
        }
    }
    runs
}

/// The characters of a piece `[start, end]`: timed ones by their start (the first piece also
/// takes those before it, the last those after), untimed ones with the character before them.
fn chars_within(chars: &[CharAlignment], start: f64, end: f64, first: bool, last: bool) -> Vec<CharAlignment> {
    let mut out = Vec::new();
    let mut inside = first;
    for c in chars {
        if let Some(t) = c.start {
            inside = (first || t >= start) && (last || t < end);
        }
        if inside {
            out.push(c.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(start: f64, end: f64, speaker: &str) -> SpeakerTurn {
        SpeakerTurn { start, end, speaker: speaker.into() }
    }

    fn word(w: &str, start: Option<f64>, end: Option<f64>) -> Word {
        Word { word: w.into(), start, end, ..Default::default() }
    }

    #[test]
    fn the_longest_total_overlap_wins_summed_per_speaker() {
        // A: 0.3 + 0.3 = 0.6 over two turns beats B's single 0.5.
        let t = [turn(0.0, 0.3, "A"), turn(0.3, 0.8, "B"), turn(0.8, 1.1, "A")];
        assert_eq!(Turns::new(&t).dominant(0.0, 1.1), Some("A"));
    }

    #[test]
    fn on_a_tie_the_speaker_met_first_in_start_order_wins() {
        // WX: dict insertion order + max(): the first maximal item.
        let t = [turn(0.5, 1.0, "B"), turn(0.0, 0.5, "A")];
        assert_eq!(Turns::new(&t).dominant(0.0, 1.0), Some("A"));
    }

    #[test]
    fn touching_or_zero_length_overlaps_do_not_count() {
        let t = [turn(0.0, 1.0, "A")];
        let turns = Turns::new(&t);
        assert_eq!(turns.dominant(1.0, 2.0), None);
        assert_eq!(turns.dominant(0.5, 0.5), None, "a zero-length word overlaps nothing");
    }

    #[test]
    fn fill_nearest_takes_the_turn_with_the_nearest_middle() {
        let t = [turn(0.0, 1.0, "A"), turn(5.0, 9.0, "B")];
        let turns = Turns::new(&t);
        assert_eq!(turns.speaker_of(3.0, 3.5, false), None);
        // middles 0.5 and 7.0: 3.25 is nearer 0.5.
        assert_eq!(turns.speaker_of(3.0, 3.5, true), Some("A"));
        assert_eq!(turns.speaker_of(4.0, 4.5, true), Some("B"));
    }

    #[test]
    fn words_without_a_start_get_no_speaker_and_a_missing_end_is_the_start() {
        let t = [turn(0.0, 2.0, "A")];
        let mut segs = vec![Segment {
            start: 0.0,
            end: 2.0,
            words: vec![word("12", None, None), word("x", Some(1.0), None)],
            ..Default::default()
        }];
        assign_word_speakers(&t, &mut segs, true);
        assert_eq!(segs[0].words[0].speaker, None);
        // start 1.0, end = start: zero length, no overlap; fill_nearest gives A.
        assert_eq!(segs[0].words[1].speaker.as_deref(), Some("A"));
        assert_eq!(segs[0].speaker.as_deref(), Some("A"));
    }

    #[test]
    fn no_turns_changes_nothing() {
        let mut segs = vec![Segment { start: 0.0, end: 1.0, speaker: Some("X".into()), ..Default::default() }];
        assign_word_speakers(&[], &mut segs, true);
        assert_eq!(segs[0].speaker.as_deref(), Some("X"));
    }

    fn spoken(w: &str, start: f64, end: f64, speaker: Option<&str>) -> Word {
        Word {
            word: w.into(),
            start: Some(start),
            end: Some(end),
            speaker: speaker.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn a_segment_whose_words_change_speaker_is_split_at_each_change() {
        let seg = Segment {
            start: 0.0,
            end: 4.0,
            text: " Hello there. Hi!".into(),
            words: vec![
                spoken("Hello", 0.1, 0.5, Some("A")),
                Word { word: "there.".into(), ..Default::default() },
                spoken("Hi!", 2.0, 2.4, Some("B")),
            ],
            speaker: Some("A".into()),
            avg_logprob: Some(-0.2),
            tokens: vec![1, 2, 3],
            ..Default::default()
        };
        let out = split_at_speaker_changes(vec![seg], "en");
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].start, out[0].end, out[0].text.as_str()), (0.0, 0.5, " Hello there."));
        assert_eq!(out[0].speaker.as_deref(), Some("A"));
        assert_eq!(out[0].words.len(), 2, "an untimed word stays with the run before it");
        assert_eq!((out[1].start, out[1].end, out[1].text.as_str()), (2.0, 4.0, " Hi!"));
        assert_eq!(out[1].speaker.as_deref(), Some("B"));
        assert_eq!(out[1].avg_logprob, Some(-0.2));
        assert!(out[1].tokens.is_empty());
    }

    #[test]
    fn one_speaker_or_no_speakers_leaves_the_segment_as_it_was() {
        let seg = Segment {
            start: 0.0,
            end: 1.0,
            text: " a b".into(),
            words: vec![spoken("a", 0.0, 0.4, Some("A")), spoken("b", 0.5, 0.9, None)],
            tokens: vec![7],
            ..Default::default()
        };
        assert_eq!(split_at_speaker_changes(vec![seg.clone()], "en"), vec![seg]);
    }

    #[test]
    fn languages_without_spaces_join_words_without_them() {
        let seg = Segment {
            start: 0.0,
            end: 1.0,
            text: "你好世界".into(),
            words: vec![
                spoken("你", 0.0, 0.2, Some("A")),
                spoken("好", 0.2, 0.4, Some("A")),
                spoken("世", 0.5, 0.7, Some("B")),
                spoken("界", 0.7, 0.9, Some("B")),
            ],
            ..Default::default()
        };
        let out = split_at_speaker_changes(vec![seg], "zh");
        assert_eq!(out.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), vec!["你好", "世界"]);
    }

    #[test]
    fn characters_follow_their_piece() {
        let c = |ch: &str, t: Option<f64>| CharAlignment {
            char: ch.into(),
            start: t,
            end: t.map(|t| t + 0.1),
            score: None,
        };
        let seg = Segment {
            start: 0.0,
            end: 2.0,
            text: " a b".into(),
            words: vec![spoken("a", 0.0, 0.4, Some("A")), spoken("b", 1.0, 1.4, Some("B"))],
            chars: Some(vec![c(" ", None), c("a", Some(0.0)), c(" ", None), c("b", Some(1.0))]),
            ..Default::default()
        };
        let out = split_at_speaker_changes(vec![seg], "en");
        let chars = |s: &Segment| s.chars.as_ref().unwrap().iter().map(|c| c.char.clone()).collect::<String>();
        assert_eq!(chars(&out[0]), " a ");
        assert_eq!(chars(&out[1]), "b");
    }
}
