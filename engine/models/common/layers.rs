//! `nn.Linear`, `nn.LayerNorm`, `nn.Conv1d` and `nn.Embedding` loaded by PyTorch names.

use crate::backend::{Conv1dParams, Device, Tensor};
use crate::error::Result;
use crate::weights::{DType, WeightStore};

/// Load `name` with `shape` from the store onto the device.
pub fn load(dev: &Device, store: &dyn WeightStore, name: &str, shape: &[usize]) -> Result<Tensor> {
    dev.upload(&store.f32(name, shape)?, shape)
}

/// Load a weight matrix `name` with `shape`, kept in half precision when the checkpoint stores
/// it so (lossless: the backend widens f16 exactly; half the memory and bandwidth of decoding).
pub fn load_matrix(dev: &Device, store: &dyn WeightStore, name: &str, shape: &[usize]) -> Result<Tensor> {
    match store.view(name) {
        Some(v) if v.dtype == DType::F16 && v.shape == shape && v.bytes.len() == v.numel() * 2 => {
            let half: Vec<half::f16> =
                v.bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]])).collect();
            dev.upload_f16(&half, shape)
        }
        // Anything else (f32, bf16, a wrong shape or size) goes the checked f32 way.
        _ => load(dev, store, name, shape),
    }
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
            weight: load_matrix(dev, store, &format!("{prefix}.weight"), &[d_out, d_in])?,
            bias: if bias { Some(load(dev, store, &format!("{prefix}.bias"), &[d_out])?) } else { None },
        })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.linear(x, &self.weight, self.bias.as_ref())
    }

    /// Keep the weight in int8 where the backend computes int8 products (see
    /// [`Device::quantize_int8`]); the bias stays f32.
    pub fn quantize_int8(&mut self, dev: &Device) -> Result<()> {
        self.weight = dev.quantize_int8(&self.weight)?;
        Ok(())
    }

    /// Keep the weight in bfloat16 where the backend computes bf16 products (see
    /// [`Device::round_bfloat16`]); the bias stays f32.
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.weight = dev.round_bfloat16(&self.weight)?;
        Ok(())
    }

    /// `residual + x · wᵀ + b` (a block's skip connection), fused where the backend can.
    pub fn forward_residual(&self, dev: &Device, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        dev.linear_residual(x, &self.weight, self.bias.as_ref(), residual)
    }

    /// `gelu(x · wᵀ + b)`, fused where the backend can.
    pub fn forward_gelu(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.linear_activation(x, &self.weight, self.bias.as_ref(), crate::backend::Activation::Gelu)
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

    /// Keep the weight in bfloat16 where the backend computes bf16 products (see
    /// [`round_conv_bfloat16`]); the bias stays f32.
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.weight = round_conv_bfloat16(dev, &self.weight)?;
        Ok(())
    }
}

/// A convolution's weight `[C_out, C_in / groups, kernel…]` rounded to bfloat16 where the
/// device computes bf16 products ([`Device::round_bfloat16`] of its matrix view `[C_out,
/// C_in / groups · kernel]`, viewed back), else as it is.
pub fn round_conv_bfloat16(dev: &Device, w: &Tensor) -> Result<Tensor> {
    let shape = w.shape().to_vec();
    let c_out = shape.first().copied().unwrap_or(0);
    let matrix = w.reshape(&[c_out, w.numel().checked_div(c_out).unwrap_or(0)])?;
    dev.round_bfloat16(&matrix)?.reshape(&shape)
}
