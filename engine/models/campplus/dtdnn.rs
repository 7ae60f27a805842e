//! The D-TDNN trunk (`xvector`): `TDNNLayer`, `CAMDenseTDNNLayer`, `CAMDenseTDNNBlock` and
//! `TransitLayer`.

use crate::backend::{Activation, Conv1dParams, Device, Tensor};
use crate::error::Result;
use crate::models::common::layers::Conv1d;
use crate::weights::WeightStore;

use super::cam::{CamLayer, Segments};
use super::config::{BlockConfig, CamPlusPlusConfig, TDNN_KERNEL, TDNN_STRIDE};
use super::norm::{BatchNorm, ConvBn1d};

/// `TDNNLayer`: `relu(BN(conv1d(x)))`, kernel 5, stride 2, padding 2, the norm folded into the
/// conv. `[B, head_channels, T]` → `[B, init_channels, ⌈T/2⌉]`.
pub struct TdnnLayer {
    linear: ConvBn1d,
}

impl TdnnLayer {
    /// `{p}.linear`, `{p}.nonlinear.batchnorm`.
    pub fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &CamPlusPlusConfig) -> Result<Self> {
        let params = Conv1dParams { stride: TDNN_STRIDE, padding: TDNN_KERNEL / 2, ..Default::default() };
        let linear = ConvBn1d::load(
            dev,
            store,
            &format!("{p}.linear"),
            (&format!("{p}.nonlinear.batchnorm"), true),
            (c.head_channels(), c.init_channels, TDNN_KERNEL),
            params,
        )?;
        Ok(TdnnLayer { linear })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        dev.activation(&self.linear.forward(dev, x)?, Activation::Relu)
    }

    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.linear.round_bfloat16(dev)
    }

    pub fn weight_dtype(&self) -> &'static str {
        self.linear.weight_dtype()
    }
}

/// `CAMDenseTDNNLayer`: `cam_layer(relu(BN2(linear1(relu(BN1(x))))))`, BN2 folded into
/// `linear1`. `[B, in, T]` → `[B, growth_rate, T]`.
struct CamDenseTdnnLayer {
    nonlinear1: BatchNorm,
    linear1: ConvBn1d,
    cam_layer: CamLayer,
}

impl CamDenseTdnnLayer {
    fn load(
        dev: &Device,
        store: &dyn WeightStore,
        p: &str,
        in_channels: usize,
        c: &CamPlusPlusConfig,
        block: &BlockConfig,
    ) -> Result<Self> {
        let bn = c.bn_channels();
        Ok(CamDenseTdnnLayer {
            nonlinear1: BatchNorm::load(dev, store, &format!("{p}.nonlinear1.batchnorm"), in_channels)?,
            linear1: ConvBn1d::load(
                dev,
                store,
                &format!("{p}.linear1"),
                (&format!("{p}.nonlinear2.batchnorm"), true),
                (in_channels, bn, 1),
                Conv1dParams::default(),
            )?,
            cam_layer: CamLayer::load(
                dev,
                store,
                &format!("{p}.cam_layer"),
                (bn, c.growth_rate),
                (block.kernel_size, block.dilation),
            )?,
        })
    }

    fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.linear1.round_bfloat16(dev)
    }

    fn forward(&self, dev: &Device, x: &Tensor, segments: &Segments) -> Result<Tensor> {
        let h = self.nonlinear1.forward_relu(dev, x)?;
        let h = dev.activation(&self.linear1.forward(dev, &h)?, Activation::Relu)?;
        self.cam_layer.forward(dev, &h, segments)
    }
}

/// `CAMDenseTDNNBlock`: each layer's output is appended to its input (dense connectivity).
/// `[B, in, T]` → `[B, in + layers · growth_rate, T]`.
pub struct CamDenseTdnnBlock {
    layers: Vec<CamDenseTdnnLayer>,
}

impl CamDenseTdnnBlock {
    /// `{p}.tdnnd{1..=num_layers}`.
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        p: &str,
        in_channels: usize,
        c: &CamPlusPlusConfig,
        block: &BlockConfig,
    ) -> Result<Self> {
        let layers = (0..block.num_layers)
            .map(|i| {
                let prefix = format!("{p}.tdnnd{}", i + 1);
                CamDenseTdnnLayer::load(dev, store, &prefix, in_channels + i * c.growth_rate, c, block)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CamDenseTdnnBlock { layers })
    }

    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.layers.iter_mut().try_for_each(|l| l.round_bfloat16(dev))
    }

    pub fn forward(&self, dev: &Device, x: &Tensor, segments: &Segments) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            let new = layer.forward(dev, &x, segments)?;
            x = dev.concat(&[&x, &new], 1)?;
        }
        Ok(x)
    }
}

/// `TransitLayer(bias=False)`: `linear(relu(BN(x)))`, a 1×1 conv halving the channels.
pub struct TransitLayer {
    nonlinear: BatchNorm,
    linear: Conv1d,
}

impl TransitLayer {
    /// `{p}.nonlinear.batchnorm`, `{p}.linear`.
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        p: &str,
        in_channels: usize,
        out_channels: usize,
    ) -> Result<Self> {
        Ok(TransitLayer {
            nonlinear: BatchNorm::load(dev, store, &format!("{p}.nonlinear.batchnorm"), in_channels)?,
            linear: Conv1d::load(
                dev,
                store,
                &format!("{p}.linear"),
                (in_channels, out_channels, 1),
                Conv1dParams::default(),
            )?,
        })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        self.linear.forward(dev, &self.nonlinear.forward_relu(dev, x)?)
    }

    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.linear.round_bfloat16(dev)
    }
}
