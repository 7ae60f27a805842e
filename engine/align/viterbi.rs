//! One segment in the default mode: WhisperX's text and word rules, but the path is true CTC
//! Viterbi ([`forced_align`], blank states), so a character spans only the frames that emit it
//! and a word ends where its last character's emission ends, not at the next word.
//!
//! Every word gets a start, an end and a score:
//! - characters the model does not have (digits, symbols, other scripts) are aligned through the
//!   wildcard column (the best non-blank, non-`|` class of each frame); a run of them then
//!   reaches out to the speech between its aligned neighbours (frames whose best class is a
//!   character), since "1999" is said with many more sounds than it has characters;
//! - a word with no frames at all (only unspoken punctuation, or a segment that could not be
//!   aligned) gets times interpolated between its neighbours (see [`fill_frameless_words`]) and
//!   score 0.
//!
//! With speech regions (from the VAD), frames outside them emit only the blank, so no character
//! is placed in silence. When the text cannot fit (fewer frames than CTC needs: one per token
//! plus a blank between repeated tokens), the search falls back step by step: without the speech
//! mask, then WhisperX's trellis (which needs one frame per token), then interpolation.

use super::compat::with_wildcard_column;
use super::ctc::{forced_align, merge_repeats, whisperx_backtrack, whisperx_trellis, Emissions, TokenSpan};
use super::dictionary::Dictionary;
use super::text::{py_isspace, PreparedText, Token};
use super::words::{py_round3, word_indices, CharTime};
use super::SAMPLE_RATE;

/// wav2vec2's feature encoder: a frame every 320 samples (20 ms), seeing 400 (25 ms).
pub const HOP_SAMPLES: usize = 320;
pub const WINDOW_SAMPLES: usize = 400;

/// Above this many (states × frames) cells the CTC search runs in a band around a guide path.
const FULL_SEARCH_CELLS: usize = 1 << 24;
/// The band's half-width in states (widened by the search when the path touches its edge).
const BAND_STATES: usize = 64;

/// How a segment's characters were placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// CTC Viterbi within the speech regions (or on all frames when none were given).
    Ctc,
    /// CTC Viterbi on all frames: the speech regions were too short for the text.
    CtcIgnoringSpeech,
    /// WhisperX's trellis: too few frames for CTC's blanks between repeated tokens.
    WhisperxTrellis,
    /// Not aligned (no audio, no tokens, or fewer frames than tokens): times interpolated.
    Interpolated,
}

/// Where a segment's emissions sit in the recording.
#[derive(Clone, Copy, Debug)]
pub struct Window<'a> {
    /// The first sample the emissions were computed from.
    pub first_sample: usize,
    /// The segment's own times (the fallback when nothing can be aligned).
    pub t1: f64,
    pub t2: f64,
    pub audio_seconds: f64,
    /// Speech regions in seconds, if known.
    pub speech: Option<&'a [(f64, f64)]>,
}

impl Window<'_> {
    fn frame_time(&self, frame: usize) -> f64 {
        ((self.first_sample + frame * HOP_SAMPLES) as f64 / SAMPLE_RATE).min(self.audio_seconds)
    }

    /// Whether frame `t`'s centre lies in a speech region (always, without regions).
    fn in_speech(&self, t: usize) -> bool {
        let centre = (self.first_sample + t * HOP_SAMPLES + WINDOW_SAMPLES / 2) as f64 / SAMPLE_RATE;
        self.speech.is_none_or(|regions| regions.iter().any(|&(s, e)| s <= centre && centre < e))
    }
}

/// Times of each character of `text.chars` (None for those not aligned: spaces without a `|`,
/// unspoken punctuation inside a word), and how they were found. `em` is None when the segment
/// has no audio (it starts past the end).
pub fn align_segment(
    text: &PreparedText,
    em: Option<&Emissions<'_>>,
    dict: &Dictionary,
    window: &Window<'_>,
    language: &str,
) -> (Vec<Option<CharTime>>, Placement) {
    let mut times = vec![None; text.chars.len()];
    let found =
        em.filter(|em| em.frames > 0 && !text.tokens.is_empty()).and_then(|em| token_spans(text, em, dict, window));
    let placement = match found {
        Some((spans, placement)) => {
            for (k, &cdx) in text.kept.iter().enumerate() {
                let own = &spans[text.token_ranges[k].clone()];
                if own.is_empty() {
                    continue;
                }
                let start = own.iter().map(|s| s.start).min().unwrap_or(0);
                let end = own.iter().map(|s| s.end).max().unwrap_or(0);
                let score = own.iter().map(|s| s.score).sum::<f64>() / own.len() as f64;
                times[cdx] = Some(CharTime {
                    start: py_round3(window.frame_time(start)),
                    end: py_round3(window.frame_time(end)),
                    score: py_round3(score),
                });
            }
            placement
        }
        None => Placement::Interpolated,
    };
    fill_frameless_words(&text.chars, &mut times, language, window);
    (times, placement)
}

/// Each token's frames, by the first search of the fallback chain that succeeds.
fn token_spans(
    text: &PreparedText,
    em: &Emissions<'_>,
    dict: &Dictionary,
    window: &Window<'_>,
) -> Option<(Vec<TokenSpan>, Placement)> {
    let (blank, delimiter) = (dict.blank(), dict.word_delimiter());
    // The wildcard column: the best class that is neither the blank nor the word separator.
    let mut unmasked = with_wildcard_column(em, blank);
    if let Some(d) = delimiter {
        let width = em.classes + 1;
        for (t, row) in unmasked.chunks_exact_mut(width).enumerate() {
            row[em.classes] = (0..em.classes)
                .filter(|&c| c != blank && c != d)
                .map(|c| em.at(t, c))
                .fold(f32::NEG_INFINITY, f32::max);
        }
    }
    let (frames, width) = (em.frames, em.classes + 1);
    fn wide(data: &[f32], frames: usize, classes: usize) -> Emissions<'_> {
        Emissions { data, frames, classes }
    }
    let tokens = text.token_ids(em.classes);
    let band = (em.frames * (2 * tokens.len() + 1) > FULL_SEARCH_CELLS).then_some(BAND_STATES);
    let speech_frame = |t: usize, masked: bool| {
        let best = (0..em.classes).max_by(|&a, &b| em.at(t, a).total_cmp(&em.at(t, b))).unwrap_or(blank);
        best != blank && Some(best) != delimiter && (!masked || window.in_speech(t))
    };
    let masked_frames: Vec<usize> = (0..em.frames).filter(|&t| !window.in_speech(t)).collect();
    if !masked_frames.is_empty() {
        let mut masked = unmasked.clone();
        for &t in &masked_frames {
            let row = &mut masked[t * (em.classes + 1)..(t + 1) * (em.classes + 1)];
            row.fill(f32::NEG_INFINITY);
            row[blank] = 0.0;
        }
        if let Ok(a) = forced_align(&wide(&masked, frames, width), &tokens, blank, band) {
            let mut spans = a.spans;
            widen_wildcard_runs(&text.tokens, &mut spans, em.frames, |t| speech_frame(t, true));
            return Some((spans, Placement::Ctc));
        }
    }
    if let Ok(a) = forced_align(&wide(&unmasked, frames, width), &tokens, blank, band) {
        let mut spans = a.spans;
        widen_wildcard_runs(&text.tokens, &mut spans, em.frames, |t| speech_frame(t, false));
        let placement = if masked_frames.is_empty() { Placement::Ctc } else { Placement::CtcIgnoringSpeech };
        return Some((spans, placement));
    }
    let em = wide(&unmasked, frames, width);
    let trellis = whisperx_trellis(&em, &tokens, blank);
    let path = whisperx_backtrack(&trellis, &em, &tokens, blank)?;
    Some((merge_repeats(&path), Placement::WhisperxTrellis))
}

/// A run of wildcard tokens covers the speech between its aligned neighbours: its first token
/// starts at the first speech frame after the previous token, its last ends after the last
/// speech frame before the next token (CTC alone would give each wildcard one peak).
fn widen_wildcard_runs(tokens: &[Token], spans: &mut [TokenSpan], frames: usize, speech: impl Fn(usize) -> bool) {
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] != Token::Wildcard {
            i += 1;
            continue;
        }
        let first = i;
        while i + 1 < tokens.len() && tokens[i + 1] == Token::Wildcard {
            i += 1;
        }
        let last = i;
        let lo = if first > 0 { spans[first - 1].end } else { 0 };
        if let Some(f) = (lo..spans[first].start).find(|&t| speech(t)) {
            spans[first].start = f;
        }
        let hi = if last + 1 < spans.len() { spans[last + 1].start } else { frames };
        if let Some(g) = (spans[last].end..hi).rev().find(|&t| speech(t)) {
            spans[last].end = g + 1;
        }
        i += 1;
    }
}

/// Words none of whose characters have times get them here, with score 0:
/// - between timed words, a run of such words shares the gap from the previous word's end to
///   the next word's start, in proportion to their characters;
/// - before the first or after the last timed word, they sit at that word's start or end (they
///   are unspoken punctuation, the only untimed words of an aligned segment);
/// - when no word has times, the run shares the segment's own span, cut at the end of the audio.
///
/// The times go to each character of the word other than whitespace.
pub fn fill_frameless_words(chars: &[char], times: &mut [Option<CharTime>], language: &str, window: &Window<'_>) {
    let idx = word_indices(chars, language);
    // Each word's characters (spaces excluded), for words with text.
    let mut words: Vec<Vec<usize>> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let group: Vec<usize> = (i..chars.len()).take_while(|&j| idx[j] == idx[i]).collect();
        i += group.len();
        let spoken: Vec<usize> = group.into_iter().filter(|&j| !py_isspace(chars[j])).collect();
        if !spoken.is_empty() {
            words.push(spoken);
        }
    }
    let span = |w: &[usize]| {
        let timed: Vec<CharTime> = w.iter().filter_map(|&j| times[j]).collect();
        (!timed.is_empty()).then(|| {
            (
                timed.iter().map(|t| t.start).fold(f64::INFINITY, f64::min),
                timed.iter().map(|t| t.end).fold(f64::NEG_INFINITY, f64::max),
            )
        })
    };
    let spans: Vec<Option<(f64, f64)>> = words.iter().map(|w| span(w)).collect();
    let mut w = 0;
    while w < words.len() {
        if spans[w].is_some() {
            w += 1;
            continue;
        }
        let first = w;
        while w < words.len() && spans[w].is_none() {
            w += 1;
        }
        let previous_end = first.checked_sub(1).and_then(|p| spans[p]).map(|s| s.1);
        let next_start = spans.get(w).copied().flatten().map(|s| s.0);
        let (a, b) = match (previous_end, next_start) {
            (Some(a), Some(b)) => (a, b.max(a)),
            (Some(a), None) => (a, a),
            (None, Some(b)) => (b, b),
            (None, None) if window.t1 < window.audio_seconds => {
                (window.t1, window.t2.min(window.audio_seconds).max(window.t1))
            }
            (None, None) => (window.t1, window.t2.max(window.t1)),
        };
        let total: usize = words[first..w].iter().map(Vec::len).sum();
        let mut done = 0;
        for word in &words[first..w] {
            let start = py_round3(a + (b - a) * done as f64 / total as f64);
            done += word.len();
            let end = py_round3(a + (b - a) * done as f64 / total as f64);
            for &j in word {
                times[j] = Some(CharTime { start, end, score: 0.0 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::text::prepare_strict;

    fn peaky(peaks: &[usize], classes: usize, hi: f32) -> Vec<f32> {
        let lo = (1.0 - hi) / (classes - 1) as f32;
        peaks.iter().flat_map(|&p| (0..classes).map(move |c| if c == p { hi.ln() } else { lo.ln() })).collect()
    }

    const E: usize = 2;
    const T: usize = 3;
    const N: usize = 6;
    const L: usize = 12;
    const O: usize = 5;
    const H: usize = 8;
    const SEP: usize = 1;

    fn window(frames: usize) -> Window<'static> {
        Window { first_sample: 16000, t1: 1.0, t2: 1.0 + frames as f64 * 0.02, audio_seconds: 100.0, speech: None }
    }

    fn run(text: &str, peaks: &[usize], w: &Window<'_>) -> (Vec<Option<(f64, f64)>>, Placement) {
        let data = peaky(peaks, 29, 0.9);
        let em = Emissions::new(&data, peaks.len(), 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let (times, how) = align_segment(&prepare_strict(text, &dict, "en"), Some(&em), &dict, w, "en");
        (times.iter().map(|t| t.map(|t| (t.start, t.end))).collect(), how)
    }

    #[test]
    fn a_word_ends_with_its_last_letter_not_at_the_next_word() {
        // The compat test's "he lo": 'e' at frame 3, then 10 blank frames. Frame f is at
        // 1.0 + 0.02·f s (the segment's audio starts at sample 16000).
        let mut peaks = vec![0, 0, H, E];
        peaks.extend([0; 10]);
        peaks.extend([SEP, L, O, 0, 0, 0]);
        let (times, how) = run("he lo", &peaks, &window(peaks.len()));
        assert_eq!(how, Placement::Ctc);
        assert_eq!(times[0], Some((1.04, 1.06)));
        assert_eq!(times[1], Some((1.06, 1.08)), "'e' keeps only its own frame");
        assert_eq!(times[2], Some((1.28, 1.3)));
        assert_eq!(times[4], Some((1.32, 1.34)));
    }

    #[test]
    fn held_letters_keep_all_their_frames() {
        let peaks = [0, 0, H, H, H, 0, E, E, E, 0];
        let (times, _) = run("he", &peaks, &window(10));
        assert_eq!(times, [Some((1.04, 1.1)), Some((1.12, 1.18))]);
    }

    #[test]
    fn repeated_letters_are_separated_by_a_blank() {
        let peaks = [0, L, 0, L, 0];
        let (times, _) = run("ll", &peaks, &window(5));
        assert_eq!(times, [Some((1.02, 1.04)), Some((1.06, 1.08))]);
    }

    #[test]
    fn a_number_covers_the_speech_between_its_neighbours() {
        // "a 19 o": a, |, then "nineteen" as six letter peaks with blanks, |, o.
        let peaks = [4, SEP, 0, N, I_, N, 0, E, T, E, 0, SEP, O, 0];
        let (times, how) = run("a 19 o", &peaks, &window(peaks.len()));
        assert_eq!(how, Placement::Ctc);
        let (one, nine) = (times[2].unwrap(), times[3].unwrap());
        // From the first speech frame after '|' (3) to the last before the next '|' (9, end 10).
        assert_eq!(one.0, 1.06);
        assert_eq!(nine.1, 1.2);
        assert!(one.1 <= nine.0);
    }
    const I_: usize = 7;

    #[test]
    fn a_wildcard_run_reaches_to_the_speech_around_it() {
        // Tokens a W W o; CTC put the wildcards on frames 5 and 7; frames 3..=9 are speech.
        let tokens = [Token::Class(4), Token::Wildcard, Token::Wildcard, Token::Class(5)];
        let span = |token_index, start, end| TokenSpan { token_index, start, end, score: 1.0 };
        let mut spans = [span(0, 0, 1), span(1, 5, 6), span(2, 7, 8), span(3, 12, 13)];
        widen_wildcard_runs(&tokens, &mut spans, 14, |t| (3..=9).contains(&t));
        assert_eq!((spans[1].start, spans[1].end, spans[2].start, spans[2].end), (3, 6, 7, 10));
        // A run at the end reaches to the last speech frame; the neighbours never move.
        let tokens = [Token::Class(4), Token::Wildcard];
        let mut spans = [span(0, 0, 1), span(1, 2, 3)];
        widen_wildcard_runs(&tokens, &mut spans, 10, |t| t != 9);
        assert_eq!((spans[0].end, spans[1].start, spans[1].end), (1, 1, 9));
    }

    #[test]
    fn words_of_characters_the_model_lacks_are_aligned_through_the_wildcard() {
        // "a ж": the Cyrillic letter is a wildcard, placed on the peak after '|'.
        let peaks = [4, SEP, 0, 0, 16, 0];
        let (times, _) = run("a ж", &peaks, &window(6));
        assert_eq!(times[2], Some((1.08, 1.1)));
    }

    #[test]
    fn unspoken_punctuation_words_sit_between_their_neighbours_with_score_zero() {
        let peaks = [H, 0, SEP, 0, 0, 0, O, 0];
        let data = peaky(&peaks, 29, 0.9);
        let em = Emissions::new(&data, peaks.len(), 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let (times, _) = align_segment(&prepare_strict("h — o", &dict, "en"), Some(&em), &dict, &window(8), "en");
        // 'h' ends at frame 1 (1.02), 'o' starts at frame 6 (1.12): the dash spans the gap.
        assert_eq!(times[2], Some(CharTime { start: 1.02, end: 1.12, score: 0.0 }));
    }

    #[test]
    fn too_few_frames_for_ctc_fall_back_to_the_trellis_then_to_interpolation() {
        // "ll" on two frames: CTC needs a blank between them (3 frames), WhisperX's trellis not.
        let (times, how) = run("ll", &[L, L], &window(2));
        assert_eq!(how, Placement::WhisperxTrellis);
        assert_eq!(times, [Some((1.0, 1.02)), Some((1.02, 1.04))]);
        // "hello" on 2 frames: nothing fits; the words share the segment's span (1.0 to 1.04).
        let (times, how) = run("hello you", &[H, E], &window(2));
        assert_eq!(how, Placement::Interpolated);
        assert_eq!(times[0], Some((1.0, 1.025)));
        assert_eq!(times[6], Some((1.025, 1.04)));
    }

    #[test]
    fn no_emissions_interpolate_over_the_segment_and_empty_text_has_nothing() {
        let dict = Dictionary::torchaudio_base_960h();
        let w = Window { first_sample: 0, t1: 200.0, t2: 201.0, audio_seconds: 100.0, speech: None };
        let (times, how) = align_segment(&prepare_strict("ab cd", &dict, "en"), None, &dict, &w, "en");
        assert_eq!(how, Placement::Interpolated);
        assert_eq!(times[0].unwrap().start, 200.0);
        assert_eq!(times[4].unwrap().end, 201.0);
        let (times, _) = align_segment(&prepare_strict("  ", &dict, "en"), None, &dict, &w, "en");
        assert!(times.iter().all(Option::is_none));
    }

    #[test]
    fn speech_regions_keep_characters_out_of_silence() {
        // Strong 'h' 'e' peaks at frames 2, 3 (outside speech), weaker ones at 12, 13 (inside).
        let mut data = peaky(&[0, 0, H, E, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 29, 0.9);
        let weak = peaky(&[H, E], 29, 0.4);
        data[12 * 29..14 * 29].copy_from_slice(&weak);
        let em = Emissions::new(&data, 16, 29).unwrap();
        let dict = Dictionary::torchaudio_base_960h();
        let text = prepare_strict("he", &dict, "en");
        let mut w = window(16);
        let (free, _) = align_segment(&text, Some(&em), &dict, &w, "en");
        assert_eq!(free[0].unwrap().start, 1.04);
        // Speech from 1.2 s: frame f's centre is 1.0 + 0.02 f + 0.0125.
        let regions = [(1.2, 2.0)];
        w.speech = Some(&regions);
        let (masked, how) = align_segment(&text, Some(&em), &dict, &w, "en");
        assert_eq!(how, Placement::Ctc);
        assert_eq!(masked[0].unwrap().start, 1.24);
        assert_eq!(masked[1].unwrap().start, 1.26);
        // Speech too short for the text: the mask is dropped.
        let regions = [(1.29, 1.3)];
        w.speech = Some(&regions);
        let (_, how) = align_segment(&text, Some(&em), &dict, &w, "en");
        assert_eq!(how, Placement::CtcIgnoringSpeech);
    }
}
