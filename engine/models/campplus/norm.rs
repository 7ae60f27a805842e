//! Batch norms with running statistics (eval mode), and the convolutions they follow.
//!
//! A batch norm right after a convolution is folded into it when the model loads: with
//! `s = γ / √(var + ε)`, `BN(W∗x + b) = (s·W)∗x + (s·(b − mean) + β)`, per output channel (in
//! f64, rounded once to f32). That covers every `conv → BN` pair of CAM++ (FCM convs and
//! shortcuts, the TDNN layer, each dense layer's `linear1 → nonlinear2`, the final dense layer
//! whose norm has `affine=False`: γ = 1, β = 0). The norms that come first in a
//! `BN → ReLU → conv` sequence (`nonlinear1`, the transit layers, `out_nonlinear`) are kept as
//! [`BatchNorm`]s and run with the device's `batch_norm` op.

use crate::backend::{Conv1dParams, Conv2dParams, Device, Tensor};
use crate::error::Result;
use crate::models::common::layers::round_conv_bfloat16;
use crate::weights::WeightStore;

use super::config::BATCH_NORM_EPS;

/// `{prefix}.running_mean`, `running_var` and, unless `affine=False`, `weight` and `bias`.
struct Stats {
    mean: Vec<f32>,
    var: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Stats {
    fn load(store: &dyn WeightStore, prefix: &str, channels: usize, affine: bool) -> Result<Self> {
        let shape = [channels];
        let (gamma, beta) = if affine {
            (store.f32(&format!("{prefix}.weight"), &shape)?, store.f32(&format!("{prefix}.bias"), &shape)?)
        } else {
            (vec![1.0; channels], vec![0.0; channels])
        };
        Ok(Stats {
            mean: store.f32(&format!("{prefix}.running_mean"), &shape)?,
            var: store.f32(&format!("{prefix}.running_var"), &shape)?,
            gamma,
            beta,
        })
    }
}

/// Fold the norm into `weight[C_out, ...]` (and its optional bias); returns the new bias.
fn fold(weight: &mut [f32], bias: Option<&[f32]>, bn: &Stats) -> Vec<f32> {
    let c_out = bn.mean.len();
    let per_channel = weight.len() / c_out;
    (0..c_out)
        .map(|o| {
            let scale = bn.gamma[o] as f64 / (bn.var[o] as f64 + BATCH_NORM_EPS as f64).sqrt();
            for w in &mut weight[o * per_channel..(o + 1) * per_channel] {
                *w = (*w as f64 * scale) as f32;
            }
            let b = bias.map_or(0.0, |b| b[o] as f64);
            ((b - bn.mean[o] as f64) * scale + bn.beta[o] as f64) as f32
        })
        .collect()
}

/// A batch norm in inference mode, run as one device op.
pub struct BatchNorm {
    mean: Tensor,
    var: Tensor,
    gamma: Tensor,
    beta: Tensor,
}

impl BatchNorm {
    /// `{prefix}.{weight, bias, running_mean, running_var}` `[channels]`.
    pub fn load(dev: &Device, store: &dyn WeightStore, prefix: &str, channels: usize) -> Result<Self> {
        let s = Stats::load(store, prefix, channels, true)?;
        let shape = [channels];
        Ok(BatchNorm {
            mean: dev.upload(&s.mean, &shape)?,
            var: dev.upload(&s.var, &shape)?,
            gamma: dev.upload(&s.gamma, &shape)?,
            beta: dev.upload(&s.beta, &shape)?,
        })
    }

    /// `BN(x)` on `x[B, C, ...]`.
    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.batch_norm(x, &self.mean, &self.var, &self.gamma, &self.beta, BATCH_NORM_EPS)
    }

    /// `relu(BN(x))` on `x[B, C, ...]`: the reference's `nonlinear` sequences.
    pub fn forward_relu(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.batch_norm_relu(x, &self.mean, &self.var, &self.gamma, &self.beta, BATCH_NORM_EPS)
    }
}

/// `BN(conv2d(x))` as one convolution with a bias.
pub struct ConvBn2d {
    weight: Tensor,
    bias: Tensor,
    params: Conv2dParams,
}

impl ConvBn2d {
    /// A bias-free `{conv}.weight` `[c_out, c_in, k, k]` and the norm at `bn`.
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        conv: &str,
        bn: &str,
        (c_in, c_out, kernel): (usize, usize, usize),
        params: Conv2dParams,
    ) -> Result<Self> {
        let shape = [c_out, c_in, kernel, kernel];
        let mut w = store.f32(&format!("{conv}.weight"), &shape)?;
        let b = fold(&mut w, None, &Stats::load(store, bn, c_out, true)?);
        Ok(ConvBn2d { weight: dev.upload(&w, &shape)?, bias: dev.upload(&b, &[c_out])?, params })
    }

    /// `x[B, C_in, H, W]` → `[B, C_out, H', W']`.
    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.conv2d(x, &self.weight, Some(&self.bias), self.params)
    }

    /// The folded weight in bfloat16 where the device computes bf16 products
    /// ([`round_conv_bfloat16`]).
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.weight = round_conv_bfloat16(dev, &self.weight)?;
        Ok(())
    }
}

/// `BN(conv1d(x))` as one convolution with a bias.
pub struct ConvBn1d {
    weight: Tensor,
    bias: Tensor,
    params: Conv1dParams,
}

impl ConvBn1d {
    /// `{conv}.weight` `[c_out, c_in, k]` (and `{conv}.bias` when the checkpoint has one), then
    /// the norm at `bn` (`affine=False`: no `weight`/`bias` of its own).
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        conv: &str,
        (bn, affine): (&str, bool),
        (c_in, c_out, kernel): (usize, usize, usize),
        params: Conv1dParams,
    ) -> Result<Self> {
        let shape = [c_out, c_in, kernel];
        let mut w = store.f32(&format!("{conv}.weight"), &shape)?;
        let conv_bias = store.f32_opt(&format!("{conv}.bias"), &[c_out])?;
        let b = fold(&mut w, conv_bias.as_deref(), &Stats::load(store, bn, c_out, affine)?);
        Ok(ConvBn1d { weight: dev.upload(&w, &shape)?, bias: dev.upload(&b, &[c_out])?, params })
    }

    /// `x[B, C_in, T]` → `[B, C_out, T']`.
    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.conv1d(x, &self.weight, Some(&self.bias), self.params)
    }

    /// The folded weight in bfloat16 where the device computes bf16 products
    /// ([`round_conv_bfloat16`]).
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.weight = round_conv_bfloat16(dev, &self.weight)?;
        Ok(())
    }

    pub fn weight_dtype(&self) -> &'static str {
        self.weight.dtype()
    }

    /// The folded weight as a matrix `[C_out, C_in · K]` and its bias, for a 1×1 conv applied to
    /// vectors (`nn.Conv1d` on `[B, C, 1]` is `nn.Linear` on `[B, C]`).
    pub fn as_linear(&self) -> Result<(Tensor, &Tensor)> {
        let s = self.weight.shape();
        Ok((self.weight.reshape(&[s[0], s[1] * s[2]])?, &self.bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_equals_the_norm_after_the_conv() {
        // Two output channels of a 1×1 conv on one input: y = w·x + b, then BN.
        let bn = Stats { mean: vec![0.5, -1.0], var: vec![4.0, 0.25], gamma: vec![2.0, -1.0], beta: vec![0.1, 0.3] };
        let (w0, b0) = ([3.0f32, -2.0], [0.25f32, 1.0]);
        let mut w = w0.to_vec();
        let b = fold(&mut w, Some(&b0), &bn);
        for x in [-1.5f32, 0.0, 2.0] {
            for o in 0..2 {
                let conv = (w0[o] * x + b0[o]) as f64;
                let eps = BATCH_NORM_EPS as f64;
                let want = (conv - bn.mean[o] as f64) / (bn.var[o] as f64 + eps).sqrt() * bn.gamma[o] as f64
                    + bn.beta[o] as f64;
                let got = (w[o] * x + b[o]) as f64;
                assert!((got - want).abs() < 1e-6, "channel {o}, x {x}: {got} vs {want}");
            }
        }
    }
}
