//! Whisper's audio encoder (openai/whisper model.py `AudioEncoder`):
//! two GELU convs (the second with stride 2), sinusoidal positions, pre-norm residual blocks.

use crate::backend::{Conv1dParams, Device, Tensor};
use crate::error::{Error, Result};
use crate::models::common::layers::{load, Conv1d, LayerNorm, Linear};
use crate::weights::WeightStore;

use super::attention::MultiHeadAttention;
use super::config::WhisperConfig;

/// Kernel size of both stem convolutions.
const CONV_KERNEL: usize = 3;

pub struct EncoderLayer {
    self_attn: MultiHeadAttention,
    self_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &WhisperConfig) -> Result<Self> {
        let d = c.d_model;
        Ok(EncoderLayer {
            self_attn: MultiHeadAttention::load(dev, store, &format!("{p}.self_attn"), d, c.encoder_attention_heads)?,
            self_attn_layer_norm: LayerNorm::load(dev, store, &format!("{p}.self_attn_layer_norm"), d)?,
            fc1: Linear::load(dev, store, &format!("{p}.fc1"), d, c.encoder_ffn_dim, true)?,
            fc2: Linear::load(dev, store, &format!("{p}.fc2"), c.encoder_ffn_dim, d, true)?,
            final_layer_norm: LayerNorm::load(dev, store, &format!("{p}.final_layer_norm"), d)?,
        })
    }

    fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.self_attn.round_bfloat16(dev)?;
        self.fc1.round_bfloat16(dev)?;
        self.fc2.round_bfloat16(dev)
    }

    fn quantize_int8(&mut self, dev: &Device) -> Result<()> {
        self.self_attn.quantize_int8(dev)?;
        self.fc1.quantize_int8(dev)?;
        self.fc2.quantize_int8(dev)
    }

    fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let h = self.self_attn_layer_norm.forward(dev, x)?;
        let x = self.self_attn.self_attention(dev, &h, x)?;
        let h = self.final_layer_norm.forward(dev, &x)?;
        let h = self.fc1.forward_gelu(dev, &h)?;
        self.fc2.forward_residual(dev, &h, &x)
    }
}

pub struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    embed_positions: Tensor,
    layers: Vec<EncoderLayer>,
    layer_norm: LayerNorm,
    n_mels: usize,
    n_ctx: usize,
}

impl Encoder {
    /// Every block's linear weights in int8 where the backend computes int8 products (the
    /// stem convolutions stay f32, as CTranslate2 keeps them).
    pub fn quantize_int8(&mut self, dev: &Device) -> Result<()> {
        self.layers.iter_mut().try_for_each(|l| l.quantize_int8(dev))
    }

    /// Every block's linear weights in bfloat16 where the backend computes bf16 products (the
    /// stem convolutions stay f32).
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.layers.iter_mut().try_for_each(|l| l.round_bfloat16(dev))
    }

    /// The blocks' linear weights' dtype (`bfloat16` once rounded, `int8` once quantised).
    pub fn weight_dtype(&self) -> &'static str {
        self.layers.first().map_or("float32", |l| l.fc1.weight.dtype())
    }

    pub fn load(dev: &Device, store: &dyn WeightStore, c: &WhisperConfig) -> Result<Self> {
        let p = "model.encoder";
        let d = c.d_model;
        let same = Conv1dParams { padding: 1, ..Default::default() };
        let strided = Conv1dParams { stride: 2, padding: 1, ..Default::default() };
        Ok(Encoder {
            conv1: Conv1d::load(dev, store, &format!("{p}.conv1"), (c.num_mel_bins, d, CONV_KERNEL), same)?,
            conv2: Conv1d::load(dev, store, &format!("{p}.conv2"), (d, d, CONV_KERNEL), strided)?,
            embed_positions: load(dev, store, &format!("{p}.embed_positions.weight"), &[c.max_source_positions, d])?,
            layers: (0..c.encoder_layers)
                .map(|i| EncoderLayer::load(dev, store, &format!("{p}.layers.{i}"), c))
                .collect::<Result<_>>()?,
            layer_norm: LayerNorm::load(dev, store, &format!("{p}.layer_norm"), d)?,
            n_mels: c.num_mel_bins,
            n_ctx: c.max_source_positions,
        })
    }

    /// `mel[B, n_mels, 2·n_ctx]` → `[B, n_ctx, D]`.
    pub fn forward(&self, dev: &Device, mel: &Tensor) -> Result<Tensor> {
        let (_, n_mels, frames) = mel.dims3("encoder")?;
        if n_mels != self.n_mels || frames != 2 * self.n_ctx {
            return Err(Error::shape(
                "encoder",
                format!("expected mel [B, {}, {}], got {:?}", self.n_mels, 2 * self.n_ctx, mel.shape()),
            ));
        }
        let x = dev.gelu(&self.conv1.forward(dev, mel)?)?;
        let x = dev.gelu(&self.conv2.forward(dev, &x)?)?;
        let x = dev.permute(&x, &[0, 2, 1])?;
        let mut x = dev.add(&x, &self.embed_positions)?;
        for layer in &self.layers {
            x = layer.forward(dev, &x)?;
        }
        self.layer_norm.forward(dev, &x)
    }
}
