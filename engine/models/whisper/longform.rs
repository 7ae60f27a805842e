//! openai/whisper transcribe.py's long-form policy (release 20250625) in one place, for both
//! drivers: the sequential one ([`super::transcribe`]) and the batched one
//! (`pipeline::batched`). Each is a short loop that decodes and asks the policy what comes next.
//!
//! Pinned source: <https://github.com/openai/whisper/blob/v20250625/whisper/transcribe.py>.
//!
//! A window goes through these states:
//!
//! ```text
//!   Decode(attempt 0) ──result──► verdict ─┬─ Retry(attempt + 1) ──► Decode(attempt + 1)
//!                                          ├─ Skip   (no speech: seek past the window)
//!                                          └─ Emit   (segments; seek to the last timestamp)
//!   Emit ─► word times (optional: seek to the last word; the hallucination rules may Redo)
//!        ─► empty segments cleared ─► prompt kept or reset for the next window
//! ```
//!
//! The rules, each with the lines it reproduces: [`Policy::decoding_options`] (L190-199),
//! [`Policy::needs_fallback`] (L203-220), [`Policy::verdict`] (L189-222, L297-310),
//! [`split_segments`] (L339-399), [`seek_after_word_times`] (L413-416),
//! [`clear_empty_segments`] (L484-488), [`Policy::resets_prompt`] (L503-505); the
//! hallucination rules (L418-472) are in [`super::hallucination`].

use crate::audio::mel::HOP_LENGTH;
use crate::audio::SAMPLE_RATE;
use crate::error::Result;
use crate::output::Segment;

use super::decoding::{DecodingOptions, DecodingResult};
use super::timing::{last_word_end, FRAMES_PER_SECOND};
use super::tokenizer::WhisperTokenizer as Tokenizer;
use super::transcribe::TranscribeOptions;

/// openai transcribe.py default temperatures: (0.0, 0.2, 0.4, 0.6, 0.8, 1.0).
pub const TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
/// "too repetitive" above this gzip compression ratio.
pub const COMPRESSION_RATIO_THRESHOLD: f64 = 2.4;
/// "average log probability is too low" below this.
pub const LOGPROB_THRESHOLD: f64 = -1.0;
/// With a low log-prob, a window above this no-speech probability is silence.
pub const NO_SPEECH_THRESHOLD: f64 = 0.6;
/// Above this temperature the next window is not conditioned on the text (L503 `> 0.5`).
pub const PROMPT_RESET_TEMPERATURE: f32 = 0.5;
/// Mel frames per encoder position (transcribe.py `input_stride`).
pub const INPUT_STRIDE: usize = 2;
/// Seconds per timestamp token, computed in f64 as transcribe.py's `time_precision` is
/// (`input_stride * HOP_LENGTH / SAMPLE_RATE` = 0.02), so segment times are exact multiples.
pub const TIME_PRECISION: f64 = (INPUT_STRIDE * HOP_LENGTH) as f64 / SAMPLE_RATE as f64;

/// What comes after a decoding attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Decode the window again at temperature `attempt` (L221: break only when the result
    /// needs no fallback; the last temperature's result is kept whatever it is).
    Retry { attempt: usize },
    /// The no-speech gate: nothing is kept; seek past the window (L299-310).
    Skip,
    /// Keep the result: split it into segments and advance (L339-399).
    Emit,
}

/// The policy of one run's options.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'o> {
    pub options: &'o TranscribeOptions,
}

impl<'o> Policy<'o> {
    pub fn new(options: &'o TranscribeOptions) -> Self {
        Policy { options }
    }

    /// The decoding options of attempt `attempt` (L190-199): beams at temperature 0 ("disable
    /// best_of when t == 0"), `best_of` samples above it ("disable beam_size and patience when
    /// t > 0"); the sampler's seed moves on with each attempt.
    pub fn decoding_options(&self, attempt: usize, prompt: &[u32]) -> DecodingOptions {
        let o = self.options;
        let t = o.temperatures[attempt];
        let mut d = o.decode.clone();
        d.temperature = t;
        d.prompt = prompt.to_vec();
        d.seed = o.decode.seed.wrapping_add(attempt as u64);
        if t > 0.0 {
            d.beam_size = None;
            d.patience = None;
        } else {
            d.best_of = None;
        }
        d
    }

    /// L203-220: too repetitive, or too improbable, unless the window is silence.
    pub fn needs_fallback(&self, r: &DecodingResult) -> bool {
        let o = self.options;
        let mut fallback = false;
        if o.compression_ratio_threshold.is_some_and(|t| r.compression_ratio > t) {
            fallback = true; // "too repetitive"
        }
        if o.logprob_threshold.is_some_and(|t| r.avg_logprob < t) {
            fallback = true; // "average log probability is too low"
        }
        if o.no_speech_threshold.is_some_and(|t| r.no_speech_prob > t)
            && o.logprob_threshold.is_some_and(|t| r.avg_logprob < t)
        {
            fallback = false; // "silence"
        }
        fallback
    }

    /// L297-306, "no voice activity check": a probable no-speech token skips the window unless
    /// the text's log-prob is high enough.
    pub fn should_skip(&self, r: &DecodingResult) -> bool {
        let o = self.options;
        let Some(threshold) = o.no_speech_threshold else { return false };
        let mut skip = r.no_speech_prob > threshold;
        if o.logprob_threshold.is_some_and(|t| r.avg_logprob > t) {
            skip = false; // "don't skip if the logprob is high enough, despite the no_speech_prob"
        }
        skip
    }

    /// The transition after attempt `attempt` gave `r`.
    pub fn verdict(&self, attempt: usize, r: &DecodingResult) -> Verdict {
        if self.needs_fallback(r) && attempt + 1 < self.options.temperatures.len() {
            return Verdict::Retry { attempt: attempt + 1 };
        }
        if self.should_skip(r) {
            Verdict::Skip
        } else {
            Verdict::Emit
        }
    }

    /// L503-505: "do not feed the prompt tokens if a high temperature was used" (nor ever
    /// without `condition_on_previous_text`).
    pub fn resets_prompt(&self, r: &DecodingResult) -> bool {
        !self.options.condition_on_previous_text || r.temperature > PROMPT_RESET_TEMPERATURE
    }
}

/// Whether the tokens end in a single timestamp (L340: `timestamp_tokens[-2:] == [False, True]`):
/// no speech after it.
pub fn single_timestamp_ending(tokens: &[u32], timestamp_begin: u32) -> bool {
    let n = tokens.len();
    n >= 2 && tokens[n - 2] < timestamp_begin && tokens[n - 1] >= timestamp_begin
}

/// The timestamp index up to which a window's sampled `tokens` cover its audio, as
/// [`split_segments`] reads them (L339-399): after a consecutive pair, the last segment's end
/// (the last timestamp on a single timestamp ending, else the first timestamp of the last pair:
/// the text after it is "the unfinished segment" that is ignored); with no pair, the last
/// timestamp. `None` where the window counts as covered whole: no timestamp, or only
/// `<|0.00|>` ("no consecutive timestamps but it has a timestamp" needs one past 0).
pub fn covered_timestamp(tokens: &[u32], timestamp_begin: u32) -> Option<u32> {
    let is_ts = |t: u32| t >= timestamp_begin;
    let last_pair = (1..tokens.len()).rev().find(|&i| is_ts(tokens[i - 1]) && is_ts(tokens[i]));
    match last_pair {
        Some(_) if single_timestamp_ending(tokens, timestamp_begin) => tokens.last().map(|&t| t - timestamp_begin),
        Some(i) => Some(tokens[i - 1] - timestamp_begin),
        None => tokens.iter().rev().find(|&&t| is_ts(t)).map(|&t| t - timestamp_begin).filter(|&t| t != 0),
    }
}

/// L339-399: split one window's tokens into segments at consecutive timestamp pairs; returns
/// the segments and how many mel frames `seek` advances: to the last timestamp, or the whole
/// window after a single timestamp ending or when there are no consecutive timestamps.
pub fn split_segments(
    tok: &Tokenizer,
    result: &DecodingResult,
    time_offset: f64,
    segment_size: usize,
) -> Result<(Vec<Segment>, usize)> {
    let tb = tok.special.timestamp_begin;
    let tokens = &result.tokens;
    let is_ts: Vec<bool> = tokens.iter().map(|&t| t >= tb).collect();
    let n = tokens.len();
    let single_ending = single_timestamp_ending(tokens, tb);
    let new_segment = |start: f64, end: f64, toks: &[u32]| -> Result<Segment> {
        let text_tokens: Vec<u32> = toks.iter().copied().filter(|&t| t < tok.special.eot).collect();
        Ok(Segment {
            start,
            end,
            text: tok.decode(&text_tokens)?,
            tokens: toks.to_vec(),
            temperature: Some(result.temperature as f64),
            avg_logprob: Some(result.avg_logprob),
            compression_ratio: Some(result.compression_ratio),
            no_speech_prob: Some(result.no_speech_prob),
            ..Default::default()
        })
    };
    let mut consecutive: Vec<usize> = (1..n).filter(|&i| is_ts[i - 1] && is_ts[i]).collect();
    let mut segments = Vec::new();
    let advance;
    if !consecutive.is_empty() {
        // "if the output contains two consecutive timestamp tokens"
        if single_ending {
            consecutive.push(n);
        }
        let mut last_slice = 0;
        for &current in &consecutive {
            let sliced = &tokens[last_slice..current];
            let start_pos = (sliced[0] - tb) as f64;
            let end_pos = (sliced[sliced.len() - 1] - tb) as f64;
            segments.push(new_segment(
                time_offset + start_pos * TIME_PRECISION,
                time_offset + end_pos * TIME_PRECISION,
                sliced,
            )?);
            last_slice = current;
        }
        advance = if single_ending {
            // "single timestamp at the end means no speech after the last timestamp"
            segment_size
        } else {
            // "ignore the unfinished segment and seek to the last timestamp"
            (tokens[last_slice - 1] - tb) as usize * INPUT_STRIDE
        };
    } else {
        let mut duration = segment_size as f64 * HOP_LENGTH as f64 / SAMPLE_RATE as f64;
        if let Some(&last) = tokens.iter().rev().find(|&&t| t >= tb) {
            if last != tb {
                // "no consecutive timestamps but it has a timestamp; use the last one"
                duration = (last - tb) as f64 * TIME_PRECISION;
            }
        }
        segments.push(new_segment(time_offset, time_offset + duration, tokens)?);
        advance = segment_size;
    }
    Ok((segments, advance))
}

/// L413-416: with word times, unless the window ended on a single timestamp, `seek` moves to
/// the last word's end when that is past the window's start.
pub fn seek_after_word_times(segments: &[Segment], time_offset: f64, single_ending: bool, seek: usize) -> usize {
    if single_ending {
        return seek;
    }
    match last_word_end(segments) {
        Some(end) if end > time_offset => (end * FRAMES_PER_SECOND).round_ties_even() as usize,
        _ => seek,
    }
}

/// L484-488: "if a segment is instantaneous or does not contain text, clear it".
pub fn clear_empty_segments(segments: &mut [Segment]) {
    for s in segments.iter_mut() {
        if s.start == s.end || s.text.trim().is_empty() {
            s.text.clear();
            s.tokens.clear();
            s.words.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Word;

    fn result(avg_logprob: f64, compression_ratio: f64, no_speech_prob: f64, temperature: f32) -> DecodingResult {
        DecodingResult {
            tokens: Vec::new(),
            text: String::new(),
            avg_logprob,
            no_speech_prob,
            temperature,
            compression_ratio,
        }
    }

    fn defaults() -> TranscribeOptions {
        TranscribeOptions::default()
    }

    #[test]
    fn l190_199_beams_at_zero_samples_above_and_the_seed_moves_on() {
        let mut o = defaults();
        o.decode.beam_size = Some(5);
        o.decode.patience = Some(1.0);
        o.decode.best_of = Some(5);
        o.decode.seed = 7;
        let p = Policy::new(&o);
        let first = p.decoding_options(0, &[1, 2]);
        assert_eq!(
            (first.temperature, first.beam_size, first.patience, first.best_of),
            (0.0, Some(5), Some(1.0), None)
        );
        assert_eq!((first.prompt.clone(), first.seed), (vec![1, 2], 7));
        let hot = p.decoding_options(3, &[]);
        assert_eq!((hot.temperature, hot.beam_size, hot.patience, hot.best_of), (0.6, None, None, Some(5)));
        assert_eq!(hot.seed, 10);
    }

    #[test]
    fn l203_208_a_repetitive_result_needs_fallback() {
        let o = defaults();
        let p = Policy::new(&o);
        assert!(p.needs_fallback(&result(-0.2, 2.5, 0.0, 0.0)));
        assert!(!p.needs_fallback(&result(-0.2, 2.4, 0.0, 0.0)), "not above the threshold");
        let mut off = defaults();
        off.compression_ratio_threshold = None;
        assert!(!Policy::new(&off).needs_fallback(&result(-0.2, 9.0, 0.0, 0.0)));
    }

    #[test]
    fn l209_213_an_improbable_result_needs_fallback() {
        let o = defaults();
        let p = Policy::new(&o);
        assert!(p.needs_fallback(&result(-1.1, 1.0, 0.0, 0.0)));
        assert!(!p.needs_fallback(&result(-1.0, 1.0, 0.0, 0.0)), "not below the threshold");
        let mut off = defaults();
        off.logprob_threshold = None;
        assert!(!Policy::new(&off).needs_fallback(&result(-5.0, 1.0, 0.0, 0.0)));
    }

    #[test]
    fn l214_220_silence_needs_no_fallback() {
        let o = defaults();
        let p = Policy::new(&o);
        // Improbable and repetitive, but the no-speech token is likely: silence, no retry.
        assert!(!p.needs_fallback(&result(-1.5, 3.0, 0.7, 0.0)));
        // The silence rule needs both gates.
        let mut no_logprob = defaults();
        no_logprob.logprob_threshold = None;
        assert!(Policy::new(&no_logprob).needs_fallback(&result(-1.5, 3.0, 0.7, 0.0)));
        let mut no_speech_gate = defaults();
        no_speech_gate.no_speech_threshold = None;
        assert!(Policy::new(&no_speech_gate).needs_fallback(&result(-1.5, 1.0, 0.7, 0.0)));
    }

    #[test]
    fn l189_222_retries_until_a_result_passes_or_the_temperatures_run_out() {
        let o = defaults();
        let p = Policy::new(&o);
        let bad = result(-1.5, 1.0, 0.1, 0.0);
        for attempt in 0..5 {
            assert_eq!(p.verdict(attempt, &bad), Verdict::Retry { attempt: attempt + 1 });
        }
        // The last temperature's result is kept whatever it is.
        assert_eq!(p.verdict(5, &bad), Verdict::Emit);
        assert_eq!(p.verdict(0, &result(-0.3, 1.2, 0.1, 0.0)), Verdict::Emit);
        // One temperature (no fallback): one attempt.
        let mut once = defaults();
        once.temperatures = vec![0.4];
        assert_eq!(Policy::new(&once).verdict(0, &bad), Verdict::Emit);
    }

    #[test]
    fn l297_310_the_no_speech_gate_skips_unless_the_text_is_probable() {
        let o = defaults();
        let p = Policy::new(&o);
        // Silence: no retry (L220), and the window is skipped.
        assert_eq!(p.verdict(0, &result(-1.5, 1.0, 0.9, 0.0)), Verdict::Skip);
        // "don't skip if the logprob is high enough, despite the no_speech_prob"
        assert_eq!(p.verdict(0, &result(-0.5, 1.0, 0.9, 0.0)), Verdict::Emit);
        assert!(!p.should_skip(&result(-1.5, 1.0, 0.6, 0.0)), "not above the threshold");
        let mut off = defaults();
        off.no_speech_threshold = None;
        assert!(!Policy::new(&off).should_skip(&result(-1.5, 1.0, 0.99, 0.0)));
        // Without the log-prob gate, the no-speech probability alone decides.
        let mut no_logprob = defaults();
        no_logprob.logprob_threshold = None;
        assert!(Policy::new(&no_logprob).should_skip(&result(-0.1, 1.0, 0.9, 0.0)));
        // A hot retry's last result can still be skipped as silence (temperature > 0 path).
        assert_eq!(p.verdict(5, &result(-1.2, 3.0, 0.8, 1.0)), Verdict::Skip);
    }

    #[test]
    fn l503_505_the_prompt_resets_after_a_hot_result_or_without_conditioning() {
        let mut o = defaults();
        o.condition_on_previous_text = true;
        let p = Policy::new(&o);
        assert!(!p.resets_prompt(&result(-0.2, 1.0, 0.0, 0.0)));
        assert!(!p.resets_prompt(&result(-0.2, 1.0, 0.0, 0.4)));
        assert!(p.resets_prompt(&result(-0.2, 1.0, 0.0, 0.6)), "temperature above 0.5");
        o.condition_on_previous_text = false;
        assert!(Policy::new(&o).resets_prompt(&result(-0.2, 1.0, 0.0, 0.0)));
    }

    fn word(end: f64) -> Word {
        Word { word: " w".into(), start: Some(end - 0.2), end: Some(end), ..Default::default() }
    }

    #[test]
    fn l413_416_word_times_move_seek_to_the_last_word() {
        let segs = vec![Segment { words: vec![word(12.345)], ..Default::default() }];
        // 12.345 s at 100 frames per second, rounded half to even as Python's round.
        assert_eq!(seek_after_word_times(&segs, 10.0, false, 4000), 1234);
        // A single timestamp ending keeps the window's seek.
        assert_eq!(seek_after_word_times(&segs, 10.0, true, 4000), 4000);
        // A last word before the window's start does not move it back.
        assert_eq!(seek_after_word_times(&segs, 20.0, false, 4000), 4000);
        assert_eq!(seek_after_word_times(&[], 0.0, false, 3000), 3000);
    }

    #[test]
    fn l484_488_instantaneous_and_empty_segments_are_cleared() {
        let mut segs = vec![
            Segment { start: 1.0, end: 1.0, text: " a".into(), tokens: vec![5], ..Default::default() },
            Segment { start: 1.0, end: 2.0, text: "  ".into(), tokens: vec![6], ..Default::default() },
            Segment { start: 2.0, end: 3.0, text: " kept".into(), tokens: vec![7], ..Default::default() },
        ];
        clear_empty_segments(&mut segs);
        assert!(segs[0].text.is_empty() && segs[0].tokens.is_empty());
        assert!(segs[1].text.is_empty() && segs[1].tokens.is_empty());
        assert_eq!((segs[2].text.as_str(), segs[2].tokens.len()), (" kept", 1));
    }

    #[test]
    fn l340_a_single_timestamp_ending_is_a_text_token_then_a_timestamp() {
        let tb = 100;
        assert!(single_timestamp_ending(&[100, 5, 6, 120], tb));
        assert!(!single_timestamp_ending(&[100, 5, 120, 121], tb), "consecutive timestamps at the end");
        assert!(!single_timestamp_ending(&[100, 5, 6], tb));
        assert!(!single_timestamp_ending(&[120], tb));
    }
    #[test]
    fn covered_timestamp_is_where_split_segments_ends_the_last_segment() {
        const TB: u32 = 100;
        let ts = |i: u32| TB + i;
        // A pair at 2 then an unfinished segment: covered to 2, whatever comes after.
        assert_eq!(covered_timestamp(&[ts(0), 1, ts(2), ts(2), 3], TB), Some(2));
        assert_eq!(covered_timestamp(&[ts(0), 1, ts(2), ts(4), 3], TB), Some(2));
        // A pair ending the tokens: its first timestamp closes the last segment.
        assert_eq!(covered_timestamp(&[ts(0), 1, ts(4), ts(4)], TB), Some(4));
        // A single timestamp ending after a pair: the last timestamp.
        assert_eq!(covered_timestamp(&[ts(0), 1, ts(2), ts(2), 3, ts(5)], TB), Some(5));
        // No pair: the last timestamp, opening or closing, unless it is 0 (the whole window).
        assert_eq!(covered_timestamp(&[ts(0), 1, ts(3)], TB), Some(3));
        assert_eq!(covered_timestamp(&[ts(1), 1], TB), Some(1));
        assert_eq!(covered_timestamp(&[ts(0), 1], TB), None);
        assert_eq!(covered_timestamp(&[1, 2], TB), None);
    }
}
