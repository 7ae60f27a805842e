//! WhisperX's batched transcription of voice-activity chunks (whisperx `asr.py`
//! `FasterWhisperPipeline.transcribe`), without its losses: every chunk, padded to 30 s, is
//! encoded in batches of `batch_size` and decoded with the others of its batch (one decoder
//! step for all live hypotheses of all chunks), and — unlike WhisperX — each chunk keeps
//! openai's temperature fallback and quality gates: a chunk that fails the compression or
//! log-prob gate is decoded again at the next temperature, together with the other chunks of
//! its batch that failed, and a chunk the no-speech gate calls silence yields no segment.
//! Chunks are decoded with timestamp tokens: segments get their own times inside the chunk
//! (WhisperX gives every segment its whole chunk's span), and a chunk whose text ends before
//! its speech does is decoded again from there, so no sentence after a pause is lost. With word
//! timestamps, segments take the DTW word times and are split at sentence ends.

use std::collections::VecDeque;

use crate::audio::mel::{log_mel_window, HOP_LENGTH, N_FRAMES, N_SAMPLES};
use crate::audio::{SampleSource, SAMPLE_RATE};
use crate::backend::Tensor;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::models::whisper::decoding::{detect_language, DecodingResult, DecodingTask};
use crate::models::whisper::longform::{split_segments, Policy, Verdict, TIME_PRECISION};
use crate::models::whisper::timing;
use crate::models::whisper::transcribe::{describe_decoding_options, TranscribeOptions};
use crate::models::whisper::Whisper;
use crate::output::{Segment, Transcript};

use super::speech_chunks::{Chunk, Region};

/// whisperx CLI `--batch_size` default.
pub const BATCH_SIZE: usize = 8;
/// Characters that end a sentence: a segment with word times is split after a word ending so.
pub const SENTENCE_ENDS: &[char] = &['.', '?', '!', '。', '？', '！'];

/// Samples `[start, end)` decoded for a chunk: its span (`int(t · SAMPLE_RATE)`, as whisperx
/// slices it) widened by [`REGION_MARGIN`] on both sides where the audio and Whisper's 30 s
/// window allow — VAD regions start on the speech, and a word's soft onset cut off is misheard
/// ("Hello" as "below").
pub fn chunk_samples(chunk: &Chunk, len: usize) -> (usize, usize) {
    let at = |t: f64| ((t.max(0.0) * SAMPLE_RATE as f64) as usize).min(len);
    let (cs, ce) = (at(chunk.start), at(chunk.end).max(at(chunk.start)));
    // The margin before the chunk only where the chunk leaves room for it in the window.
    let s = at(chunk.start - REGION_MARGIN).max(ce.saturating_sub(N_SAMPLES)).min(cs);
    let e = at(chunk.end + REGION_MARGIN).min(s + N_SAMPLES).max(ce.min(s + N_SAMPLES));
    (s, e)
}

/// Silence kept around each speech region when the rest of a chunk is muted, seconds: VAD
/// region edges sit on the speech, so a little room keeps soft onsets and endings.
pub const REGION_MARGIN: f64 = 0.2;

/// A chunk's samples with everything outside its speech regions (widened by
/// [`REGION_MARGIN`]) set to zero. A chunk spans its first region's start to its last region's
/// end, so it holds the pauses between them, and in a noisy recording the noise in them, where
/// Whisper invents words or stretches a segment's times; muted, they are plain silence, which
/// it handles. A chunk without regions is returned whole.
pub fn speech_only(chunk: &Chunk, audio: &mut dyn SampleSource) -> Result<Vec<f32>> {
    let (s, e) = chunk_samples(chunk, audio.len());
    let mut out = audio.samples(s, e)?;
    if chunk.regions.is_empty() {
        return Ok(out);
    }
    let mut keep = vec![false; out.len()];
    for r in &chunk.regions {
        let at = |t: f64| ((t * SAMPLE_RATE as f64).max(0.0) as usize).saturating_sub(s).min(out.len());
        keep[at(r.start - REGION_MARGIN)..at(r.end + REGION_MARGIN)].fill(true);
    }
    for (v, k) in out.iter_mut().zip(&keep) {
        if !k {
            *v = 0.0;
        }
    }
    Ok(out)
}

/// Decode windows `features[A, T, D]` with the long-form policy per window: all at the first
/// temperature, then only those it sends back at the next, and so on (transcribe.py
/// `decode_with_fallback` applied to each window). Each window's result comes with its verdict,
/// [`Verdict::Skip`] or [`Verdict::Emit`]. `decoder_calls` counts decoding batches (for tests
/// and logs).
pub fn decode_batch_with_fallback(
    model: &Whisper,
    features: &Tensor,
    o: &TranscribeOptions,
    prompt: &[u32],
    speech_until: &[Option<u32>],
    decoder_calls: &mut usize,
    cancel: &Cancel,
) -> Result<Vec<(DecodingResult, Verdict)>> {
    let policy = Policy::new(o);
    let n = features.dim(0);
    let mut results: Vec<Option<(DecodingResult, Verdict)>> = (0..n).map(|_| None).collect();
    let mut pending: Vec<usize> = (0..n).collect();
    let mut attempt = 0;
    while !pending.is_empty() {
        let d = policy.decoding_options(attempt, prompt);
        tracing::debug!("{} windows: {}", pending.len(), describe_decoding_options(&d));
        let batch =
            if pending.len() == n { features.clone() } else { model.device.index_select(features, &pending)? };
        *decoder_calls += 1;
        // The first temperature only: a window that falls back (a forced continuation may be
        // what failed its gates) ends where the model ends it, and its tail is decoded again.
        let until = if attempt == 0 {
            pending.iter().map(|&w| speech_until.get(w).copied().flatten()).collect()
        } else {
            Vec::new()
        };
        let decoded = DecodingTask::new(model, d)?.with_cancel(cancel).with_speech_until(until).run_batch(&batch)?;
        let mut retry = Vec::new();
        for (&w, r) in pending.iter().zip(decoded) {
            match policy.verdict(attempt, &r) {
                Verdict::Retry { .. } => retry.push(w),
                verdict => results[w] = Some((r, verdict)),
            }
        }
        pending = retry;
        attempt += 1;
    }
    results.into_iter().map(|r| r.ok_or_else(|| Error::Other("no temperatures to decode with".into()))).collect()
}

/// What one batched run did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Encoder forwards (one per batch of chunks).
    pub encoder_calls: usize,
    /// Decoding batches (one per batch and fallback temperature that still had chunks).
    pub decoder_calls: usize,
    /// Chunks dropped by the no-speech gate.
    pub silent_chunks: usize,
    /// Tails of chunks decoded again because speech was left after the decoded text.
    pub follow_ups: usize,
}

/// Speech left after the decoded text that makes a chunk's tail be decoded again, seconds.
/// (Without it, a chunk of several sentences separated by pauses often ends after the first
/// ones: the speech WhisperX's batched mode loses.)
pub const MIN_UNTRANSCRIBED_SPEECH: f64 = 1.0;
/// How many times a chunk's tail may be decoded again.
pub const MAX_FOLLOW_UPS: usize = 3;

/// The part of `chunk` after `covered_until` (seconds) when it still holds at least
/// [`MIN_UNTRANSCRIBED_SPEECH`] of speech: from the first speech after `covered_until` to the
/// chunk's end, with its regions clipped.
pub fn untranscribed_tail(chunk: &Chunk, covered_until: f64) -> Option<Chunk> {
    if speech_after(chunk, covered_until) < MIN_UNTRANSCRIBED_SPEECH {
        return None;
    }
    let regions = regions_after(chunk, covered_until);
    let start = regions[0].start;
    (start > chunk.start).then_some(Chunk { start, end: chunk.end, regions })
}

/// `chunk`'s speech regions after `t`, clipped to it.
fn regions_after(chunk: &Chunk, t: f64) -> Vec<Region> {
    chunk.regions.iter().filter(|r| r.end > t).map(|r| Region { start: r.start.max(t), end: r.end }).collect()
}

/// Seconds of `chunk`'s speech after `t`.
fn speech_after(chunk: &Chunk, t: f64) -> f64 {
    chunk.regions.iter().filter(|r| r.end > t).map(|r| r.end - r.start.max(t)).sum()
}

/// The first timestamp index (steps of [`TIME_PRECISION`] from the window's start at
/// `time_offset`) after which less than [`MIN_UNTRANSCRIBED_SPEECH`] of `chunk`'s speech is
/// left, so [`untranscribed_tail`] finds no tail from there; at most the window's last index.
/// `None` when the chunk holds less than that.
pub fn speech_end_index(chunk: &Chunk, time_offset: f64) -> Option<u32> {
    if speech_after(chunk, f64::NEG_INFINITY) < MIN_UNTRANSCRIBED_SPEECH {
        return None;
    }
    // The speech left only falls as the index grows: the first index below the bound.
    let left_at = |i: u32| speech_after(chunk, time_offset + i as f64 * TIME_PRECISION);
    Some((0..MAX_TIMESTAMP_INDEX).find(|&i| left_at(i) < MIN_UNTRANSCRIBED_SPEECH).unwrap_or(MAX_TIMESTAMP_INDEX))
}

/// The last timestamp of a 30 s window, in steps of [`TIME_PRECISION`].
const MAX_TIMESTAMP_INDEX: u32 = 1500;

/// Transcribe the `chunks` of 16 kHz `audio` in batches of `batch_size`, reading the audio
/// forward: a chunk's samples are asked for when its batch is decoded and released once no
/// chunk left needs them. `progress(done,
/// total)` counts chunks. The language is detected on the first chunk of speech when the
/// options leave it open.
///
/// Chunks are decoded with timestamp tokens, so each yields segments with their own times
/// inside the chunk; a chunk whose decoded text ends before its speech does (a sentence after
/// a pause left out) has its tail decoded again in the next batch.
#[allow(clippy::too_many_arguments)] // the model, the audio, the work, its options, and three reporters
pub fn transcribe_chunks(
    model: &Whisper,
    audio: &mut dyn SampleSource,
    chunks: &[Chunk],
    o: &TranscribeOptions,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    stats: &mut BatchStats,
    cancel: &Cancel,
) -> Result<Transcript> {
    o.validate()?;
    let tok = &model.tokenizer;
    let n_mels = model.config.num_mel_bins;
    let mut options = o.clone();
    // Every chunk is decoded on its own: no conditioning on previous chunks.
    options.decode.without_timestamps = false;
    options.condition_on_previous_text = false;
    let mel_of = |c: &Chunk, audio: &mut dyn SampleSource| -> Result<Vec<f32>> {
        Ok(log_mel_window(&speech_only(c, audio)?, n_mels)?.data)
    };
    if options.decode.language.is_none() {
        options.decode.language = Some(match chunks.first() {
            Some(first) if tok.multilingual => {
                // On detected speech, not on whatever the file's first 30 s hold.
                let features = model.encode(&mel_of(first, audio)?, 1)?;
                stats.encoder_calls += 1;
                let (lang, p) = detect_language(model, &features)?.first().cloned().unwrap_or(("en".into(), 1.0));
                tracing::info!("detected language: {lang} ({:.0}%) on the first chunk of speech", p * 100.0);
                lang
            }
            _ => "en".to_string(),
        });
    }
    let language = options.decode.language.clone().unwrap_or_else(|| "en".into());
    if !tok.multilingual && language != "en" {
        return Err(Error::Other(format!(
            "language `{language}`: this model is English-only (use a multilingual model)"
        )));
    }
    tok.sot_sequence(Some(&language), options.decode.task)?;
    let prompt = match &options.initial_prompt {
        Some(p) => tok.encode(&format!(" {}", p.trim()))?,
        None => Vec::new(),
    };
    let mut segments: Vec<Segment> = Vec::new();
    let mut total = chunks.len();
    let mut done = 0;
    progress(0, total);
    // Chunks with their follow-up depth; a batch's tails go to the front, into the next batch,
    // so the audio is read forward.
    let mut queue: VecDeque<(Chunk, usize)> = chunks.iter().map(|c| (c.clone(), 0)).collect();
    let len = audio.len();
    while !queue.is_empty() {
        cancel.check()?;
        let batch: Vec<(Chunk, usize)> = queue.drain(..batch_size.max(1).min(queue.len())).collect();
        let first_needed = batch.iter().chain(&queue).map(|(c, _)| chunk_samples(c, len).0).min().unwrap_or(len);
        audio.release_before(first_needed);
        let mut follow_ups = Vec::new();
        {
            let mut mel = Vec::with_capacity(batch.len() * n_mels * crate::audio::mel::N_FRAMES);
            for (c, _) in &batch {
                mel.extend(mel_of(c, audio)?);
            }
            let features = model.encode(&mel, batch.len())?;
            stats.encoder_calls += 1;
            let until: Vec<Option<u32>> = batch
                .iter()
                .map(|(c, _)| speech_end_index(c, chunk_samples(c, len).0 as f64 / SAMPLE_RATE as f64))
                .collect();
            let results = decode_batch_with_fallback(
                model,
                &features,
                &options,
                &prompt,
                &until,
                &mut stats.decoder_calls,
                cancel,
            )?;
            for (k, ((chunk, depth), (result, verdict))) in batch.iter().zip(results).enumerate() {
                cancel.check()?;
                if verdict == Verdict::Skip {
                    tracing::debug!(
                        "chunk {:.2}-{:.2} s skipped as silence: no_speech_prob={:.3} avg_logprob={:.3}",
                        chunk.start,
                        chunk.end,
                        result.no_speech_prob,
                        result.avg_logprob
                    );
                    stats.silent_chunks += 1;
                    continue;
                }
                let (s, e) = chunk_samples(chunk, len);
                let time_offset = s as f64 / SAMPLE_RATE as f64;
                let frames = ((e - s) / HOP_LENGTH).clamp(1, N_FRAMES);
                let (mut current, advance) = split_segments(tok, &result, time_offset, frames)?;
                current.retain(|s| !s.text.trim().is_empty());
                // Timestamps may reach into the window's padding; the speech is inside the span.
                let span_end = e as f64 / SAMPLE_RATE as f64;
                for seg in &mut current {
                    seg.start = seg.start.clamp(time_offset, span_end);
                    seg.end = seg.end.clamp(seg.start, span_end);
                }
                let covered_until = current
                    .last()
                    .map_or(time_offset, |s| s.end)
                    .min(time_offset + (advance * HOP_LENGTH) as f64 / SAMPLE_RATE as f64);
                if !current.is_empty() && *depth < MAX_FOLLOW_UPS {
                    if let Some(tail) = untranscribed_tail(chunk, covered_until) {
                        tracing::debug!(
                            "chunk {:.2}-{:.2} s: text ends at {covered_until:.2} s, its tail from {:.2} s is decoded again",
                            chunk.start,
                            chunk.end,
                            tail.start
                        );
                        follow_ups.push((tail, depth + 1));
                        stats.follow_ups += 1;
                        total += 1;
                    }
                }
                if options.word_timestamps && !current.is_empty() {
                    let one = model.device.index_select(&features, &[k])?;
                    let text_tokens: Vec<u32> = timing::segment_text_tokens(&current, tok.special.eot).concat();
                    let alignment = model.word_alignment(&one, &text_tokens, &language, options.decode.task, frames)?;
                    let last_speech = segments.iter().rev().find(|s| s.end <= time_offset).map_or(0.0, |s| s.end);
                    timing::add_word_timestamps(
                        &mut current,
                        alignment,
                        tok.special.eot,
                        time_offset,
                        last_speech,
                        timing::PREPEND_PUNCTUATIONS,
                        timing::APPEND_PUNCTUATIONS,
                    );
                    segments.extend(current.into_iter().flat_map(split_at_sentence_ends));
                } else {
                    segments.extend(current);
                }
            }
            done += batch.len();
            progress(done, total);
        }
        for tail in follow_ups.into_iter().rev() {
            queue.push_front(tail);
        }
    }
    segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut transcript = Transcript { segments, word_segments: Vec::new(), language, ..Default::default() };
    transcript.collect_word_segments();
    Ok(transcript)
}

/// Split a segment with word times after every word that ends a sentence (a whole chunk is up
/// to 30 s: too long for a subtitle). Segment times become their words' span; the decoding
/// diagnostics stay with every piece. A segment without word times is returned as it is.
pub fn split_at_sentence_ends(segment: Segment) -> Vec<Segment> {
    if segment.words.len() < 2 || segment.words.iter().any(|w| w.start.is_none() || w.end.is_none()) {
        return vec![segment];
    }
    let mut pieces: Vec<Vec<crate::output::Word>> = vec![Vec::new()];
    let n = segment.words.len();
    for (i, w) in segment.words.iter().enumerate() {
        pieces.last_mut().expect("a piece").push(w.clone());
        if i + 1 < n && w.word.trim_end().ends_with(SENTENCE_ENDS) {
            pieces.push(Vec::new());
        }
    }
    if pieces.len() == 1 {
        return vec![segment];
    }
    pieces
        .into_iter()
        .map(|words| Segment {
            start: words[0].start.unwrap_or(segment.start),
            end: words[words.len() - 1].end.unwrap_or(segment.end),
            text: words.iter().map(|w| w.word.as_str()).collect(),
            words,
            tokens: Vec::new(),
            ..segment.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Word;

    fn word(w: &str, start: f64, end: f64) -> Word {
        Word { word: w.into(), start: Some(start), end: Some(end), ..Default::default() }
    }

    #[test]
    fn chunk_samples_widen_by_the_margin_inside_the_audio_and_the_window() {
        let c = Chunk { start: 0.03096, end: 2.8997, regions: Vec::new() };
        // 0.031 s − 0.2 s clips at 0; 2.8997 + 0.2 s = 3.0997 s → sample 49 595.
        assert_eq!(chunk_samples(&c, 100_000), (0, 49_595));
        assert_eq!(chunk_samples(&c, 10_000), (0, 10_000));
        let mid = Chunk { start: 10.0, end: 12.0, regions: Vec::new() };
        assert_eq!(chunk_samples(&mid, 1_000_000), (156_800, 195_200));
        let past = Chunk { start: 9.0, end: 10.0, regions: Vec::new() };
        assert_eq!(chunk_samples(&past, 1000), (1000, 1000));
        // A full 30 s chunk keeps its own 30 s: no margin fits.
        let full = Chunk { start: 10.0, end: 40.0, regions: Vec::new() };
        assert_eq!(chunk_samples(&full, 1_000_000), (160_000, 640_000));
        // A chunk over 30 s (a region longer than chunk_size) is cut at 30 s from its start,
        // as Whisper's window (and WhisperX) cuts it.
        let over = Chunk { start: 10.0, end: 41.0, regions: Vec::new() };
        assert_eq!(chunk_samples(&over, 1_000_000), (160_000, 640_000));
    }

    #[test]
    fn only_speech_and_its_margins_are_kept() {
        let audio = vec![1.0f32; 16_000 * 5];
        let r = |start, end| Region { start, end };
        let chunk = Chunk { start: 0.5, end: 3.5, regions: vec![r(0.5, 1.0), r(2.5, 3.5)] };
        let out = speech_only(&chunk, &mut &audio[..]).unwrap();
        // The span is [0.3, 3.7) s; kept: [0.3, 1.2) and [2.3, 3.7); muted between.
        assert_eq!(out.len(), 16_000 * 34 / 10);
        let at = |t: f64| ((t - 0.3) * 16_000.0).round() as usize;
        assert!(out[..at(1.2)].iter().all(|&v| v == 1.0));
        assert!(out[at(1.2)..at(2.3)].iter().all(|&v| v == 0.0));
        assert!(out[at(2.3)..].iter().all(|&v| v == 1.0));
        let whole = Chunk { start: 0.5, end: 3.5, regions: Vec::new() };
        assert!(speech_only(&whole, &mut &audio[..]).unwrap().iter().all(|&v| v == 1.0));
    }

    #[test]
    fn a_window_may_end_once_less_than_a_second_of_speech_is_left() {
        let r = |start, end| Region { start, end };
        let chunk = Chunk { start: 17.0, end: 27.0, regions: vec![r(17.0, 20.0), r(21.0, 23.5), r(25.0, 26.4)] };
        // The last region holds 1.4 s: exactly a second is left at 25.4 s, 8.4 s into a window
        // starting at 17 s (index 420 in steps of 0.02 s), less from index 421 on.
        let at = speech_end_index(&chunk, 17.0).unwrap();
        let time = |i: u32| 17.0 + i as f64 * 0.02;
        assert!((time(at) - 25.4).abs() <= 0.02 + 1e-9, "{at}");
        assert!(untranscribed_tail(&chunk, time(at)).is_none());
        assert!(untranscribed_tail(&chunk, time(at - 1)).is_some());
        // A last region shorter than a second reaches back into the one before it: 0.4 s
        // from 25 s plus 0.6 s of [21, 23.5) → 22.9 s.
        let short = Chunk { regions: vec![r(17.0, 20.0), r(21.0, 23.5), r(25.0, 25.4)], ..chunk.clone() };
        let at = speech_end_index(&short, 17.0).unwrap();
        assert!((time(at) - 22.9).abs() <= 0.02 + 1e-9, "{at}");
        assert!(untranscribed_tail(&short, time(at)).is_none());
        assert!(untranscribed_tail(&short, time(at - 1)).is_some());
        // Less than a second in all: the window may end at once (no rule).
        let brief = Chunk { start: 17.0, end: 17.8, regions: vec![r(17.0, 17.8)] };
        assert_eq!(speech_end_index(&brief, 17.0), None);
        // Never past the window's last timestamp.
        let late = Chunk { start: 0.0, end: 40.0, regions: vec![r(0.0, 40.0)] };
        assert_eq!(speech_end_index(&late, 0.0), Some(1500));
    }

    #[test]
    fn a_tail_with_a_second_of_speech_left_is_decoded_again() {
        let r = |start, end| Region { start, end };
        let chunk = Chunk { start: 17.0, end: 27.0, regions: vec![r(17.0, 20.0), r(21.0, 23.5), r(25.0, 27.0)] };
        // Text up to 23.6 s: the last region (2 s) is left → decode from 25 s.
        let tail = untranscribed_tail(&chunk, 23.6).unwrap();
        assert_eq!((tail.start, tail.end, tail.regions.len()), (25.0, 27.0, 1));
        // Text up to 26.2 s: 0.8 s left, too little.
        assert_eq!(untranscribed_tail(&chunk, 26.2), None);
        // Text ending inside a region: the rest of it counts.
        let tail = untranscribed_tail(&chunk, 22.0).unwrap();
        assert_eq!((tail.start, tail.regions[0].start), (22.0, 22.0));
        // Nothing transcribed past the start: no progress would be made.
        assert_eq!(untranscribed_tail(&chunk, 10.0), None);
    }

    #[test]
    fn sentences_become_segments_with_their_words_times() {
        let s = Segment {
            start: 1.0,
            end: 9.0,
            text: " Hello there. How are you? Fine".into(),
            words: vec![
                word(" Hello", 1.2, 1.5),
                word(" there.", 1.5, 2.0),
                word(" How", 3.0, 3.2),
                word(" are", 3.2, 3.4),
                word(" you?", 3.4, 3.9),
                word(" Fine", 5.0, 5.5),
            ],
            avg_logprob: Some(-0.2),
            ..Default::default()
        };
        let out = split_at_sentence_ends(s);
        let spans: Vec<(f64, f64, &str)> = out.iter().map(|s| (s.start, s.end, s.text.as_str())).collect();
        assert_eq!(spans, [(1.2, 2.0, " Hello there."), (3.0, 3.9, " How are you?"), (5.0, 5.5, " Fine")]);
        assert!(out.iter().all(|s| s.avg_logprob == Some(-0.2)));
    }

    #[test]
    fn a_final_full_stop_or_missing_times_leave_the_segment_whole() {
        let s = Segment {
            start: 0.0,
            end: 2.0,
            text: " One two.".into(),
            words: vec![word(" One", 0.1, 0.5), word(" two.", 0.5, 1.0)],
            ..Default::default()
        };
        assert_eq!(split_at_sentence_ends(s.clone()), vec![s]);
        let mut untimed = Segment { words: vec![word(" A.", 0.0, 0.1), word(" B", 0.2, 0.3)], ..Default::default() };
        untimed.words[1].start = None;
        assert_eq!(split_at_sentence_ends(untimed.clone()), vec![untimed]);
    }
}
