//! openai/whisper transcribe.py `hallucination_silence_threshold` (release 20250625): with word
//! timestamps, segments whose words look anomalous (very short, very long or improbable) and that
//! sit between long silences are treated as hallucinations; the silence before them is skipped
//! and the window is decoded again from there.
//!
//! Pinned source: <https://github.com/openai/whisper/blob/v20250625/whisper/transcribe.py>
//! (`word_anomaly_score` lines 316-326, `is_segment_anomaly` lines 328-334, `next_words_segment`
//! lines 336-337, the per-window rules lines 418-472). Everything here is host-side over the
//! window's segments after `add_word_timestamps`; [`super::transcribe`] applies the decision.

use crate::output::{Segment, Word};

use super::timing::{last_word_end, FRAMES_PER_SECOND};

/// transcribe.py line 179 `punctuation`: the default prepend then append punctuations. Python's
/// `in` on a string is a substring test, so a word counts as punctuation when it occurs in it.
pub const PUNCTUATION: &str = "\"'“¿([{-\"'.。,，!！?？:：”)]}、";
/// A word less probable than this is anomalous (`probability < 0.15`).
pub const ANOMALY_PROBABILITY: f64 = 0.15;
/// Words shorter than this (seconds) score `(0.133 - duration) * 15`.
pub const ANOMALY_SHORT_DURATION: f64 = 0.133;
/// Score per second below [`ANOMALY_SHORT_DURATION`].
pub const ANOMALY_SHORT_WEIGHT: f64 = 15.0;
/// Words longer than this (seconds) score `duration - 2.0`.
pub const ANOMALY_LONG_DURATION: f64 = 2.0;
/// `is_segment_anomaly` scores the first 8 non-punctuation words.
pub const ANOMALY_WORDS: usize = 8;
/// A segment scoring at least this is anomalous (`score >= 3`).
pub const ANOMALY_SEGMENT_SCORE: f64 = 3.0;
/// ... as is one whose score nearly equals its word count (`score + 0.01 >= len(words)`).
pub const ANOMALY_SCORE_MARGIN: f64 = 0.01;
/// A segment this close (seconds) to the window's start or end counts as bordered by silence.
pub const WINDOW_EDGE: f64 = 2.0;
/// After a hallucination, seek at least this far (seconds) past the window start.
pub const MIN_SEEK_ADVANCE: f64 = 1.0;

/// transcribe.py `word_anomaly_score`: 1 for an improbable word, plus penalties for a duration
/// under 0.133 s or over 2 s. A word without a probability counts as probability 0
/// (`word.get("probability", 0.0)`); one without times as duration 0.
pub fn word_anomaly_score(word: &Word) -> f64 {
    let probability = word.score.unwrap_or(0.0);
    let duration = match (word.start, word.end) {
        (Some(start), Some(end)) => end - start,
        _ => 0.0,
    };
    let mut score = 0.0;
    if probability < ANOMALY_PROBABILITY {
        score += 1.0;
    }
    if duration < ANOMALY_SHORT_DURATION {
        score += (ANOMALY_SHORT_DURATION - duration) * ANOMALY_SHORT_WEIGHT;
    }
    if duration > ANOMALY_LONG_DURATION {
        score += duration - ANOMALY_LONG_DURATION;
    }
    score
}

/// transcribe.py `is_segment_anomaly`: the summed score of the first 8 non-punctuation words is
/// at least 3, or within 0.01 of their count. None or a segment without words is not anomalous.
pub fn is_segment_anomaly(segment: Option<&Segment>) -> bool {
    let Some(segment) = segment.filter(|s| !s.words.is_empty()) else { return false };
    let words: Vec<&Word> =
        segment.words.iter().filter(|w| !PUNCTUATION.contains(w.word.as_str())).take(ANOMALY_WORDS).collect();
    let score: f64 = words.iter().map(|w| word_anomaly_score(w)).sum();
    score >= ANOMALY_SEGMENT_SCORE || score + ANOMALY_SCORE_MARGIN >= words.len() as f64
}

/// transcribe.py `next_words_segment`: the first segment that has words.
pub fn next_words_segment(segments: &[Segment]) -> Option<&Segment> {
    segments.iter().find(|s| !s.words.is_empty())
}

/// The transcribe.py locals of one decoded window that the rules read.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// `time_offset`: the window start (seconds).
    pub time_offset: f64,
    /// `window_end_time`: `(seek + N_FRAMES)` in seconds, a full 30 s after the start.
    pub window_end_time: f64,
    /// `segment_duration`: the decoded part of the window (seconds).
    pub segment_duration: f64,
    /// `previous_seek` and `segment_size` (mel frames).
    pub previous_seek: usize,
    pub segment_size: usize,
    /// `content_frames` and `content_duration`: the whole audio.
    pub content_frames: usize,
    pub content_duration: f64,
    pub single_timestamp_ending: bool,
    /// End of the speech before this window.
    pub last_speech_timestamp: f64,
}

/// What to do with a window once hallucinations were looked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Keep the first `keep` segments and go on from `seek`.
    Keep { seek: usize, keep: usize },
    /// The first segment may be a hallucination after a long silence: drop the whole window and
    /// decode again from `seek`, just before it (transcribe.py line 436 `continue`).
    Redo { seek: usize },
}

/// Python's `round(seconds * FRAMES_PER_SECOND)` as a frame index (ties to even).
fn frames(seconds: f64) -> usize {
    (seconds * FRAMES_PER_SECOND).round_ties_even().max(0.0) as usize
}

/// transcribe.py lines 418-472 ("skip silence before possible hallucinations"), given the
/// window's word-timed `segments` and the `seek` the word-timestamp rule chose.
pub fn skip_silence_before_hallucinations(segments: &[Segment], w: &Window, threshold: f64, seek: usize) -> Decision {
    let mut seek = seek;
    // lines 421-428: seek to the last word only when enough of the window is left after it
    if !w.single_timestamp_ending {
        if let Some(last_word_end) = last_word_end(segments).filter(|&e| e > w.time_offset) {
            let remaining_duration = w.window_end_time - last_word_end;
            seek =
                if remaining_duration > threshold { frames(last_word_end) } else { w.previous_seek + w.segment_size };
        }
    }

    // lines 430-436: "if first segment might be a hallucination, skip leading silence"
    if let Some(first_segment) = next_words_segment(segments).filter(|s| is_segment_anomaly(Some(s))) {
        let gap = first_segment.start - w.time_offset;
        if gap > threshold {
            return Decision::Redo { seek: w.previous_seek + frames(gap) };
        }
    }

    // lines 438-472: "skip silence before any possible hallucination that is surrounded by
    // silence or more hallucinations"
    let mut hal_last_end = w.last_speech_timestamp;
    for (si, segment) in segments.iter().enumerate() {
        if segment.words.is_empty() {
            continue;
        }
        if is_segment_anomaly(Some(segment)) {
            let next_segment = next_words_segment(&segments[si + 1..]);
            let hal_next_start = match next_segment {
                Some(next) => next.words[0].start.unwrap_or(next.start),
                None => w.time_offset + w.segment_duration,
            };
            let silence_before = segment.start - hal_last_end > threshold
                || segment.start < threshold
                || segment.start - w.time_offset < WINDOW_EDGE;
            let silence_after = hal_next_start - segment.end > threshold
                || is_segment_anomaly(next_segment)
                || w.window_end_time - segment.end < WINDOW_EDGE;
            if silence_before && silence_after {
                seek = frames(f64::max(w.time_offset + MIN_SEEK_ADVANCE, segment.start));
                if w.content_duration - segment.end < threshold {
                    seek = w.content_frames;
                }
                return Decision::Keep { seek, keep: si };
            }
        }
        hal_last_end = segment.end;
    }
    Decision::Keep { seek, keep: segments.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start: f64, end: f64, probability: f64) -> Word {
        Word { word: text.into(), start: Some(start), end: Some(end), score: Some(probability), speaker: None }
    }

    /// A segment of `n` ordinary words (0.3 s, probability 0.9) from `start`.
    fn speech(start: f64, n: usize) -> Segment {
        let words: Vec<Word> =
            (0..n).map(|i| word(" word", start + 0.3 * i as f64, start + 0.3 * (i + 1) as f64, 0.9)).collect();
        Segment { start, end: start + 0.3 * n as f64, text: " word".repeat(n), words, ..Default::default() }
    }

    /// A one-word segment that is anomalous (probability 0.05, 0.05 s long) at `start`.
    fn hallucination(start: f64) -> Segment {
        Segment {
            start,
            end: start + 0.05,
            text: " you".into(),
            words: vec![word(" you", start, start + 0.05, 0.05)],
            ..Default::default()
        }
    }

    /// A full 30 s window at `time_offset` of a 100 s file.
    fn window(time_offset: f64) -> Window {
        let previous_seek = frames(time_offset);
        Window {
            time_offset,
            window_end_time: time_offset + 30.0,
            segment_duration: 30.0,
            previous_seek,
            segment_size: 3000,
            content_frames: 10_000,
            content_duration: 100.0,
            single_timestamp_ending: false,
            last_speech_timestamp: time_offset,
        }
    }

    /// transcribe.py line 179: the default prepend punctuations followed by the append ones.
    #[test]
    fn punctuation_is_the_default_punctuations_joined() {
        let joined =
            format!("{}{}", super::super::timing::PREPEND_PUNCTUATIONS, super::super::timing::APPEND_PUNCTUATIONS);
        assert_eq!(PUNCTUATION, joined);
    }

    /// transcribe.py lines 316-326 `word_anomaly_score`: each penalty on its own and together.
    #[test]
    fn word_anomaly_score_penalties() {
        assert_eq!(word_anomaly_score(&word("a", 0.0, 0.5, 0.9)), 0.0);
        assert_eq!(word_anomaly_score(&word("a", 0.0, 0.5, 0.1)), 1.0); // probability < 0.15
        assert_eq!(word_anomaly_score(&word("a", 0.0, 0.5, 0.15)), 0.0); // not below
        let short = word_anomaly_score(&word("a", 0.0, 0.033, 0.9)); // (0.133 - 0.033) * 15
        assert!((short - 1.5).abs() < 1e-9, "{short}");
        assert_eq!(word_anomaly_score(&word("a", 0.0, ANOMALY_SHORT_DURATION, 0.9)), 0.0);
        assert!((word_anomaly_score(&word("a", 0.0, 3.5, 0.9)) - 1.5).abs() < 1e-9); // 3.5 - 2.0
        assert_eq!(word_anomaly_score(&word("a", 0.0, 2.0, 0.9)), 0.0);
        let all = word_anomaly_score(&word("a", 1.0, 1.0, 0.0)); // 1 + 0.133 * 15
        assert!((all - 2.995).abs() < 1e-9, "{all}");
        // `word.get("probability", 0.0)`: no probability counts as 0
        let unscored = Word { score: None, ..word("a", 0.0, 0.5, 0.9) };
        assert_eq!(word_anomaly_score(&unscored), 1.0);
    }

    /// transcribe.py lines 328-334 `is_segment_anomaly`.
    #[test]
    fn segment_anomaly_rules() {
        assert!(!is_segment_anomaly(None));
        assert!(!is_segment_anomaly(Some(&Segment::default())), "no words");
        assert!(!is_segment_anomaly(Some(&speech(0.0, 3))));
        // score + 0.01 >= len(words): one improbable word out of one
        assert!(is_segment_anomaly(Some(&hallucination(0.0))));
        // one improbable word among four ordinary ones: score 1 < 3 and 1.01 < 5
        let mut mixed = speech(0.0, 4);
        mixed.words.push(word(" um", 1.2, 1.5, 0.01));
        assert!(!is_segment_anomaly(Some(&mixed)));
        // score >= 3 with many words: three improbable words among ten
        let mut many = speech(0.0, 7);
        many.words.splice(0..0, (0..3).map(|i| word(" x", i as f64, i as f64 + 0.3, 0.01)));
        assert!(is_segment_anomaly(Some(&many)));
        // only the first 8 non-punctuation words count: the same three improbable words after
        // eight ordinary ones are not looked at
        let mut late = speech(0.0, 8);
        late.words.extend((0..3).map(|i| word(" x", 3.0 + i as f64, 3.3 + i as f64, 0.01)));
        assert!(!is_segment_anomaly(Some(&late)));
        // punctuation words are skipped: "," scored alone would be an anomaly, the word is fine
        let punctuated =
            Segment { words: vec![word(",", 0.0, 0.01, 0.01), word(" fine", 0.0, 0.5, 0.9)], ..Default::default() };
        assert!(!is_segment_anomaly(Some(&punctuated)));
        // Python's substring `in`: an empty word counts as punctuation too
        let empty_only = Segment { words: vec![word("", 0.0, 0.01, 0.01)], ..Default::default() };
        assert!(is_segment_anomaly(Some(&empty_only)), "0 words left: score 0 + 0.01 >= 0");
    }

    /// transcribe.py lines 336-337 `next_words_segment`.
    #[test]
    fn next_words_segment_skips_wordless_segments() {
        let segments = [Segment::default(), speech(5.0, 2), speech(9.0, 1)];
        assert_eq!(next_words_segment(&segments).map(|s| s.start), Some(5.0));
        assert!(next_words_segment(&segments[..1]).is_none());
    }

    /// transcribe.py lines 421-428: with no hallucination, seek goes to the last word when more
    /// than `threshold` of the window is left after it, else to the end of the window.
    #[test]
    fn remaining_duration_decides_the_seek() {
        let w = window(0.0);
        let segments = [speech(0.0, 10)]; // last word ends at 3.0 s; 27 s remain
        assert_eq!(skip_silence_before_hallucinations(&segments, &w, 2.0, 0), Decision::Keep { seek: 300, keep: 1 });
        assert_eq!(
            skip_silence_before_hallucinations(&segments, &w, 28.0, 0),
            Decision::Keep { seek: 3000, keep: 1 },
            "27 s left is not more than 28 s: seek = previous_seek + segment_size"
        );
        // a single timestamp ending keeps the seek it was given
        let ending = Window { single_timestamp_ending: true, ..w.clone() };
        assert_eq!(
            skip_silence_before_hallucinations(&segments, &ending, 28.0, 1234),
            Decision::Keep { seek: 1234, keep: 1 }
        );
    }

    /// transcribe.py lines 430-436: an anomalous first segment after more than `threshold` of
    /// silence sends seek to its start and drops the window.
    #[test]
    fn leading_silence_before_a_hallucination_is_skipped() {
        let w = window(10.0);
        let segments = [hallucination(15.0), speech(16.0, 5)];
        assert_eq!(skip_silence_before_hallucinations(&segments, &w, 2.0, 0), Decision::Redo { seek: 1500 });
        // a gap of 5 s is not more than a 5 s threshold: no redo
        assert!(matches!(skip_silence_before_hallucinations(&segments, &w, 5.0, 0), Decision::Keep { .. }));
    }

    /// transcribe.py lines 438-472: a hallucination with silence on both sides truncates the
    /// window there; seek goes to max(time_offset + 1, its start).
    #[test]
    fn hallucination_between_silences_truncates_the_window() {
        let w = window(0.0);
        // speech 0-3 s, a hallucination at 10 s, speech again at 20 s
        let segments = [speech(0.0, 10), hallucination(10.0), speech(20.0, 5)];
        assert_eq!(skip_silence_before_hallucinations(&segments, &w, 2.0, 0), Decision::Keep { seek: 1000, keep: 1 });
        // silence after but not before (speech ends 1 s before it): kept
        let close = [speech(0.0, 30), hallucination(10.0), speech(20.0, 5)];
        assert_eq!(skip_silence_before_hallucinations(&close, &w, 2.0, 0), Decision::Keep { seek: 2150, keep: 3 });
        // silence before but speech right after: kept
        let followed = [speech(0.0, 10), hallucination(10.0), speech(10.5, 5)];
        assert!(matches!(skip_silence_before_hallucinations(&followed, &w, 2.0, 0), Decision::Keep { keep: 3, .. }));
        // another hallucination right after counts as silence
        let pair = [speech(0.0, 10), hallucination(10.0), hallucination(10.5)];
        assert_eq!(skip_silence_before_hallucinations(&pair, &w, 2.0, 0), Decision::Keep { seek: 1000, keep: 1 });
    }

    /// transcribe.py lines 453-462: the window's edges and the file start count as silence.
    #[test]
    fn window_edges_count_as_silence() {
        // a hallucination within 2 s of the window start and with nothing after it
        let w = Window { last_speech_timestamp: 9.5, ..window(10.0) };
        let segments = [hallucination(11.0)];
        // line 435 would redo only for a gap > threshold; 1 s is not more than 2 s
        assert_eq!(
            skip_silence_before_hallucinations(&segments, &w, 2.0, 0),
            Decision::Keep { seek: frames(11.0), keep: 0 },
            "seek = max(time_offset + 1, start)"
        );
        // near the start of the file (`segment["start"] < threshold`), seek at least 1 s on
        let w0 = Window { last_speech_timestamp: 0.0, ..window(0.0) };
        assert_eq!(
            skip_silence_before_hallucinations(&[hallucination(0.2)], &w0, 2.0, 0),
            Decision::Keep { seek: 100, keep: 0 }
        );
    }

    /// transcribe.py lines 468-469: a hallucination within `threshold` of the end of the audio
    /// ends the transcription.
    #[test]
    fn hallucination_at_the_end_of_the_audio_ends_it() {
        let w = Window { content_duration: 12.0, content_frames: 1200, ..window(0.0) };
        let segments = [speech(0.0, 10), hallucination(11.0)];
        assert_eq!(skip_silence_before_hallucinations(&segments, &w, 2.0, 0), Decision::Keep { seek: 1200, keep: 1 });
    }
}
