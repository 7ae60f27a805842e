//! The ResNet body (pyannote.audio 4.0.7 `models/embedding/wespeaker/resnet.py` `ResNet.forward_frames`,
//! `BasicBlock`): `relu(bn1(conv1(fbank)))` then `layer1..layer4`, on `[B, 1, F, T]` (frequency as
//! height, time as width). Every batch norm follows a conv and is folded into it at load time.

use crate::backend::{Activation, Conv2dParams, Device, Tensor};
use crate::error::Result;
use crate::models::campplus::norm::ConvBn2d;
use crate::weights::WeightStore;

use super::config::{WeSpeakerConfig, KERNEL};

/// A 3×3 conv with padding 1 and the same stride on frequency and time.
fn conv3(stride: usize) -> Conv2dParams {
    Conv2dParams { stride: (stride, stride), padding: (1, 1), ..Default::default() }
}

/// `BasicBlock`: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`; the shortcut is a 1×1
/// conv + norm (`shortcut.0`, `shortcut.1`) when the block changes stride or width, else the
/// identity.
struct BasicBlock {
    conv1: ConvBn2d,
    conv2: ConvBn2d,
    shortcut: Option<ConvBn2d>,
}

impl BasicBlock {
    fn load(
        dev: &Device,
        store: &dyn WeightStore,
        p: &str,
        (in_planes, planes, stride): (usize, usize, usize),
    ) -> Result<Self> {
        let conv_bn = |conv: &str, bn: &str, shape: (usize, usize, usize), params: Conv2dParams| {
            ConvBn2d::load(dev, store, &format!("{p}.{conv}"), &format!("{p}.{bn}"), shape, params)
        };
        let conv1 = conv_bn("conv1", "bn1", (in_planes, planes, KERNEL), conv3(stride))?;
        let conv2 = conv_bn("conv2", "bn2", (planes, planes, KERNEL), conv3(1))?;
        let shortcut = if stride != 1 || in_planes != planes {
            let params = Conv2dParams { stride: (stride, stride), ..Default::default() };
            Some(conv_bn("shortcut.0", "shortcut.1", (in_planes, planes, 1), params)?)
        } else {
            None
        };
        Ok(BasicBlock { conv1, conv2, shortcut })
    }

    fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let out = dev.activation(&self.conv1.forward(dev, x)?, Activation::Relu)?;
        let out = self.conv2.forward(dev, &out)?;
        let skip = match &self.shortcut {
            Some(s) => s.forward(dev, x)?,
            None => x.clone(),
        };
        dev.activation(&dev.add(&out, &skip)?, Activation::Relu)
    }
}

pub struct ResNet {
    conv1: ConvBn2d,
    /// `layer1.0` .. `layer4.2`, in order.
    blocks: Vec<BasicBlock>,
}

impl ResNet {
    /// `{prefix}conv1`, `{prefix}bn1`, `{prefix}layer{i}.{j}.*`.
    pub fn load(dev: &Device, store: &dyn WeightStore, c: &WeSpeakerConfig) -> Result<Self> {
        let conv1 = ConvBn2d::load(dev, store, &c.name("conv1"), &c.name("bn1"), (1, c.m_channels, KERNEL), conv3(1))?;
        let mut blocks = Vec::new();
        for (layer, shapes) in c.blocks().into_iter().enumerate() {
            for (j, shape) in shapes.into_iter().enumerate() {
                blocks.push(BasicBlock::load(dev, store, &c.name(&format!("layer{}.{j}", layer + 1)), shape)?);
            }
        }
        Ok(ResNet { conv1, blocks })
    }

    /// `fbank[B, T, F]` → `[B, 8m · ⌈F/8⌉, T']`: `forward_frames`, then TSTP's
    /// `rearrange("batch dimension channel frames -> batch (dimension channel) frames")`.
    pub fn forward(&self, dev: &Device, fbank: &Tensor) -> Result<Tensor> {
        let (b, t, f) = fbank.dims3("wespeaker resnet")?;
        let x = dev.permute(fbank, &[0, 2, 1])?.reshape(&[b, 1, f, t])?;
        let mut out = dev.activation(&self.conv1.forward(dev, &x)?, Activation::Relu)?;
        for block in &self.blocks {
            out = block.forward(dev, &out)?;
        }
        let s = out.shape().to_vec();
        out.reshape(&[s[0], s[1] * s[2], s[3]])
    }
}
