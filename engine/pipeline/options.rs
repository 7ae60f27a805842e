//! One options type for a whole run, its parts named after WhisperX's (`asr_options`,
//! `vad_options`, `batch_size`, alignment, diarization; whisperx `asr.py`, `__main__.py`), with
//! WhisperX's defaults. The CLI and the worker both start from [`PipelineOptions::default`] and
//! set what their users gave; the translation of WhisperX's options into the decoder's exists
//! only here.

use std::path::PathBuf;

use crate::audio::AudioOptions;
use crate::error::{Error, Result};
use crate::models::whisper::decoding::DecodingOptions;
use crate::models::whisper::transcribe::TranscribeOptions;

use super::batched::BATCH_SIZE;
use super::speech_chunks::{CHUNK_SIZE, MIN_CHUNK_SIZE, VAD_OFFSET, VAD_ONSET};

/// whisperx `default_asr_options`: beam size, samples at temperature > 0, patience, length
/// penalty.
pub const BEAM_SIZE: usize = 5;
pub const BEST_OF: usize = 5;
pub const PATIENCE: f32 = 1.0;
pub const LENGTH_PENALTY: f32 = 1.0;

/// How speech is found before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VadMethod {
    /// WhisperX's default: pyannote segmentation, chunks decoded in batches.
    Pyannote,
    /// No VAD: openai's sequential long-form decoding of the whole file (a Scribe extension).
    None,
}

/// whisperx `vad_options`, and the step of the VAD's windows (a Scribe extension).
#[derive(Clone, Debug, PartialEq)]
pub struct VadOptions {
    pub method: VadMethod,
    pub vad_onset: f32,
    pub vad_offset: f32,
    /// Longest chunk, seconds.
    pub chunk_size: f64,
    /// Seconds between the VAD's windows; None: pyannote's (WhisperX's exact scores).
    pub step: Option<f64>,
    /// Score the windows coarse to fine (`vad_refine`): the same regions from fewer windows
    /// where the recording holds long stretches without speech. False: every window, as
    /// WhisperX does.
    pub coarse_to_fine: bool,
}

impl Default for VadOptions {
    fn default() -> Self {
        VadOptions {
            method: VadMethod::Pyannote,
            vad_onset: VAD_ONSET,
            vad_offset: VAD_OFFSET,
            chunk_size: CHUNK_SIZE,
            step: None,
            coarse_to_fine: true,
        }
    }
}

/// whisperx `align` options (`--align_model`, `--interpolate_method`, `--return_char_alignments`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlignOptions {
    /// Word times by wav2vec2 alignment (the worker's `align_output`).
    pub align_output: bool,
    pub align_model: Option<String>,
    pub interpolate_method: crate::align::Interpolate,
    pub return_char_alignments: bool,
    /// `ctc-viterbi` (default: true CTC Viterbi, every word timed) or `whisperx-compat`
    /// (WhisperX's trellis, result for result).
    pub mode: crate::align::Mode,
    /// Compute Whisper's cross-attention (DTW) word times during transcription, to keep when no
    /// alignment model can be had (the worker: `align_output` always gives word times).
    pub dtw_fallback: bool,
}

/// whisperx diarization options.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiarizeOptions {
    pub diarize: bool,
    pub min_speakers: Option<usize>,
    pub max_speakers: Option<usize>,
    pub diarize_model: Option<String>,
    pub speaker_embeddings: bool,
    /// The clustering's distance threshold, when not the model's own.
    pub diarize_threshold: Option<f64>,
    /// Find the speakers after the transcription, not alongside it (where the backend runs
    /// stages alongside each other: the CPU). The result is the same; this only takes longer.
    pub after_transcription: bool,
}

/// One enrolled voice: a name and where its recording is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpeakerSample {
    pub name: String,
    /// The local file.
    pub source: String,
    /// What identifies its content for the voiceprint cache (the worker: the URL without its
    /// query and the server's ETag or length); None: `source`.
    pub key: Option<String>,
    /// How warnings name it (the worker: the redacted URL); None: `source`.
    pub display: Option<String>,
}

/// Speaker verification (the worker's `speaker_verification` and `speaker_samples`, the CLI's
/// `--speaker_sample`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyOptions {
    pub speaker_verification: bool,
    pub speaker_samples: Vec<SpeakerSample>,
    /// `--speaker_model` / `SPEAKER_MODEL`: None (or "diarization"): the diarizer's own model.
    pub speaker_model: Option<String>,
    /// The naming threshold (cosine), when not the model's own.
    pub speaker_threshold: Option<f64>,
}

impl VerifyOptions {
    /// Whether the run asks for speaker names.
    pub fn wanted(&self) -> bool {
        self.speaker_verification || !self.speaker_samples.is_empty()
    }
}

/// Everything a run needs besides the models.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// whisperx `asr_options` (decoding, fallback gates, prompt, DTW word timestamps).
    pub asr_options: TranscribeOptions,
    pub vad_options: VadOptions,
    /// Chunks encoded and decoded together.
    pub batch_size: usize,
    pub align_options: AlignOptions,
    pub diarize_options: DiarizeOptions,
    pub verify_options: VerifyOptions,
    /// Where the decoded audio is kept, and the longest accepted.
    pub audio: AudioOptions,
}

/// whisperx `default_asr_options` as the decoder takes them: beam search at temperature 0,
/// `best_of` samples above it, WhisperX's fallback temperatures and gates, no conditioning on
/// previous text.
pub fn whisperx_asr_options() -> TranscribeOptions {
    let mut o = TranscribeOptions {
        condition_on_previous_text: false,
        decode: DecodingOptions { best_of: Some(BEST_OF), length_penalty: Some(LENGTH_PENALTY), ..Default::default() },
        ..Default::default()
    };
    set_beam_size(&mut o, BEAM_SIZE, PATIENCE);
    o
}

/// `beam_size` as WhisperX takes it: above 1 a beam search with `patience`; 1 is greedy
/// decoding (the decoder then has no beam and no patience).
pub fn set_beam_size(o: &mut TranscribeOptions, beam_size: usize, patience: f32) {
    o.decode.beam_size = (beam_size > 1).then_some(beam_size);
    o.decode.patience = (beam_size > 1).then_some(patience);
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            asr_options: whisperx_asr_options(),
            vad_options: VadOptions::default(),
            batch_size: BATCH_SIZE,
            align_options: AlignOptions::default(),
            diarize_options: DiarizeOptions::default(),
            verify_options: VerifyOptions::default(),
            audio: AudioOptions::default(),
        }
    }
}

fn invalid(what: String) -> Error {
    Error::Other(what)
}

impl PipelineOptions {
    /// Refuse values a stage cannot honour, naming the option.
    pub fn validate(&self) -> Result<()> {
        self.asr_options.validate()?;
        let v = &self.vad_options;
        if v.method == VadMethod::Pyannote {
            if !(v.chunk_size >= MIN_CHUNK_SIZE && v.chunk_size <= CHUNK_SIZE) {
                return Err(invalid(format!(
                    "chunk_size {}: expected seconds from {MIN_CHUNK_SIZE} to {CHUNK_SIZE}",
                    v.chunk_size
                )));
            }
            if !(0.0..=1.0).contains(&v.vad_onset) || !(0.0..=1.0).contains(&v.vad_offset) {
                return Err(invalid("vad_onset / vad_offset: expected probabilities in [0, 1]".into()));
            }
            if self.batch_size == 0 {
                return Err(invalid("batch_size 0: expected at least 1".into()));
            }
        }
        for (name, n) in
            [("min_speakers", self.diarize_options.min_speakers), ("max_speakers", self.diarize_options.max_speakers)]
        {
            if n == Some(0) {
                return Err(invalid(format!("{name} 0: expected at least 1")));
            }
        }
        if let Some(t) = self.diarize_options.diarize_threshold.filter(|t| !(t.is_finite() && *t > 0.0 && *t < 2.0)) {
            return Err(invalid(format!("diarize_threshold {t}: expected a cosine distance in (0, 2)")));
        }
        if let (Some(lo), Some(hi)) = (self.diarize_options.min_speakers, self.diarize_options.max_speakers) {
            if lo > hi {
                return Err(invalid(format!("min_speakers {lo} is more than max_speakers {hi}")));
            }
        }
        Ok(())
    }

    /// Where long recordings are kept while they are worked on.
    pub fn with_spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.audio.spill_dir = Some(dir.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_whisperxs() {
        let o = PipelineOptions::default();
        let d = &o.asr_options.decode;
        assert_eq!((d.beam_size, d.patience, d.best_of, d.length_penalty), (Some(5), Some(1.0), Some(5), Some(1.0)));
        assert_eq!(o.asr_options.temperatures, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert!(!o.asr_options.condition_on_previous_text);
        assert_eq!((o.vad_options.vad_onset, o.vad_options.vad_offset, o.vad_options.chunk_size), (0.5, 0.363, 30.0));
        assert_eq!(o.batch_size, 8);
        o.validate().unwrap();
    }

    #[test]
    fn a_beam_of_one_is_greedy_and_bad_values_are_named() {
        let mut o = PipelineOptions::default();
        set_beam_size(&mut o.asr_options, 1, 1.0);
        assert_eq!((o.asr_options.decode.beam_size, o.asr_options.decode.patience), (None, None));
        o.vad_options.chunk_size = 0.5;
        assert!(o.validate().unwrap_err().to_string().contains("chunk_size 0.5"));
        let mut o = PipelineOptions::default();
        o.diarize_options.min_speakers = Some(3);
        o.diarize_options.max_speakers = Some(2);
        assert!(o.validate().unwrap_err().to_string().contains("min_speakers 3"));
    }
}
