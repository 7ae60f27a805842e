//! SpeechBrain's ECAPA-TDNN speaker embedding (`speechbrain/spkrec-ecapa-voxceleb`, the model
//! of SpeechBrain's `SpeakerRecognition.verify_batch`): 16 kHz waveforms → one embedding each,
//! as SpeechBrain's pretrained interface computes it (`EncoderClassifier.encode_batch(wavs,
//! wav_lens, normalize=False)`).
//!
//! - `config` / `hyperparams`: options read from the model directory's `hyperparams.yaml`
//!   (`compute_features`, `mean_var_norm`, `embedding_model`), SpeechBrain's defaults otherwise;
//! - `fbank`: the front end (STFT, SpeechBrain's own triangular mel filterbank, dB with an 80 dB
//!   range) and the sentence mean normalisation, on the host;
//! - `lengths`: relative lengths (`wav_lens`) and the frames they keep;
//! - `tdnn`: "same" reflect-padded convs and `TDNNBlock` (conv → ReLU → batch norm);
//! - `res2net`: `SERes2NetBlock` (Res2Net, squeeze-excitation with a masked mean);
//! - `pooling`: the frame mask and attentive statistics pooling (global context, masked);
//! - `network`: the whole `ECAPA_TDNN.forward`; `checkpoint`: `embedding_model.ckpt` or
//!   `model.safetensors`.
//!
//! A padded batch follows SpeechBrain's semantics: items are zero-padded to the longest, and the
//! relative lengths mask the mean normalisation, the SE means and the pooling. The convolutions
//! still see the padding near an item's end (and an item may keep one frame more or fewer than
//! it has alone), so SpeechBrain's embedding of a padded item is not the item's embedding alone
//! (by ~5e-2 on the small reference model); a batch of equal lengths is exactly the items one by
//! one. Verification embeds each utterance alone ([`EcapaTdnn::embed_utterance`], SpeechBrain's
//! `verify_files`).
//!
//! Source: speechbrain 1.1.2 (`lobes/features.py`, `processing/features.py`,
//! `lobes/models/ECAPA_TDNN.py`, `nnet/CNN.py`, `nnet/normalization.py`, `inference/speaker.py`,
//! `inference/classifiers.py`). Checked against it by tests/ecapa_reference.rs (small random
//! models in the published layout, the real checkpoint not being used).
pub mod checkpoint;
pub mod config;
pub mod fbank;
pub mod hyperparams;
pub mod lengths;
pub mod network;
pub mod pooling;
pub mod res2net;
pub mod tdnn;

pub use config::{EcapaConfig, FbankConfig};

use std::path::Path;

use rayon::prelude::*;

use crate::backend::{Device, Tensor};
use crate::error::{Error, Result};
use crate::verify::voice::VoiceEmbedding;
use crate::weights::WeightStore;

use fbank::Fbank;
use network::Network;
use pooling::FrameMask;

/// What verification results and logs call the model.
pub const NAME: &str = "ECAPA-TDNN";

/// A padded batch's mean-normalised features, on the host.
pub struct Features {
    /// Row-major `[batch, frames, n_mels]`.
    pub data: Vec<f32>,
    pub batch: usize,
    pub frames: usize,
    pub n_mels: usize,
    /// Each item's length relative to the longest (`wav_lens`).
    pub lengths: Vec<f32>,
}

pub struct EcapaTdnn {
    pub config: EcapaConfig,
    fbank: Fbank,
    network: Network,
}

impl EcapaTdnn {
    /// A SpeechBrain model directory: `hyperparams.yaml` and `model.safetensors` (preferred) or
    /// `embedding_model.ckpt`. Errors name the file and the field or tensor.
    pub fn load(dev: &Device, dir: &Path) -> Result<Self> {
        let config = EcapaConfig::from_dir(dir)?;
        let store = checkpoint::open(dir)?;
        Self::new(dev, config, store.as_ref())
    }

    /// The model of `config` with the weights of `store`, every tensor's shape checked.
    pub fn new(dev: &Device, config: EcapaConfig, store: &dyn WeightStore) -> Result<Self> {
        let network = Network::load(dev, store, &config)?;
        Ok(EcapaTdnn { fbank: Fbank::new(&config.fbank), config, network })
    }

    /// The fewest samples embedded ([`EcapaConfig::min_num_samples`]).
    pub fn min_num_samples(&self) -> usize {
        self.config.min_num_samples()
    }

    /// `compute_features` then `mean_var_norm` of `waveforms` (16 kHz mono, zero-padded to the
    /// longest). Fails on an empty batch or an item shorter than [`Self::min_num_samples`].
    pub fn features(&self, waveforms: &[&[f32]]) -> Result<Features> {
        let min = self.min_num_samples();
        if waveforms.is_empty() {
            return Err(Error::Other(format!("{NAME}: no waveforms to embed")));
        }
        if let Some((i, w)) = waveforms.iter().enumerate().find(|(_, w)| w.len() < min) {
            return Err(Error::Other(format!(
                "{NAME}: waveform {i} has {} samples, too few to embed (at least {min}: the widest \
                 conv reflects {} frames)",
                w.len(),
                self.config.max_padding()
            )));
        }
        let lens: Vec<usize> = waveforms.iter().map(|w| w.len()).collect();
        let longest = lens.iter().copied().max().unwrap_or(0);
        let lengths = lengths::relative_lengths(&lens);
        let (frames, n_mels) = (self.config.fbank.frames(longest), self.config.fbank.n_mels);
        let rows: Vec<Vec<f32>> = waveforms
            .par_iter()
            .zip(&lengths)
            .map(|(w, &rel)| {
                let (mut feats, f) = if w.len() == longest {
                    self.fbank.compute(w)?
                } else {
                    let mut padded = w.to_vec();
                    padded.resize(longest, 0.0);
                    self.fbank.compute(&padded)?
                };
                debug_assert_eq!(f, frames);
                fbank::subtract_sentence_mean(&mut feats, n_mels, lengths::norm_frames(rel, frames));
                Ok(feats)
            })
            .collect::<Result<_>>()?;
        Ok(Features { data: rows.concat(), batch: waveforms.len(), frames, n_mels, lengths })
    }

    /// The embeddings of `features` ([`Self::features`]), `[batch, lin_neurons]`.
    pub fn embed_features(&self, dev: &Device, features: &Features) -> Result<Tensor> {
        let Features { data, batch, frames, n_mels, lengths } = features;
        if *n_mels != self.config.input_size || data.len() != batch * frames * n_mels || lengths.len() != *batch {
            return Err(Error::shape(
                "ecapa embed",
                format!(
                    "{} values for {batch} × {frames} × {n_mels} features with {} lengths; the model takes {} mel bins",
                    data.len(),
                    lengths.len(),
                    self.config.input_size
                ),
            ));
        }
        // Channels first, as `ECAPA_TDNN.forward` transposes them.
        let mut transposed = vec![0.0f32; data.len()];
        for (b, item) in data.chunks_exact(frames * n_mels).enumerate() {
            let out = &mut transposed[b * frames * n_mels..(b + 1) * frames * n_mels];
            for (t, row) in item.chunks_exact(*n_mels).enumerate() {
                for (m, &v) in row.iter().enumerate() {
                    out[m * frames + t] = v;
                }
            }
        }
        let x = dev.upload(&transposed, &[*batch, *n_mels, *frames])?;
        let valid: Vec<usize> = lengths.iter().map(|&rel| lengths::mask_frames(rel, *frames).max(1)).collect();
        let mask = FrameMask::new(dev, &valid, *frames)?;
        self.network.forward(dev, &x, &mask)
    }

    /// `encode_batch(wavs, wav_lens)` of `waveforms` zero-padded to the longest, `wav_lens` their
    /// relative lengths: `[batch, lin_neurons]`. See the module notes on padded batches.
    pub fn embed(&self, dev: &Device, waveforms: &[&[f32]]) -> Result<Tensor> {
        self.embed_features(dev, &self.features(waveforms)?)
    }
}

impl VoiceEmbedding for EcapaTdnn {
    fn name(&self) -> &str {
        NAME
    }

    fn dimension(&self) -> usize {
        self.config.lin_neurons
    }

    /// 640 samples (40 ms) for the published model: 5 frames, the fewest its widest conv
    /// (kernel 3, dilation 4, reflect padding of 4) accepts, as SpeechBrain's model does.
    fn min_num_samples(&self) -> usize {
        self.config.min_num_samples()
    }

    /// The utterance alone (`wav_lens = [1.0]`), as `verify_files` embeds it.
    fn embed_utterance(&self, dev: &Device, samples: &[f32]) -> Result<Vec<f32>> {
        dev.download(&self.embed(dev, &[samples])?)
    }
}
