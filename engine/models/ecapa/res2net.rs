//! `SERes2NetBlock` and its parts (speechbrain 1.1.2 `lobes/models/ECAPA_TDNN.py`):
//! - `Res2NetBlock`: the input split into `scale` channel chunks; `y₀ = x₀`, `y₁ = T₀(x₁)`,
//!   `yᵢ = Tᵢ₋₁(xᵢ + yᵢ₋₁)` with `TDNNBlock`s `blocks.{0..scale−2}` (the block's kernel and
//!   dilation, no groups), concatenated back;
//! - `SEBlock`: the masked mean over time → `conv1` (1×1) → ReLU → `conv2` (1×1) → sigmoid,
//!   scaling each channel;
//! - `SERes2NetBlock`: `tdnn1` (1×1) → Res2Net → `tdnn2` (1×1) → SE, plus the input (through
//!   `shortcut`, a 1×1 conv, when the widths differ).

use crate::backend::{Activation, Device, Tensor};
use crate::error::Result;
use crate::weights::WeightStore;

use super::config::EcapaConfig;
use super::pooling::FrameMask;
use super::tdnn::{Conv, PointwiseConv, TdnnBlock};

pub struct Res2NetBlock {
    blocks: Vec<TdnnBlock>,
    /// Channels per chunk.
    width: usize,
}

impl Res2NetBlock {
    /// `{p}.blocks.{0..scale−2}`, each `width → width` with `kernel` and `dilation`.
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        p: &str,
        (channels, scale): (usize, usize),
        (kernel, dilation): (usize, usize),
    ) -> Result<Self> {
        let width = channels / scale;
        let blocks = (0..scale - 1)
            .map(|i| TdnnBlock::load(dev, store, &format!("{p}.blocks.{i}"), (width, width, kernel), (dilation, 1)))
            .collect::<Result<_>>()?;
        Ok(Res2NetBlock { blocks, width })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let chunk = |i: usize| dev.slice(x, 1, i * self.width, self.width);
        let mut ys = vec![chunk(0)?];
        for (i, block) in self.blocks.iter().enumerate() {
            let xi = chunk(i + 1)?;
            let input = if i == 0 { xi } else { dev.add(&xi, &ys[i])? };
            ys.push(block.forward(dev, &input)?);
        }
        dev.concat(&ys.iter().collect::<Vec<_>>(), 1)
    }
}

pub struct SeBlock {
    conv1: PointwiseConv,
    conv2: PointwiseConv,
}

impl SeBlock {
    /// `{p}.conv1.conv.*` `[se, C, 1]` and `{p}.conv2.conv.*` `[C, se, 1]`.
    pub fn load(dev: &Device, store: &dyn WeightStore, p: &str, (channels, se): (usize, usize)) -> Result<Self> {
        Ok(SeBlock {
            conv1: PointwiseConv::load(dev, store, &format!("{p}.conv1"), (channels, se))?,
            conv2: PointwiseConv::load(dev, store, &format!("{p}.conv2"), (se, channels))?,
        })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor, mask: &FrameMask) -> Result<Tensor> {
        let (b, c, _) = x.dims3("ecapa se")?;
        let s = self.conv1.forward(dev, &mask.mean(dev, x)?, Some(Activation::Relu))?;
        let gate = self.conv2.forward(dev, &s, Some(Activation::Sigmoid))?;
        dev.mul(x, &gate.reshape(&[b, c, 1])?)
    }
}

pub struct SeRes2NetBlock {
    shortcut: Option<Conv>,
    tdnn1: TdnnBlock,
    res2net: Res2NetBlock,
    tdnn2: TdnnBlock,
    se: SeBlock,
}

impl SeRes2NetBlock {
    /// `blocks.{i}` (1 ≤ i ≤ number of SE-Res2Net blocks).
    pub fn load(dev: &Device, store: &dyn WeightStore, i: usize, c: &EcapaConfig) -> Result<Self> {
        let p = format!("blocks.{i}");
        let (c_in, c_out, groups) = (c.channels[i - 1], c.channels[i], c.groups[i]);
        let shortcut = if c_in != c_out {
            Some(Conv::load(dev, store, &format!("{p}.shortcut"), (c_in, c_out, 1), (1, 1))?)
        } else {
            None
        };
        Ok(SeRes2NetBlock {
            shortcut,
            tdnn1: TdnnBlock::load(dev, store, &format!("{p}.tdnn1"), (c_in, c_out, 1), (1, groups))?,
            res2net: Res2NetBlock::load(
                dev,
                store,
                &format!("{p}.res2net_block"),
                (c_out, c.res2net_scale),
                (c.kernel_sizes[i], c.dilations[i]),
            )?,
            tdnn2: TdnnBlock::load(dev, store, &format!("{p}.tdnn2"), (c_out, c_out, 1), (1, groups))?,
            se: SeBlock::load(dev, store, &format!("{p}.se_block"), (c_out, c.se_channels))?,
        })
    }

    pub fn forward(&self, dev: &Device, x: &Tensor, mask: &FrameMask) -> Result<Tensor> {
        let residual = match &self.shortcut {
            Some(conv) => conv.forward(dev, x)?,
            None => x.clone(),
        };
        let y = self.tdnn1.forward(dev, x)?;
        let y = self.res2net.forward(dev, &y)?;
        let y = self.tdnn2.forward(dev, &y)?;
        let y = self.se.forward(dev, &y, mask)?;
        dev.add(&y, &residual)
    }
}
