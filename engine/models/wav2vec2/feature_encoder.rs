//! The convolutional feature encoder and the feature projection (HFM `Wav2Vec2FeatureEncoder`,
//! `Wav2Vec2GroupNormConvLayer`, `Wav2Vec2LayerNormConvLayer`, `Wav2Vec2NoLayerNormConvLayer`,
//! `Wav2Vec2FeatureProjection`; TAC `FeatureExtractor`, `FeatureProjection`).

use crate::backend::{Activation, Conv1dParams, Device, Tensor};
use crate::error::Result;
use crate::models::common::layers::{load, Conv1d, LayerNorm, Linear};
use crate::weights::WeightStore;

use super::config::{FeatExtractNorm, Wav2Vec2Config};

/// What follows a convolution before its GELU.
enum ConvNorm {
    /// `nn.GroupNorm(C, C)` (first layer of group mode): per-channel statistics over the whole
    /// input's time axis.
    Group {
        weight: Tensor,
        bias: Tensor,
        eps: f32,
    },
    /// `nn.LayerNorm(C)` over channels, per frame (every layer of layer mode).
    Layer(LayerNorm),
    None,
}

struct ConvLayer {
    conv: Conv1d,
    norm: ConvNorm,
}

impl ConvLayer {
    /// `x[B, C_in, L]` → `[B, C_out, ⌊(L − k)/s⌋ + 1]`.
    fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let y = self.conv.forward(dev, x)?;
        let y = match &self.norm {
            ConvNorm::Group { weight, bias, eps } => {
                let channels = weight.shape()[0];
                dev.group_norm(&y, channels, weight, bias, *eps)?
            }
            ConvNorm::Layer(ln) => {
                let t = dev.permute(&y, &[0, 2, 1])?;
                let t = ln.forward(dev, &t)?;
                dev.permute(&t, &[0, 2, 1])?
            }
            ConvNorm::None => y,
        };
        dev.activation(&y, Activation::Gelu)
    }
}

pub struct FeatureEncoder {
    layers: Vec<ConvLayer>,
}

impl FeatureEncoder {
    /// `{p}.feature_extractor.conv_layers.{i}.{conv, layer_norm}`.
    pub fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &Wav2Vec2Config) -> Result<Self> {
        let mut layers = Vec::with_capacity(c.conv_dim.len());
        let mut c_in = 1;
        for (i, ((&c_out, &k), &s)) in c.conv_dim.iter().zip(&c.conv_kernel).zip(&c.conv_stride).enumerate() {
            let prefix = format!("{p}.feature_extractor.conv_layers.{i}");
            let params = Conv1dParams { stride: s, ..Default::default() };
            let mut conv = Conv1d::load(dev, store, &format!("{prefix}.conv"), (c_in, c_out, k), params)?;
            if !c.conv_bias {
                conv.bias = None;
            }
            let norm_prefix = format!("{prefix}.layer_norm");
            let norm = match c.feat_extract_norm {
                FeatExtractNorm::Group if i == 0 => ConvNorm::Group {
                    weight: load(dev, store, &format!("{norm_prefix}.weight"), &[c_out])?,
                    bias: load(dev, store, &format!("{norm_prefix}.bias"), &[c_out])?,
                    eps: c.layer_norm_eps,
                },
                FeatExtractNorm::Group => ConvNorm::None,
                FeatExtractNorm::Layer => {
                    let mut ln = LayerNorm::load(dev, store, &norm_prefix, c_out)?;
                    ln.eps = c.layer_norm_eps;
                    ConvNorm::Layer(ln)
                }
            };
            layers.push(ConvLayer { conv, norm });
            c_in = c_out;
        }
        Ok(FeatureEncoder { layers })
    }

    /// The convs after the first (512 channels in) in bfloat16 where the device computes bf16
    /// products; the first (one input channel) stays f32.
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.layers.iter_mut().skip(1).try_for_each(|l| l.conv.round_bfloat16(dev))
    }

    /// `samples[B, 1, N]` → features `[B, C, T]`.
    pub fn forward(&self, dev: &Device, samples: &Tensor) -> Result<Tensor> {
        let mut x = samples.clone();
        for layer in &self.layers {
            x = layer.forward(dev, &x)?;
        }
        Ok(x)
    }
}

/// LayerNorm then Linear `C → D`.
pub struct FeatureProjection {
    layer_norm: LayerNorm,
    projection: Linear,
}

impl FeatureProjection {
    /// `{p}.feature_projection.{layer_norm, projection}`.
    pub fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &Wav2Vec2Config) -> Result<Self> {
        let c_in = *c.conv_dim.last().unwrap_or(&0);
        let prefix = format!("{p}.feature_projection");
        let mut layer_norm = LayerNorm::load(dev, store, &format!("{prefix}.layer_norm"), c_in)?;
        layer_norm.eps = c.layer_norm_eps;
        let projection = Linear::load(dev, store, &format!("{prefix}.projection"), c_in, c.hidden_size, true)?;
        Ok(FeatureProjection { layer_norm, projection })
    }

    /// `features[B, C, T]` → `[B, T, D]`.
    pub fn forward(&self, dev: &Device, features: &Tensor) -> Result<Tensor> {
        let x = dev.permute(features, &[0, 2, 1])?;
        let x = self.layer_norm.forward(dev, &x)?;
        self.projection.forward(dev, &x)
    }
}
