//! The local speakers of a whole recording, as pyannote's speaker diarization pipeline (3.1 and
//! community-1, pyannote.audio 4.0 `pipelines/speaker_diarization.py` `apply`) computes them
//! before any embedding, with a powerset segmentation model (segmentation-3.0):
//! 1. windows of the model's duration (10 s) every `SEGMENTATION_STEP` of it (1 s), the last one
//!    zero-padded when the windows do not end on the last sample (`Inference.slide` with
//!    `skip_aggregation=True`, the windows of [`super::sliding_window`]);
//! 2. each window's frames converted from powerset classes to active speakers, hard (argmax:
//!    [`super::powerset::Powerset::to_multilabel_hard`]): `(chunks, 589, 3)` zeros and ones;
//! 3. the number of speakers at each frame of the recording (`speaker_count` with
//!    `warm_up=(0, 0)` and the model's receptive field as the frame grid): the active speakers
//!    of each window's frames, overlap-added with equal weights, averaged, rounded half to even.

use crate::audio::SampleSource;
use crate::backend::Device;
use crate::error::{Error, Result};

use super::powerset::Powerset;
use super::receptive_field::{round_half_even, FrameWindow};
use super::sliding_window::{window_starts, Aggregator};
use super::PyanNet;

/// The pipeline's `segmentation_step`: windows a tenth of their duration apart.
pub const SEGMENTATION_STEP: f64 = 0.1;
/// The pipeline's `segmentation_batch_size`.
pub const SEGMENTATION_BATCH_SIZE: usize = 32;

/// Active speakers per (window, frame, local speaker).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalSpeakers {
    /// Window length and step, seconds.
    pub chunk_duration: f64,
    pub chunk_step: f64,
    pub chunks: usize,
    pub frames_per_chunk: usize,
    /// Local speakers per window (segmentation-3.0: 3).
    pub speakers: usize,
    /// `[chunks, frames_per_chunk, speakers]`, 1 where the speaker is active.
    pub binarized: Vec<u8>,
    /// The model's output frames in a window (its receptive field).
    pub frames: FrameWindow,
}

impl LocalSpeakers {
    /// Window `c`'s `[frames_per_chunk, speakers]`.
    pub fn chunk(&self, c: usize) -> &[u8] {
        let n = self.frames_per_chunk * self.speakers;
        &self.binarized[c * n..(c + 1) * n]
    }

    /// pyannote's `speaker_count(binarized, model.receptive_field, warm_up=(0, 0))`: the number
    /// of speakers at each frame of the recording's grid (frame `i` at `frames.start +
    /// i·frames.step`), up to the last window's end.
    pub fn speaker_count(&self) -> Vec<u8> {
        let mut aggregator = Aggregator::uniform(self.chunk_duration, self.chunk_step, self.frames);
        for c in 0..self.chunks {
            let active: Vec<f32> =
                self.chunk(c).chunks_exact(self.speakers).map(|f| f.iter().map(|&a| a as f32).sum()).collect();
            aggregator.add(&active);
        }
        aggregator
            .finish(None)
            .into_iter()
            .map(|mean| round_half_even(mean as f64).clamp(0, u8::MAX as i64) as u8)
            .collect()
    }
}

/// The local speakers of 16 kHz `audio` with a powerset segmentation model, `batch_size` windows
/// per forward (pyannote's 32; it moves the log-probabilities only in their last bits: a batch's
/// windows share one filter-bank pass, [`PyanNet::forward_windows`]). The samples are read a
/// batch's stretch at a time (31 s + a window for 32 windows 1 s apart), so a long recording held
/// in the pipeline's audio store is never copied whole.
pub fn local_speakers(
    model: &PyanNet,
    dev: &Device,
    audio: &mut dyn SampleSource,
    batch_size: usize,
) -> Result<LocalSpeakers> {
    let powerset: Powerset = model.config.powerset()?.ok_or_else(|| {
        Error::Other("diarization needs a powerset segmentation model (segmentation-3.0); this one has none".into())
    })?;
    let window = model.config.window_samples();
    let step_seconds = SEGMENTATION_STEP * model.config.duration;
    let step = (step_seconds * model.config.sample_rate as f64).round() as usize;
    let (starts, _) = window_starts(audio.len(), window, step);
    let frames_per_chunk = model.num_frames(window);
    let speakers = powerset.classes;
    let mut binarized = Vec::with_capacity(starts.len() * frames_per_chunk * speakers);
    for batch in starts.chunks(batch_size.max(1)) {
        let (first, last) = (batch[0], batch[batch.len() - 1]);
        let stretch = audio.samples(first, last + window)?;
        let log_probs = dev.download(&model.forward_windows(dev, &stretch, batch.len(), step)?)?;
        let speakers_of = powerset.to_multilabel_hard(&log_probs)?;
        binarized.extend(speakers_of.iter().map(|&a| a as u8));
    }
    Ok(LocalSpeakers {
        chunk_duration: model.config.duration,
        chunk_step: step_seconds,
        chunks: starts.len(),
        frames_per_chunk,
        speakers,
        binarized,
        frames: model.frames(),
    })
}
