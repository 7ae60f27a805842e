//! `nn.Linear`, `nn.LayerNorm`, `nn.Conv1d` and `nn.Embedding` loaded by PyTorch names.

use crate::backend::{Conv1dParams, Device, Tensor};
use crate::error::Result;
use crate::weights::WeightStore;

/// Load `name` with `shape` from the store onto the device.
pub fn load(dev: &Device, store: &dyn WeightStore, name: &str, shape: &[usize]) -> Result<Tensor> {
    dev.upload(&store.f32(name, shape)?, shape)
}

pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// `{prefix}.weight` [out, in] and, when `bias`, `{prefix}.bias` [out].
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Self> {
        Ok(Linear {
            weight: load(dev, store, &format!("{prefix}.weight"), &[d_out, d_in])?,
            bias: if bias { Some(load(dev, store, &format!("{prefix}.bias"), &[d_out])?) } else { None },
        })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.linear(x, &self.weight, self.bias.as_ref())
    }
}

pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f32,
}

/// `nn.LayerNorm`'s default epsilon.
pub const LAYER_NORM_EPS: f32 = 1e-5;

impl LayerNorm {
    pub fn load(dev: &Device, store: &dyn WeightStore, prefix: &str, d: usize) -> Result<Self> {
        Ok(LayerNorm {
            weight: load(dev, store, &format!("{prefix}.weight"), &[d])?,
            bias: load(dev, store, &format!("{prefix}.bias"), &[d])?,
            eps: LAYER_NORM_EPS,
        })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

pub struct Conv1d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub params: Conv1dParams,
}

impl Conv1d {
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        prefix: &str,
        (c_in, c_out, kernel): (usize, usize, usize),
        params: Conv1dParams,
    ) -> Result<Self> {
        Ok(Conv1d {
            weight: load(dev, store, &format!("{prefix}.weight"), &[c_out, c_in / params.groups.max(1), kernel])?,
            bias: store.f32_opt(&format!("{prefix}.bias"), &[c_out])?.map(|b| dev.upload(&b, &[c_out])).transpose()?,
            params,
        })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.conv1d(x, &self.weight, self.bias.as_ref(), self.params)
    }
}
