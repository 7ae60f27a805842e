//! Stage 4, word times: wav2vec2 CTC alignment (WhisperX's `align`, `align_output`). The
//! language's alignment model (or `align_model`) is found and loaded on first use
//! ([`AlignModels`](super::align_models::AlignModels)), each segment's text is aligned to its
//! audio ([`crate::align::align`]) and the transcript's segments and words are replaced by the
//! aligned ones. Whisper's cross-attention (DTW) word times, computed during transcription, stay
//! when alignment cannot run (no model for the language, a model that cannot be had or loaded):
//! the result then says so in a warning; the job never fails for it.

use crate::align::{align, AlignConfig, SentenceSplitter};
use crate::audio::Audio;
use crate::cancel::Cancel;
use crate::error::{Error, Result};

use super::align_models::{ModelEmissions, WholeText};
use super::progress::{Progress, Stage, Unit};
use super::runner::{FileTranscript, Outcome, Pipeline};

/// What the warning adds when alignment could not run and DTW word times were computed.
pub const DTW_FALLBACK: &str = "word times come from Whisper's cross-attention (DTW)";
/// … and when they were not.
pub const NO_WORD_TIMES: &str = "no word times";

pub fn run(
    p: &Pipeline,
    file: &mut FileTranscript,
    audio: &Audio,
    cancel: &Cancel,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome> {
    let o = &p.options().align_options;
    if !o.align_output || file.transcript.segments.is_empty() {
        return Ok(Outcome::Skipped);
    }
    let fallback = if p.options().asr_options.word_timestamps { DTW_FALLBACK } else { NO_WORD_TIMES };
    let language = file.transcript.language.clone();
    let device = &p.models().whisper.device;
    let models = &p.models().align;
    let aligner = match models.get(device, &language, o.align_model.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            file.warnings.push(format!("align_output: {e}; {fallback}"));
            return Ok(Outcome::Skipped);
        }
    };
    let punkt = models.punkt(&language);
    let splitter: &dyn SentenceSplitter = match &punkt {
        Ok(punkt) => punkt.as_ref(),
        Err(e) => {
            file.warnings
                .push(format!("align_output: no sentence model ({e}); each segment is aligned as one sentence"));
            &WholeText
        }
    };
    let interpolate = o.interpolate_method;
    let speech = file
        .chunks
        .as_ref()
        .map(|chunks| chunks.iter().flat_map(|c| c.regions.iter().map(|r| (r.start, r.end))).collect::<Vec<_>>());
    let cfg = AlignConfig {
        mode: o.mode,
        interpolate,
        return_char_alignments: o.return_char_alignments,
        language: language.clone(),
        audio_seconds: audio.duration(),
        speech,
    };
    let mut source = ModelEmissions { aligner: &aligner, device, audio, cancel };
    let mut report = |done: usize, total: usize| {
        progress(Progress { stage: Stage::WordTimes, done: done as f64, total: total as f64, unit: Unit::Segments })
    };
    let aligned =
        match align(&file.transcript.segments, &aligner.dictionary, &mut source, splitter, &cfg, cancel, &mut report) {
            Ok(a) => a,
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => {
                file.warnings.push(format!("align_output: alignment with {} failed ({e}); {fallback}", aligner.name));
                return Ok(Outcome::Skipped);
            }
        };
    tracing::info!(
        "aligned {} segments with {}: {} sentences, {} words",
        file.transcript.segments.len(),
        aligner.name,
        aligned.segments.len(),
        aligned.word_segments.len()
    );
    file.transcript.segments = aligned.segments;
    file.transcript.word_segments = aligned.word_segments;
    Ok(Outcome::Ran)
}
