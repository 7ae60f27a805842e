//! `Wav2Vec2ForCTC` (HFM): feature encoder → feature projection →
//! transformer encoder → `lm_head`, then `log_softmax` over classes as WhisperX applies it.

use crate::backend::{Device, Tensor};
use crate::error::{Error, Result};
use crate::models::common::layers::Linear;
use crate::models::common::statistics::mean_and_variance;

use super::checkpoint::Checkpoint;
use super::config::Wav2Vec2Config;
use super::encoder::Encoder;
use super::feature_encoder::{FeatureEncoder, FeatureProjection};
use crate::models::common::compute_type::{wants_bfloat16, BF16_COMPUTE_TYPES};

/// transformers `Wav2Vec2FeatureExtractor` normalisation's epsilon (`do_normalize`), used only
/// when input normalisation is asked for (WhisperX never normalises).
pub const NORMALIZE_EPS: f64 = 1e-7;

/// The `align_compute_type`s [`Wav2Vec2ForCtc::apply_compute_type`] accepts (the CLI's
/// `--align_compute_type`, the worker's ALIGN_COMPUTE_TYPE): the other bf16 settings' values,
/// but here `default` keeps f32 (see there).
pub const ALIGN_COMPUTE_TYPES: [&str; 3] = BF16_COMPUTE_TYPES;

/// Per-frame log-probabilities `[frames, classes]`, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogProbs {
    pub data: Vec<f32>,
    pub frames: usize,
    pub classes: usize,
}

pub struct Wav2Vec2ForCtc {
    pub config: Wav2Vec2Config,
    /// `labels[id]`: the character (or special token) each class stands for.
    pub labels: Vec<String>,
    feature_extractor: FeatureEncoder,
    feature_projection: FeatureProjection,
    encoder: Encoder,
    lm_head: Linear,
    /// Zero-mean, unit-variance input (transformers' `do_normalize`); off as in WhisperX.
    pub normalize_input: bool,
}

impl Wav2Vec2ForCtc {
    pub fn load(dev: &Device, ckpt: &Checkpoint) -> Result<Self> {
        let c = &ckpt.config;
        let store = ckpt.store.as_ref();
        let p = super::config::BODY_PREFIX;
        if ckpt.labels.len() != c.vocab_size {
            return Err(Error::Other(format!(
                "{}: {} labels for {} output classes",
                ckpt.source.display(),
                ckpt.labels.len(),
                c.vocab_size
            )));
        }
        Ok(Wav2Vec2ForCtc {
            config: c.clone(),
            labels: ckpt.labels.clone(),
            feature_extractor: FeatureEncoder::load(dev, store, p, c)?,
            feature_projection: FeatureProjection::load(dev, store, p, c)?,
            encoder: Encoder::load(dev, store, p, c)?,
            lm_head: Linear::load(dev, store, "lm_head", c.hidden_size, c.vocab_size, true)?,
            normalize_input: false,
        })
    }

    /// Set the precision of the products (`align_compute_type`, one of
    /// [`ALIGN_COMPUTE_TYPES`]): `bfloat16` rounds every transformer layer's projections and
    /// feed-forward matrices and the feature encoder's convs after the first (512 channels in)
    /// to bfloat16 and runs attention's products in bf16 ([`Device::attention_bf16`]) where the
    /// device computes bf16 products ([`Device::round_bfloat16`]: CPUs with AVX-512 BF16; f32
    /// sums, the softmax in f32), and leaves them elsewhere. `default` and `float32` keep f32:
    /// no trained wav2vec2 weights could be measured here (benches/README.md). The first conv
    /// (one input channel), the positional conv, the norms and the CTC head stay f32 either
    /// way.
    pub fn apply_compute_type(&mut self, dev: &Device, compute_type: &str) -> Result<()> {
        let bfloat16 = wants_bfloat16("align_compute_type", compute_type)? && compute_type != "default";
        if bfloat16 {
            self.encoder.round_bfloat16(dev)?;
            self.feature_extractor.round_bfloat16(dev)?;
        }
        Ok(())
    }

    /// What the transformer's products compute in: `bfloat16` once rounded weights took, else
    /// the device's own precision.
    pub fn compute_type(&self, dev: &Device) -> &'static str {
        match self.encoder.weight_dtype() {
            Some("bfloat16") => "bfloat16",
            _ => dev.compute_type(),
        }
    }

    /// `samples[B, 1, N]` → logits `[B, T, V]` (before the softmax).
    pub fn logits(&self, dev: &Device, samples: &Tensor) -> Result<Tensor> {
        let features = self.feature_extractor.forward(dev, samples)?;
        let hidden = self.feature_projection.forward(dev, &features)?;
        let hidden = self.encoder.forward(dev, &hidden)?;
        self.lm_head.forward(dev, &hidden)
    }

    /// Log-probabilities of one input (16 kHz samples, as WhisperX passes them: int16 / 32768,
    /// not normalised unless [`Self::normalize_input`]). An input shorter than the receptive
    /// field (400 samples) has no frames.
    pub fn log_probs(&self, dev: &Device, samples: &[f32]) -> Result<LogProbs> {
        let classes = self.config.vocab_size;
        let frames = self.config.frames(samples.len());
        if frames == 0 {
            return Ok(LogProbs { data: Vec::new(), frames: 0, classes });
        }
        let logits = self.logits(dev, &self.upload(dev, samples)?)?;
        let lp = dev.log_softmax(&logits)?;
        let data = dev.download(&lp)?;
        debug_assert_eq!(data.len(), frames * classes);
        Ok(LogProbs { data, frames, classes })
    }

    /// [`Self::log_probs`] of several inputs of any lengths in one pass, each result that of its
    /// input alone. The feature encoder runs per input (a group norm's statistics span its whole
    /// input, and conv lengths differ); the transformer runs once over every input's frames
    /// packed together (`Encoder::forward_packed`: the positional conv per input, attention
    /// over each input's own frames, nothing computed for padding), then `lm_head` and the
    /// softmax, and each input's rows are cut out. Inputs with no frames (under 400 samples)
    /// stay out of it.
    pub fn log_probs_batch(&self, dev: &Device, inputs: &[&[f32]]) -> Result<Vec<LogProbs>> {
        let classes = self.config.vocab_size;
        let frames: Vec<usize> = inputs.iter().map(|x| self.config.frames(x.len())).collect();
        let mut out = vec![LogProbs { data: Vec::new(), frames: 0, classes }; inputs.len()];
        // The inputs that have frames, in order.
        let rows: Vec<usize> = (0..inputs.len()).filter(|&i| frames[i] > 0).collect();
        match rows[..] {
            [] => return Ok(out),
            [only] => {
                out[only] = self.log_probs(dev, inputs[only])?;
                return Ok(out);
            }
            _ => {}
        }
        let hidden = rows
            .iter()
            .map(|&i| {
                let features = self.feature_extractor.forward(dev, &self.upload(dev, inputs[i])?)?;
                self.feature_projection.forward(dev, &features) // [1, T_i, D]
            })
            .collect::<Result<Vec<Tensor>>>()?;
        let hidden = self.encoder.forward_packed(dev, &hidden)?; // [1, ΣT_i, D]
        let lp = dev.log_softmax(&self.lm_head.forward(dev, &hidden)?)?;
        let data = dev.download(&lp)?;
        let mut at = 0;
        for &i in &rows {
            let n = frames[i] * classes;
            out[i] = LogProbs { data: data[at..at + n].to_vec(), frames: frames[i], classes };
            at += n;
        }
        debug_assert_eq!(at, data.len());
        Ok(out)
    }

    /// One input as the model's `[1, 1, N]`, normalised when asked.
    fn upload(&self, dev: &Device, samples: &[f32]) -> Result<Tensor> {
        let input = if self.normalize_input { normalized(samples) } else { samples.to_vec() };
        dev.upload(&input, &[1, 1, samples.len()])
    }
}

/// `(x − mean) / √(var + 1e-7)` (transformers `zero_mean_unit_var_norm`).
fn normalized(x: &[f32]) -> Vec<f32> {
    let (mean, var) = mean_and_variance(x);
    let inv = 1.0 / (var + NORMALIZE_EPS).sqrt();
    x.iter().map(|&v| ((v as f64 - mean) * inv) as f32).collect()
}
