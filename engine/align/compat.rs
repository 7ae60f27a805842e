//! One segment in `whisperx-compat` mode: WhisperX 3.8.x `align()` steps 5-7 (`alignment.py`
//! L273-313) on the segment's emissions, giving each kept character its times and score.

use super::ctc::{merge_repeats, whisperx_backtrack, whisperx_trellis, Emissions};
use super::dictionary::Dictionary;
use super::text::PreparedText;
use super::words::{py_round3, CharTime};

/// The emissions with WhisperX's wildcard column appended (WX L281-286): for each frame, the
/// largest log-prob over the classes other than the blank. Returns the data and its width.
pub fn with_wildcard_column(em: &Emissions<'_>, blank: usize) -> Vec<f32> {
    let width = em.classes + 1;
    let mut data = Vec::with_capacity(em.frames * width);
    for t in 0..em.frames {
        let row = &em.data[t * em.classes..(t + 1) * em.classes];
        // torch `max` over the non-blank columns (NaN, if any, wins as torch's max lets it).
        let best =
            row.iter().enumerate().filter(|&(c, _)| c != blank).map(|(_, &v)| v).fold(f32::NEG_INFINITY, |m, v| {
                if m.is_nan() || v.is_nan() {
                    f32::NAN
                } else {
                    m.max(v)
                }
            });
        data.extend_from_slice(row);
        data.push(best);
    }
    data
}

/// Times of each character of `text.chars` (None for those not kept), or None when WhisperX's
/// backtrack fails (WX L294-297: the segment is then left unaligned with its own times).
///
/// - Tokens: the kept characters' classes, the wildcard being the appended column, added only
///   when some token needs it (WX L278-289).
/// - Path: [`whisperx_trellis`], [`whisperx_backtrack`], [`merge_repeats`] (WX L291-299).
/// - `ratio = (t2 − t1) / T` with the segment's nominal `t2` and the emissions' frame count
///   (WX L301-302), even where the audio ended before `t2`.
/// - Kept character `k` is timed by token `k`'s span: `round(frame · ratio + t1, 3)`, score
///   `round(mean probability, 3)` (WX L307-313). (When a kept character lowercased to two code
///   points it made two tokens, and the characters after it take the span of the token before
///   theirs, as WhisperX's `char_segments[clean_cdx.index(cdx)]` does.)
pub fn align_segment(
    text: &PreparedText,
    em: &Emissions<'_>,
    dict: &Dictionary,
    t1: f64,
    t2: f64,
) -> Option<Vec<Option<CharTime>>> {
    if em.frames == 0 || text.tokens.is_empty() {
        return None;
    }
    let blank = dict.blank();
    let extended;
    let (em, tokens) = if text.has_wildcard() {
        extended = with_wildcard_column(em, blank);
        let em = Emissions { data: &extended, frames: em.frames, classes: em.classes + 1 };
        (em, text.token_ids(em.classes - 1))
    } else {
        (*em, text.token_ids(usize::MAX))
    };
    let trellis = whisperx_trellis(&em, &tokens, blank);
    let path = whisperx_backtrack(&trellis, &em, &tokens, blank)?;
    let spans = merge_repeats(&path);
    // `duration * waveform_segment.size(0) / (trellis.size(0) - 1)`: size(0) is the batch, 1.
    let ratio = (t2 - t1) / em.frames as f64;
    let mut times = vec![None; text.chars.len()];
    for (k, &cdx) in text.kept.iter().enumerate() {
        let span = spans[k];
        times[cdx] = Some(CharTime {
            start: py_round3(span.start as f64 * ratio + t1),
            end: py_round3(span.end as f64 * ratio + t1),
            score: py_round3(span.score),
        });
    }
    Some(times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::text::prepare_compat;

    /// Log-probs where frame t puts `hi` on `peaks[t]` and spreads the rest over `classes`.
    pub(crate) fn peaky(peaks: &[usize], classes: usize, hi: f32) -> Vec<f32> {
        let lo = (1.0 - hi) / (classes - 1) as f32;
        peaks.iter().flat_map(|&p| (0..classes).map(move |c| if c == p { hi.ln() } else { lo.ln() })).collect()
    }

    const E: usize = 2;
    const L: usize = 12;
    const O: usize = 5;
    const H: usize = 8;
    const SEP: usize = 1;

    #[test]
    fn a_word_absorbs_the_pause_after_it_until_the_next_character() {
        // "he lo": h e at frames 2, 3, then 10 blank frames, | at 14, l o at 15, 16, blanks after.
        // WhisperX's trellis has no blank states: 'e' runs from frame 3 to the '|' at 14.
        let mut peaks = vec![0, 0, H, E];
        peaks.extend([0; 10]);
        peaks.extend([SEP, L, O, 0, 0, 0]);
        let data = peaky(&peaks, 29, 0.9);
        let em = Emissions::new(&data, peaks.len(), 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let text = prepare_compat("he lo", &dict, "en");
        // ratio = (2.0 − 1.0)/20 = 0.05 s a frame.
        let times = align_segment(&text, &em, &dict, 1.0, 2.0).unwrap();
        let t = |i: usize| times[i].unwrap();
        assert_eq!((t(0).start, t(0).end), (1.1, 1.15));
        assert_eq!((t(1).start, t(1).end), (1.15, 1.7), "'e' keeps the 10 blank frames after it");
        assert_eq!((t(2).start, t(2).end), (1.7, 1.75));
        assert_eq!(t(3).start, 1.75);
        // 'h' is scored on its own frame (0.9) and 'e' on its frame and the blanks it stayed on
        // (mean of 0.9 and ten 0.9s): both 0.9.
        assert_eq!((t(0).score, t(1).score), (0.9, 0.9));
    }

    #[test]
    fn held_letters_collapse_onto_their_first_frames() {
        // Each letter held 3 frames: WhisperX scores a letter on one frame and penalises holding
        // it (a stay is scored as blank), so "he" takes frames [2, 3) and [3, ...).
        let peaks = [0, 0, H, H, H, E, E, E, 0, 0];
        let data = peaky(&peaks, 29, 0.9);
        let em = Emissions::new(&data, peaks.len(), 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let times = align_segment(&prepare_compat("he", &dict, "en"), &em, &dict, 0.0, 1.0).unwrap();
        // ratio 0.1: 'h' is at 0.2, and 'e' starts long before the frames that say 'e' (0.5).
        assert_eq!(times[0].unwrap().start, 0.2);
        assert!(times[1].unwrap().start < 0.5, "{times:?}");
    }

    #[test]
    fn repeated_letters_need_no_blank_between_them() {
        // "ll" on two adjacent frames.
        let peaks = [0, L, L, 0];
        let data = peaky(&peaks, 29, 0.9);
        let em = Emissions::new(&data, 4, 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let times = align_segment(&prepare_compat("ll", &dict, "en"), &em, &dict, 0.0, 0.4).unwrap();
        assert_eq!((times[0].unwrap().start, times[1].unwrap().start), (0.1, 0.2));
    }

    #[test]
    fn numbers_are_aligned_through_the_wildcard_column() {
        // "a 19": '1' and '9' are not in the dictionary: the wildcard (max non-blank) column.
        // Frames: a, |, then two letter-like peaks (T, N) where "nineteen" would be said.
        let peaks = [4, SEP, 3, 0, 6, 0];
        let data = peaky(&peaks, 29, 0.9);
        let em = Emissions::new(&data, 6, 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let text = prepare_compat("a 19", &dict, "en");
        assert!(text.has_wildcard());
        let times = align_segment(&text, &em, &dict, 0.0, 0.6).unwrap();
        assert_eq!(times[2].unwrap().start, 0.2);
        assert_eq!(times[3].unwrap().start, 0.4);
        assert_eq!(times[2].unwrap().score, 0.9);
        let data = with_wildcard_column(&em, 0);
        assert_eq!(data[30 * 3 + 29], ((1.0f32 - 0.9) / 28.0).ln(), "a blank frame's wildcard: the largest non-blank");
        assert_eq!(data[30 * 2 + 29], 0.9f32.ln());
    }

    #[test]
    fn too_few_frames_leave_the_segment_unaligned() {
        let data = peaky(&[H, E], 29, 0.9);
        let em = Emissions::new(&data, 2, 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        assert!(align_segment(&prepare_compat("hello", &dict, "en"), &em, &dict, 0.0, 1.0).is_none());
    }

    #[test]
    fn times_use_the_nominal_end_even_past_the_audio() {
        // 10 frames for a segment that claims 0..2 s (the audio stopped at 0.2 s): ratio 0.2.
        let peaks = [0, H, 0, 0, 0, 0, 0, 0, 0, 0];
        let data = peaky(&peaks, 29, 0.9);
        let em = Emissions::new(&data, 10, 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let times = align_segment(&prepare_compat("h", &dict, "en"), &em, &dict, 0.0, 2.0).unwrap();
        assert_eq!(times[0].unwrap().start, 0.2);
    }

    #[test]
    fn times_are_python_rounded_after_the_ratio() {
        // ratio = (1.333 − 0.1)/3 = 0.411 (not exactly): frame 1 → 0.1 + 0.411, rounded to 3 places.
        let peaks = [0, H, 0];
        let data = peaky(&peaks, 29, 0.9);
        let em = Emissions::new(&data, 3, 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let times = align_segment(&prepare_compat("h", &dict, "en"), &em, &dict, 0.1, 1.333).unwrap();
        let ratio = (1.333f64 - 0.1) / 3.0;
        assert_eq!(times[0].unwrap().start, py_round3(ratio + 0.1));
        // The path ends after frame 1 (staying on the blank frame after it would only lower it).
        assert_eq!(times[0].unwrap().end, py_round3(2.0 * ratio + 0.1));
        assert_eq!((times[0].unwrap().start, times[0].unwrap().end), (0.511, 0.922));
    }
}
