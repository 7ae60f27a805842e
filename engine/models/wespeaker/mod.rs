//! WeSpeaker ResNet34 as pyannote.audio runs it (`pyannote/wespeaker-voxceleb-resnet34-LM`, the
//! speaker embedding of the 3.1 and community-1 diarization pipelines): 16 kHz waveforms → a
//! 256-d embedding per item, optionally weighted by a per-frame mask.
//!
//! - the front end: Kaldi fbank of `waveform · 2¹⁵`, 80 bins, 25/10 ms hamming, no dither, minus
//!   its mean over time ([`FbankOptions::wespeaker`]);
//! - `resnet`: `conv1` + 4 layers of 3, 4, 6, 3 `BasicBlock`s (widths m, 2m, 4m, 8m; layers 2–4
//!   halve frequency and time), batch norms folded into the convs at load time;
//! - `pooling`: the weights nearest-resampled to the ResNet's frames, weighted mean and unbiased
//!   std (`StatsPool`), then `seg_1`;
//! - `config`: widths read from the checkpoint's shapes; `checkpoint`: `.bin` or safetensors.
//!
//! Source: pyannote.audio 4.0.7 `models/embedding/wespeaker/__init__.py` (`BaseWeSpeakerResNet`,
//! `WeSpeakerResNet34`), `models/embedding/wespeaker/resnet.py` (`ResNet`, `BasicBlock`, `TSTP`;
//! `two_emb_layer=False`), `models/blocks/pooling.py` (`StatsPool`). Checked against it by
//! tests/wespeaker_reference.rs (a small random ResNet34, the real checkpoint being gated).
//!
//! The diarization stage embeds one window for each of its local speakers without running the
//! ResNet once per speaker: [`WeSpeakerResNet34::fbank`], [`WeSpeakerResNet34::frame_features`]
//! once, `dev.index_select` to repeat the features per speaker, then
//! [`WeSpeakerResNet34::pool`] with one mask per row — what pyannote's `forward` computes for
//! the same waveform repeated with each mask.
pub mod checkpoint;
pub mod config;
pub mod pooling;
pub mod resnet;

pub use config::WeSpeakerConfig;

use rayon::prelude::*;

use crate::audio::kaldi_fbank::{FbankComputer, FbankOptions};
use crate::backend::{Device, Tensor};
use crate::error::{Error, Result};
use crate::weights::WeightStore;

use pooling::Embedding;
use resnet::ResNet;

/// The fewest samples pyannote embeds with this model: `PyannoteAudioPretrainedSpeakerEmbedding
/// .min_num_samples` (pyannote.audio 4.0.7 `pipelines/speaker_verification.py`) binary-searches
/// the shortest random input the model accepts without raising, and finds 400 (one 25 ms fbank
/// frame; torchaudio's fbank asserts on anything shorter). Measured on `WeSpeakerResNet34()` by
/// tests/reference/make_wespeaker_reference.py (`min_num_samples` in its manifest).
pub const MIN_NUM_SAMPLES: usize = 400;

/// The sample rate the front end expects.
pub const SAMPLE_RATE: usize = 16000;

pub struct WeSpeakerResNet34 {
    pub config: WeSpeakerConfig,
    fbank: FbankComputer,
    resnet: ResNet,
    embedding: Embedding,
}

impl WeSpeakerResNet34 {
    /// Build the model from pyannote's state dict (`resnet.*`) or a bare WeSpeaker `ResNet`'s,
    /// its widths read from the tensors' shapes ([`WeSpeakerConfig::from_store`]). Errors name
    /// the file and the tensor.
    pub fn load(dev: &Device, store: &dyn WeightStore) -> Result<Self> {
        let config = WeSpeakerConfig::from_store(store)?;
        let opts = FbankOptions { num_mel_bins: config.feat_dim, ..FbankOptions::wespeaker() };
        let fbank = FbankComputer::new(&opts)?;
        let resnet = ResNet::load(dev, store, &config)?;
        let embedding = Embedding::load(dev, store, &config)?;
        Ok(WeSpeakerResNet34 { config, fbank, resnet, embedding })
    }

    /// `compute_fbank`: `waveforms` (B mono 16 kHz items of one length, in [-1, 1]) →
    /// `[B, T, feat_dim]`, each item's mean over time removed. Fails on items shorter than
    /// [`MIN_NUM_SAMPLES`] or of different lengths.
    pub fn fbank(&self, dev: &Device, waveforms: &[&[f32]]) -> Result<Tensor> {
        let n = waveforms.first().map_or(0, |w| w.len());
        if waveforms.is_empty() || waveforms.iter().any(|w| w.len() != n) {
            return Err(Error::shape(
                "wespeaker fbank",
                format!(
                    "waveforms of lengths {:?}: expected a batch of ≥ 1 items of one length",
                    waveforms.iter().map(|w| w.len()).collect::<Vec<_>>()
                ),
            ));
        }
        let rows: Vec<(Vec<f32>, usize)> =
            waveforms.par_iter().map(|w| self.fbank.compute(w)).collect::<Result<_>>()?;
        let frames = rows[0].1;
        let data: Vec<f32> = rows.into_iter().flat_map(|(f, _)| f).collect();
        dev.upload(&data, &[waveforms.len(), frames, self.config.feat_dim])
    }

    /// `fbank[B, T, feat_dim]` → the pre-pooling features `[B, 8m · feat_dim/8, T']`
    /// (`ResNet.forward_frames`, frequency folded into channels as `TSTP` does),
    /// `T' = config.num_frames(T)`.
    pub fn frame_features(&self, dev: &Device, fbank: &Tensor) -> Result<Tensor> {
        let (_, t, f) = fbank.dims3("wespeaker frame_features")?;
        if f != self.config.feat_dim || t == 0 {
            return Err(Error::shape(
                "wespeaker frame_features",
                format!("fbank {:?}: expected [B, T ≥ 1, {}]", fbank.shape(), self.config.feat_dim),
            ));
        }
        self.resnet.forward(dev, fbank)
    }

    /// `features[B, C, T']` (from [`Self::frame_features`], rows possibly repeated) and optional
    /// `weights[B, mask_frames]` (row-major, any `mask_frames ≥ 1`: nearest-resampled to `T'`) →
    /// `[B, embed_dim]`. Without weights the std is torch's unbiased one (NaN for `T' = 1`, as in
    /// pyannote); all-zero weights give `seg_1`'s bias.
    pub fn pool(&self, dev: &Device, features: &Tensor, weights: Option<&[f32]>) -> Result<Tensor> {
        let (b, c, t) = features.dims3("wespeaker pool")?;
        if c != self.config.pooled_channels() {
            return Err(Error::shape(
                "wespeaker pool",
                format!("features {:?}: expected [B, {}, T']", features.shape(), self.config.pooled_channels()),
            ));
        }
        let weights = match weights {
            Some(w) => Some(dev.upload(&pooling::interpolate_weights(w, b, t)?, &[b, t])?),
            None => None,
        };
        self.embedding.forward(dev, features, weights.as_ref())
    }

    /// pyannote's `forward(waveforms, weights)`: fbank, ResNet, weighted pooling, `seg_1` →
    /// `[B, embed_dim]`.
    pub fn embed(&self, dev: &Device, waveforms: &[&[f32]], weights: Option<&[f32]>) -> Result<Tensor> {
        let fbank = self.fbank(dev, waveforms)?;
        let features = self.frame_features(dev, &fbank)?;
        self.pool(dev, &features, weights)
    }
}
