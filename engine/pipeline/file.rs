//! One file through WhisperX's default path: voice-activity scores computed while the file is
//! decoded, speech chunks, then the chunks transcribed in batches from a second decoding pass.
//! The samples are never held whole: the CLI and the worker both run files through here.

use std::path::Path;
use std::time::Instant;

use crate::audio::{probe, stream_audio, DecodedFile};
use crate::error::{Error, Result};
use crate::models::pyannote::sliding_window::{SpeechScorer, BATCH_SIZE as VAD_WINDOWS_PER_BATCH};
use crate::models::pyannote::PyanNet;
use crate::models::whisper::transcribe::TranscribeOptions;
use crate::models::whisper::Whisper;
use crate::output::Transcript;

use super::batched::{transcribe_chunks, BatchStats, BATCH_SIZE};
use super::speech_chunks::{speech_chunks, CHUNK_SIZE, VAD_OFFSET, VAD_ONSET};

/// The voice-activity and batching settings (whisperx's `vad_options` and `batch_size`).
#[derive(Clone, Debug, PartialEq)]
pub struct VadSettings {
    pub onset: f32,
    pub offset: f32,
    /// Longest chunk, seconds.
    pub chunk_size: f64,
    /// Seconds between VAD windows; None: pyannote's (exact WhisperX scores).
    pub step: Option<f64>,
    pub batch_size: usize,
    /// Longer audio is refused as soon as the decoder passes this many seconds.
    pub max_seconds: Option<f64>,
}

impl Default for VadSettings {
    fn default() -> Self {
        VadSettings {
            onset: VAD_ONSET,
            offset: VAD_OFFSET,
            chunk_size: CHUNK_SIZE,
            step: None,
            batch_size: BATCH_SIZE,
            max_seconds: None,
        }
    }
}

/// Where a file's transcription is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FileProgress {
    /// Voice activity scored up to this many seconds of audio.
    VoiceActivity { seconds: f64 },
    /// Chunks transcribed of those known so far (tails decoded again add to the total).
    Chunks { done: usize, total: usize },
}

/// A file's transcript and what it took.
#[derive(Clone, Debug)]
pub struct FileTranscript {
    pub transcript: Transcript,
    /// Length of the audio, seconds.
    pub duration: f64,
    pub chunks: usize,
    /// Seconds of detected speech.
    pub speech: f64,
    /// Wall time of the voice-activity pass and of the transcription, seconds.
    pub vad_seconds: f64,
    pub transcribe_seconds: f64,
    pub stats: BatchStats,
    /// Damage the audio survived (truncated, skipped packets), for the user.
    pub warnings: Vec<String>,
}

/// Transcribe `path` through VAD chunks and batched decoding.
pub fn transcribe_file(
    model: &Whisper,
    vad: &PyanNet,
    path: &Path,
    options: &TranscribeOptions,
    settings: &VadSettings,
    progress: &mut dyn FnMut(FileProgress),
) -> Result<FileTranscript> {
    // A header that declares a length over the limit is refused before any decoding.
    let info = probe(path)?;
    if let (Some(max), Some(declared)) = (settings.max_seconds, info.duration()) {
        if declared > max {
            return Err(Error::audio(path, format!("audio of {declared:.0} s is longer than the {max} s allowed")));
        }
    }
    // Pass 1: voice activity, scored as the file is decoded; only a batch of windows is held.
    let started = Instant::now();
    let mut scorer = SpeechScorer::new(vad, &model.device, VAD_WINDOWS_PER_BATCH, settings.step)?;
    let mut failed = None;
    let decoded = stream_audio(path, &mut |samples| {
        if failed.is_none() {
            let before = scorer.windows_done();
            failed = scorer.push(samples).err();
            if let Some(max) = settings.max_seconds.filter(|&m| scorer.seconds() > m) {
                failed = Some(Error::audio(path, format!("audio longer than the {max} s allowed")));
            }
            if scorer.windows_done() != before {
                progress(FileProgress::VoiceActivity { seconds: scorer.seconds() });
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let num_samples = scorer.samples();
    let duration = scorer.seconds();
    let scores = scorer.finish()?;
    let chunks = speech_chunks(&scores.scores, &scores.times(), settings.onset, settings.offset, settings.chunk_size);
    let speech: f64 = chunks.iter().flat_map(|c| c.regions.iter()).map(|r| r.end - r.start).sum();
    let vad_seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        "{}: {} chunks, {speech:.1} s of speech in {duration:.1} s (VAD {vad_seconds:.2} s)",
        path.display(),
        chunks.len(),
    );

    // Pass 2: the file decoded again, each batch's chunks read as the batch comes up.
    let started = Instant::now();
    let mut audio = DecodedFile::open(path, num_samples)?;
    let mut stats = BatchStats::default();
    let transcript = transcribe_chunks(
        model,
        &mut audio,
        &chunks,
        options,
        settings.batch_size,
        &mut |done, total| progress(FileProgress::Chunks { done, total }),
        &mut stats,
    )?;
    tracing::debug!(
        "batched: {} encoder calls, {} decoding batches, {} chunks silent",
        stats.encoder_calls,
        stats.decoder_calls,
        stats.silent_chunks
    );
    Ok(FileTranscript {
        transcript,
        duration,
        chunks: chunks.len(),
        speech,
        vad_seconds,
        transcribe_seconds: started.elapsed().as_secs_f64(),
        stats,
        warnings: decoded.warnings.iter().map(|w| format!("audio: {w}")).collect(),
    })
}
