//! The frame mask of a padded batch, masked statistics, and `AttentiveStatisticsPooling`
//! (speechbrain 1.1.2 `lobes/models/ECAPA_TDNN.py`).
//!
//! `AttentiveStatisticsPooling.forward(x, lengths)` on `x[B, C, T]`:
//! - with `global_context`, the masked mean and standard deviation of `x` over time
//!   (`_compute_statistics(x, mask / total)`), repeated over time and concatenated to `x`
//!   (`[B, 3C, T]`); `tdnn` (a 1×1 `TDNNBlock` to `attention_channels`) is linear in that input,
//!   so its weight is split at load time into the part applied to `x` (a 1×1 conv) and the parts
//!   applied to the mean and std (a matrix each, computed once per item and added over time) —
//!   the same sums as the concatenation, without the `[B, 3C, T]` tensor;
//! - `tanh`, `conv` (1×1, back to `C`), the padding frames set to −∞, softmax over time;
//! - the attention-weighted mean and standard deviation, `[B, 2C]`.
//!
//! `_compute_statistics(x, m)`: `mean = Σₜ m·x`, `std = √max(Σₜ m·(x − mean)², eps)`.

use crate::backend::{Activation, BinaryOp, Device, Reduce, Tensor};
use crate::error::Result;
use crate::models::campplus::norm::BatchNorm;
use crate::weights::WeightStore;

use super::config::{EcapaConfig, ASP_EPS};
use super::tdnn::Conv;

/// Which frames of a `[B, C, T]` batch are real, in the forms the masked layers use.
pub struct FrameMask {
    /// `mask / total`, `[B, 1, T]`: the masked mean as a weighted sum.
    pub mean_weights: Tensor,
    /// 0 on valid frames, −∞ on padding, `[B, 1, T]` (added to attention logits).
    pub attention_bias: Tensor,
}

impl FrameMask {
    /// `valid[b]` frames of `frames` are real in item `b` (1 ≤ valid[b] ≤ frames).
    pub fn new(dev: &Device, valid: &[usize], frames: usize) -> Result<Self> {
        let b = valid.len();
        let mut weights = vec![0.0f32; b * frames];
        let mut bias = vec![f32::NEG_INFINITY; b * frames];
        for (i, &v) in valid.iter().enumerate() {
            weights[i * frames..i * frames + v].fill(1.0 / v as f32);
            bias[i * frames..i * frames + v].fill(0.0);
        }
        Ok(FrameMask {
            mean_weights: dev.upload(&weights, &[b, 1, frames])?,
            attention_bias: dev.upload(&bias, &[b, 1, frames])?,
        })
    }

    /// The masked mean over time of `x[B, C, T]`, `[B, C]` (`SEBlock`'s `s`).
    pub fn mean(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.reduce(&dev.mul(x, &self.mean_weights)?, Reduce::Sum)
    }
}

/// `_compute_statistics(x, weights)`: weighted mean and std over time of `x[B, C, T]` with
/// `weights` `[B, 1, T]` or `[B, C, T]` summing to 1 over time; each `[B, C]`.
pub fn weighted_stats(dev: &Device, x: &Tensor, weights: &Tensor, eps: &Tensor) -> Result<(Tensor, Tensor)> {
    let (b, c, _) = x.dims3("ecapa statistics")?;
    let mean = dev.reduce(&dev.mul(x, weights)?, Reduce::Sum)?;
    let centred = dev.binary(x, &mean.reshape(&[b, c, 1])?, BinaryOp::Sub)?;
    let var = dev.reduce(&dev.mul(&dev.mul(&centred, &centred)?, weights)?, Reduce::Sum)?;
    // `clamp(var, eps)` as `relu(var − eps) + eps` (exact wherever var ≫ eps), then √.
    let clamped = dev.add(&dev.activation(&dev.binary(&var, eps, BinaryOp::Sub)?, Activation::Relu)?, eps)?;
    Ok((mean, dev.activation(&clamped, Activation::Sqrt)?))
}

pub struct AttentiveStatisticsPooling {
    /// `tdnn`'s conv on `x`: `[A, C, 1]`.
    tdnn_x: Conv,
    /// With global context, `tdnn`'s weight on the mean and on the std, `[A, C]` each.
    tdnn_context: Option<(Tensor, Tensor)>,
    tdnn_norm: BatchNorm,
    conv: Conv,
    /// `eps` as a one-element tensor.
    eps: Tensor,
}

impl AttentiveStatisticsPooling {
    /// `{p}.tdnn.conv.conv.*` (`[A, 3C, 1]` with global context, else `[A, C, 1]`),
    /// `{p}.tdnn.norm.norm.*`, `{p}.conv.conv.*` (`[C, A, 1]`).
    pub fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &EcapaConfig) -> Result<Self> {
        let (channels, attention) = (c.mfa_out(), c.attention_channels);
        let tdnn = format!("{p}.tdnn.conv");
        let (tdnn_x, tdnn_context) = if c.global_context {
            let name = format!("{tdnn}.conv.weight");
            let w = store.f32(&name, &[attention, 3 * channels, 1])?;
            // Rows of [x | mean | std] input channels.
            let part = |k: usize| -> Vec<f32> {
                w.chunks_exact(3 * channels).flat_map(|row| row[k * channels..(k + 1) * channels].to_vec()).collect()
            };
            let bias = store.f32(&format!("{tdnn}.conv.bias"), &[attention])?;
            let x_part = Conv::from_weights(dev, (part(0), bias), (channels, attention, 1), (1, 1))?;
            let mean = dev.upload(&part(1), &[attention, channels])?;
            let std = dev.upload(&part(2), &[attention, channels])?;
            (x_part, Some((mean, std)))
        } else {
            (Conv::load(dev, store, &tdnn, (channels, attention, 1), (1, 1))?, None)
        };
        Ok(AttentiveStatisticsPooling {
            tdnn_x,
            tdnn_context,
            tdnn_norm: BatchNorm::load(dev, store, &format!("{p}.tdnn.norm.norm"), attention)?,
            conv: Conv::load(dev, store, &format!("{p}.conv"), (attention, channels, 1), (1, 1))?,
            eps: dev.upload(&[ASP_EPS], &[1])?,
        })
    }

    /// `x[B, C, T]` → `[B, 2C]` (mean, then std).
    pub fn forward(&self, dev: &Device, x: &Tensor, mask: &FrameMask) -> Result<Tensor> {
        let (b, _, _) = x.dims3("ecapa asp")?;
        let mut h = self.tdnn_x.forward(dev, x)?;
        if let Some((w_mean, w_std)) = &self.tdnn_context {
            let (mean, std) = weighted_stats(dev, x, &mask.mean_weights, &self.eps)?;
            let context = dev.add(&dev.linear(&mean, w_mean, None)?, &dev.linear(&std, w_std, None)?)?;
            let a = context.dim(1);
            h = dev.add(&h, &context.reshape(&[b, a, 1])?)?;
        }
        let h = self.tdnn_norm.forward(dev, &dev.activation(&h, Activation::Relu)?)?;
        let logits = self.conv.forward(dev, &dev.activation(&h, Activation::Tanh)?)?;
        let attention = dev.softmax(&dev.add(&logits, &mask.attention_bias)?)?;
        let (mean, std) = weighted_stats(dev, x, &attention, &self.eps)?;
        dev.concat(&[&mean, &std], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_statistics_ignore_the_padding() {
        let dev = Device::cpu();
        // Two items of 4 frames, one channel; the second has 2 valid frames.
        let x = dev.upload(&[1.0, 2.0, 3.0, 6.0, 4.0, 8.0, 100.0, -100.0], &[2, 1, 4]).unwrap();
        let mask = FrameMask::new(&dev, &[4, 2], 4).unwrap();
        assert_eq!(dev.download(&mask.mean(&dev, &x).unwrap()).unwrap(), vec![3.0, 6.0]);
        let eps = dev.upload(&[ASP_EPS], &[1]).unwrap();
        let (mean, std) = weighted_stats(&dev, &x, &mask.mean_weights, &eps).unwrap();
        assert_eq!(dev.download(&mean).unwrap(), vec![3.0, 6.0]);
        let std = dev.download(&std).unwrap();
        // Population std: √(14/4) and √(8/2).
        assert!((std[0] - 3.5f32.sqrt()).abs() < 1e-6 && (std[1] - 2.0).abs() < 1e-6, "{std:?}");
        // A constant channel: the variance is clamped at eps before the root.
        let flat = dev.upload(&[5.0; 4], &[1, 1, 4]).unwrap();
        let one = FrameMask::new(&dev, &[4], 4).unwrap();
        let (_, std) = weighted_stats(&dev, &flat, &one.mean_weights, &eps).unwrap();
        assert_eq!(dev.download(&std).unwrap(), vec![ASP_EPS.sqrt()]);
    }
}
