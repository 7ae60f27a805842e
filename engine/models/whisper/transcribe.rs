//! Long-form transcription: openai/whisper transcribe.py (release 20250625). Consecutive 30 s
//! windows over the log-mel of the whole file (or of the `clip_timestamps` spans, see
//! [`super::clips`]); each window is decoded with temperature fallback; `seek` advances to the
//! last timestamp token (or by a whole window); previous text conditions the next window; with
//! word timestamps, `hallucination_silence_threshold` skips silence around likely hallucinations
//! (see [`super::hallucination`]).
//!
//! With `LOG_LEVEL=debug` every decoding attempt logs the options the decoder receives, as one
//! line `DecodingOptions: temperature=.. beam_size=.. patience=.. best_of=.. length_penalty=..
//! sample_len=.. prompt_tokens=.. hotword_tokens=.. suppress_tokens=[..] extra_suppress_tokens=..
//! seed=..` (`None` where unset), and every window logs the result it kept (`window at S s:
//! temperature=.. avg_logprob=.. compression_ratio=.. no_speech_prob=..`) or that it was skipped.

use crate::audio::mel::{HOP_LENGTH, N_FRAMES};
use crate::audio::{AudioFeatures, SAMPLE_RATE};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::output::{Segment, Transcript};

use super::clips::{self, SeekClip};
use super::decoding::{detect_language, DecodingOptions, DecodingResult, DecodingTask};
use super::hallucination::{self, Decision};
use super::longform::{
    clear_empty_segments, seek_after_word_times, single_timestamp_ending, split_segments, Policy, Verdict,
};
use super::{timing, Whisper};

pub use super::longform::{
    COMPRESSION_RATIO_THRESHOLD, INPUT_STRIDE, LOGPROB_THRESHOLD, NO_SPEECH_THRESHOLD, PROMPT_RESET_TEMPERATURE,
    TEMPERATURES, TIME_PRECISION,
};

#[derive(Clone, Debug)]
pub struct TranscribeOptions {
    pub temperatures: Vec<f32>,
    pub compression_ratio_threshold: Option<f64>,
    pub logprob_threshold: Option<f64>,
    pub no_speech_threshold: Option<f64>,
    pub condition_on_previous_text: bool,
    pub initial_prompt: Option<String>,
    pub word_timestamps: bool,
    /// `start,end,start,end,...` seconds of the spans to transcribe; an odd count runs to the end
    /// of the audio (transcribe.py `clip_timestamps`, default `[0]`: everything).
    pub clip_timestamps: Vec<f64>,
    /// With word timestamps, skip silences longer than this (seconds) around a likely
    /// hallucination (transcribe.py `hallucination_silence_threshold`, default None: off).
    pub hallucination_silence_threshold: Option<f64>,
    /// Per-window decoding options (language, task, beam_size, best_of, ...).
    pub decode: DecodingOptions,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        TranscribeOptions {
            temperatures: TEMPERATURES.to_vec(),
            compression_ratio_threshold: Some(COMPRESSION_RATIO_THRESHOLD),
            logprob_threshold: Some(LOGPROB_THRESHOLD),
            no_speech_threshold: Some(NO_SPEECH_THRESHOLD),
            condition_on_previous_text: true,
            initial_prompt: None,
            word_timestamps: false,
            clip_timestamps: vec![0.0],
            hallucination_silence_threshold: None,
            decode: DecodingOptions::default(),
        }
    }
}

fn invalid(what: String) -> Error {
    Error::Other(what)
}

impl TranscribeOptions {
    /// Refuses values the loop or the decoder cannot honour, naming the option; [`transcribe`]
    /// calls it before decoding anything.
    pub fn validate(&self) -> Result<()> {
        if self.temperatures.is_empty() {
            return Err(invalid("temperature: no temperatures to decode with".into()));
        }
        if let Some(t) = self.temperatures.iter().find(|t| !t.is_finite() || **t < 0.0) {
            return Err(invalid(format!("temperature {t}: expected a finite number >= 0")));
        }
        let thresholds = [
            ("compression_ratio_threshold", self.compression_ratio_threshold),
            ("logprob_threshold", self.logprob_threshold),
            ("no_speech_threshold", self.no_speech_threshold),
        ];
        if let Some((name, v)) = thresholds.iter().find_map(|(n, v)| v.filter(|v| !v.is_finite()).map(|v| (n, v))) {
            return Err(invalid(format!("{name} {v}: expected a finite number (or none to turn the gate off)")));
        }
        if let Some(t) = self.hallucination_silence_threshold {
            if !t.is_finite() || t < 0.0 {
                return Err(invalid(format!("hallucination_silence_threshold {t}: expected seconds >= 0 or none")));
            }
            if !self.word_timestamps {
                return Err(invalid("hallucination_silence_threshold needs word timestamps".into()));
            }
        }
        clips::validate_clip_timestamps(&self.clip_timestamps)?;
        let d = &self.decode;
        if d.beam_size == Some(0) {
            return Err(invalid("beam_size 0: expected at least 1".into()));
        }
        if d.best_of == Some(0) {
            return Err(invalid("best_of 0: expected at least 1".into()));
        }
        if let Some(p) = d.patience {
            // decoding.py BeamSearchDecoder: "Invalid beam size or patience" unless
            // round(beam_size * patience) > 0
            let beam = d.beam_size.unwrap_or(1);
            if !p.is_finite() || p <= 0.0 || (beam as f32 * p).round() < 1.0 {
                return Err(invalid(format!(
                    "patience {p}: expected a number > 0 with beam_size × patience >= 0.5 (beam_size {beam})"
                )));
            }
        }
        if let Some(a) = d.length_penalty.filter(|a| !(0.0..=1.0).contains(a)) {
            return Err(invalid(format!("length_penalty {a}: expected a value between 0 and 1 (or none)")));
        }
        Ok(())
    }
}

/// `Some(v)` as `v`, None as `None` (Python's repr of a missing option).
fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".into(), |v| v.to_string())
}

/// The one-line `DecodingOptions:` debug record of what the decoder receives (module docs).
pub fn describe_decoding_options(d: &DecodingOptions) -> String {
    format!(
        "DecodingOptions: temperature={} beam_size={} patience={} best_of={} length_penalty={} sample_len={} \
         prompt_tokens={} hotword_tokens={} suppress_tokens={:?} extra_suppress_tokens={} seed={}",
        d.temperature,
        opt(d.beam_size),
        opt(d.patience),
        opt(d.best_of),
        opt(d.length_penalty),
        opt(d.sample_len),
        d.prompt.len(),
        d.hotwords.len(),
        d.suppress_tokens,
        d.extra_suppress.len(),
        d.seed,
    )
}

/// Progress in mel frames: (done, total).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Decode one window, trying each temperature until the result passes the gates; returns the
/// result kept and the policy's verdict on it ([`Verdict::Skip`] or [`Verdict::Emit`]).
pub fn decode_with_fallback(
    model: &Whisper,
    features: &crate::backend::Tensor,
    o: &TranscribeOptions,
    prompt: &[u32],
    cancel: &Cancel,
) -> Result<(DecodingResult, Verdict)> {
    let policy = Policy::new(o);
    let mut attempt = 0;
    loop {
        let d = policy.decoding_options(attempt, prompt);
        tracing::debug!("{}", describe_decoding_options(&d));
        let result = DecodingTask::new(model, d)?.with_cancel(cancel).run(features)?;
        match policy.verdict(attempt, &result) {
            Verdict::Retry { attempt: next } => attempt = next,
            verdict => return Ok((result, verdict)),
        }
    }
}

/// Peak amplitude below which a window counts as digital silence (−80 dBFS): every sample under
/// its frames is below it.
pub const SILENCE_PEAK: f32 = 1e-4;

/// Transcribe 16 kHz mono audio of any length.
pub fn transcribe(model: &Whisper, audio: &[f32], o: &TranscribeOptions, progress: Progress<'_>) -> Result<Transcript> {
    let features = AudioFeatures::from_samples(audio, model.config.num_mel_bins)?;
    transcribe_features(model, &features, o, progress, &Cancel::new())
}

/// Transcribe from the features of a signal ([`AudioFeatures::from_file`] computes them while
/// decoding, so a file's samples are never held).
pub fn transcribe_features(
    model: &Whisper,
    audio: &AudioFeatures,
    o: &TranscribeOptions,
    progress: Progress<'_>,
    cancel: &Cancel,
) -> Result<Transcript> {
    o.validate()?;
    let tok = &model.tokenizer;
    let n_mels = model.config.num_mel_bins;
    let mel = &audio.mel;
    if mel.n_mels() != n_mels {
        return Err(Error::Other(format!(
            "transcribe: the log-mel has {} bins but the model expects {n_mels}",
            mel.n_mels()
        )));
    }
    // The mel holds openai's 30 s of padding "for slicing" past the content.
    let content_frames = mel.n_frames().saturating_sub(N_FRAMES);
    let content_duration = frames_to_seconds(content_frames);
    // mel[:, seek:seek+size] padded to N_FRAMES (pad_or_trim)
    let window = |seek: usize, size: usize| mel.window(seek, size);
    let mut options = o.clone();
    if options.decode.language.is_none() {
        options.decode.language = Some(if tok.multilingual {
            let features = model.encode(&window(0, content_frames.min(N_FRAMES)), 1)?;
            let probs = detect_language(model, &features)?;
            let (lang, p) = probs.first().cloned().unwrap_or(("en".into(), 1.0));
            tracing::info!("detected language: {lang} ({:.0}%)", p * 100.0);
            lang
        } else {
            "en".to_string()
        });
    }
    let language = options.decode.language.clone().unwrap_or_else(|| "en".into());
    if !tok.multilingual && language != "en" {
        return Err(Error::Other(format!(
            "language `{language}`: this model is English-only (use a multilingual model)"
        )));
    }
    // Validate the language and task before spending time on audio.
    tok.sot_sequence(Some(&language), options.decode.task)?;
    let seek_clips = clips::seek_clips(&options.clip_timestamps, content_frames);
    let report = |clip_idx: usize, seek: usize, progress: Progress<'_>| {
        let (done, total) = clips::progress(&seek_clips, clip_idx, seek);
        progress(done, total);
    };

    let mut all_tokens: Vec<u32> = Vec::new();
    let mut all_segments: Vec<Segment> = Vec::new();
    let mut prompt_reset_since = 0;
    if let Some(p) = &options.initial_prompt {
        all_tokens.extend(tok.encode(&format!(" {}", p.trim()))?);
    }
    let mut clip_idx = 0;
    let mut seek = seek_clips.first().map_or(0, |c: &SeekClip| c.0);
    let mut last_speech_timestamp = 0.0f64;
    while let Some(seek_clip_end) = clips::next_window(&seek_clips, &mut clip_idx, &mut seek) {
        cancel.check()?;
        let time_offset = frames_to_seconds(seek);
        let window_end_time = frames_to_seconds(seek + N_FRAMES);
        let segment_size = N_FRAMES.min(content_frames - seek).min(seek_clip_end - seek);
        let segment_duration = frames_to_seconds(segment_size);
        if audio.peaks.all_below(seek, segment_size, SILENCE_PEAK) {
            // Whisper hallucinates short phrases ("you") on pure silence and the no-speech gate
            // does not always catch them; a window without any signal has nothing to transcribe.
            tracing::debug!("window at {time_offset:.2} s skipped: digital silence");
            seek += segment_size;
            report(clip_idx, seek, progress);
            continue;
        }
        let features = model.encode(&window(seek, segment_size), 1)?;
        let prompt = all_tokens[prompt_reset_since..].to_vec();
        let (result, verdict) = decode_with_fallback(model, &features, &options, &prompt, cancel)?;
        if verdict == Verdict::Skip {
            tracing::debug!(
                "window at {time_offset:.2} s skipped as silence: no_speech_prob={:.3} avg_logprob={:.3}",
                result.no_speech_prob,
                result.avg_logprob
            );
            seek += segment_size; // "fast-forward to the next segment boundary"
            report(clip_idx, seek, progress);
            continue;
        }
        tracing::debug!(
            "window at {time_offset:.2} s: temperature={} avg_logprob={:.3} compression_ratio={:.3} no_speech_prob={:.3}",
            result.temperature,
            result.avg_logprob,
            result.compression_ratio,
            result.no_speech_prob
        );
        let previous_seek = seek;
        let (mut current, advance) = split_segments(tok, &result, time_offset, segment_size)?;
        seek += advance;
        if options.word_timestamps {
            let text_tokens: Vec<u32> = timing::segment_text_tokens(&current, tok.special.eot).concat();
            let alignment =
                model.word_alignment(&features, &text_tokens, &language, options.decode.task, segment_size)?;
            timing::add_word_timestamps(
                &mut current,
                alignment,
                tok.special.eot,
                time_offset,
                last_speech_timestamp,
                timing::PREPEND_PUNCTUATIONS,
                timing::APPEND_PUNCTUATIONS,
            );
            let single_ending = single_timestamp_ending(&result.tokens, tok.special.timestamp_begin);
            seek = seek_after_word_times(&current, time_offset, single_ending, seek);
            if let Some(threshold) = options.hallucination_silence_threshold {
                let w = hallucination::Window {
                    time_offset,
                    window_end_time,
                    segment_duration,
                    previous_seek,
                    segment_size,
                    content_frames,
                    content_duration,
                    single_timestamp_ending: single_ending,
                    last_speech_timestamp,
                };
                match hallucination::skip_silence_before_hallucinations(&current, &w, threshold, seek) {
                    Decision::Redo { seek: next } => {
                        tracing::debug!(
                            "window at {time_offset:.2} s: possible hallucination after silence; again from {:.2} s",
                            frames_to_seconds(next)
                        );
                        seek = next;
                        report(clip_idx, seek, progress);
                        continue;
                    }
                    Decision::Keep { seek: next, keep } => {
                        if keep < current.len() {
                            tracing::debug!(
                                "window at {time_offset:.2} s: {} segment(s) dropped as a possible hallucination",
                                current.len() - keep
                            );
                        }
                        seek = next;
                        current.truncate(keep);
                    }
                }
            }
            if let Some(end) = timing::last_word_end(&current) {
                last_speech_timestamp = end;
            }
        }
        clear_empty_segments(&mut current);
        all_tokens.extend(current.iter().flat_map(|s| s.tokens.iter().copied()));
        all_segments.extend(current);
        if Policy::new(&options).resets_prompt(&result) {
            prompt_reset_since = all_tokens.len();
        }
        report(clip_idx, seek, progress);
    }
    let mut t = Transcript { segments: all_segments, word_segments: Vec::new(), language, ..Default::default() };
    t.collect_word_segments();
    Ok(t)
}

/// Mel frames to seconds (`frames * HOP_LENGTH / SAMPLE_RATE`).
fn frames_to_seconds(frames: usize) -> f64 {
    frames as f64 * HOP_LENGTH as f64 / SAMPLE_RATE as f64
}
