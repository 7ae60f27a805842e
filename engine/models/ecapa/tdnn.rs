//! SpeechBrain's `Conv1d` with "same" padding (`nnet/CNN.py`: the input reflect-padded by
//! `dilation · (kernel − 1) / 2` on both sides, `get_padding_elem` with stride 1, then
//! `nn.Conv1d` at `{prefix}.conv`) and `TDNNBlock` (`lobes/models/ECAPA_TDNN.py`: conv → ReLU →
//! `BatchNorm1d` with running statistics at `{prefix}.norm.norm`). The norm follows the ReLU, so
//! it is not folded into the conv.

use crate::backend::{Activation, Conv1dParams, Device, Padding, Tensor};
use crate::error::Result;
use crate::models::campplus::norm::BatchNorm;
use crate::weights::WeightStore;

use super::config::EcapaConfig;

/// `{prefix}.conv.{weight,bias}`: a SpeechBrain `Conv1d(padding="same", padding_mode="reflect")`.
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
    padding: usize,
    params: Conv1dParams,
}

impl Conv {
    /// `weight [c_out, c_in / groups, kernel]`, `bias [c_out]`.
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        prefix: &str,
        (c_in, c_out, kernel): (usize, usize, usize),
        (dilation, groups): (usize, usize),
    ) -> Result<Self> {
        let weight = store.f32(&format!("{prefix}.conv.weight"), &[c_out, c_in / groups, kernel])?;
        let bias = store.f32(&format!("{prefix}.conv.bias"), &[c_out])?;
        Self::from_weights(dev, (weight, bias), (c_in, c_out, kernel), (dilation, groups))
    }

    /// The conv of a weight `[c_out, c_in / groups, kernel]` and bias `[c_out]` read elsewhere.
    pub fn from_weights(
        dev: &Device,
        (weight, bias): (Vec<f32>, Vec<f32>),
        (c_in, c_out, kernel): (usize, usize, usize),
        (dilation, groups): (usize, usize),
    ) -> Result<Self> {
        let weight = dev.upload(&weight, &[c_out, c_in / groups, kernel])?;
        let bias = dev.upload(&bias, &[c_out])?;
        let params = Conv1dParams { dilation, groups, ..Default::default() };
        Ok(Conv { weight, bias, padding: EcapaConfig::same_padding(kernel, dilation), params })
    }

    /// `x[B, C_in, T]` → `[B, C_out, T]`.
    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        if self.padding == 0 {
            return dev.conv1d(x, &self.weight, Some(&self.bias), self.params);
        }
        let padded = dev.pad(x, 2, self.padding, self.padding, Padding::Reflect)?;
        dev.conv1d(&padded, &self.weight, Some(&self.bias), self.params)
    }
}

/// A 1×1 `Conv1d` applied to one vector per item (`[B, C, 1]`), i.e. a linear layer on `[B, C]`.
pub struct PointwiseConv {
    weight: Tensor,
    bias: Tensor,
}

impl PointwiseConv {
    /// `{prefix}.conv.weight [c_out, c_in, 1]` as a matrix `[c_out, c_in]`, and its bias.
    pub fn load(dev: &Device, store: &dyn WeightStore, prefix: &str, (c_in, c_out): (usize, usize)) -> Result<Self> {
        let weight = store.f32(&format!("{prefix}.conv.weight"), &[c_out, c_in, 1])?;
        Ok(PointwiseConv {
            weight: dev.upload(&weight, &[c_out, c_in])?,
            bias: dev.upload(&store.f32(&format!("{prefix}.conv.bias"), &[c_out])?, &[c_out])?,
        })
    }

    /// `act(x · wᵀ + b)` on `x[B, C_in]`.
    pub fn forward(&self, dev: &Device, x: &Tensor, act: Option<Activation>) -> Result<Tensor> {
        match act {
            Some(act) => dev.linear_activation(x, &self.weight, Some(&self.bias), act),
            None => dev.linear(x, &self.weight, Some(&self.bias)),
        }
    }
}

/// `TDNNBlock`: `norm(relu(conv(x)))`.
pub struct TdnnBlock {
    conv: Conv,
    norm: BatchNorm,
}

impl TdnnBlock {
    /// `{prefix}.conv.conv.*` and `{prefix}.norm.norm.*`.
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        prefix: &str,
        (c_in, c_out, kernel): (usize, usize, usize),
        (dilation, groups): (usize, usize),
    ) -> Result<Self> {
        Ok(TdnnBlock {
            conv: Conv::load(dev, store, &format!("{prefix}.conv"), (c_in, c_out, kernel), (dilation, groups))?,
            norm: BatchNorm::load(dev, store, &format!("{prefix}.norm.norm"), c_out)?,
        })
    }

    /// `x[B, C_in, T]` → `[B, C_out, T]`.
    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let y = dev.activation(&self.conv.forward(dev, x)?, Activation::Relu)?;
        self.norm.forward(dev, &y)
    }
}
