//! The FCM head (`FCM`, `BasicResBlock`): 2-D convolutions over (frequency, time) that downsample
//! frequency by 8 and keep every frame, then frequency is folded into channels.

use crate::backend::{Activation, Conv2dParams, Device, Tensor};
use crate::error::Result;
use crate::weights::WeightStore;

use super::config::{CamPlusPlusConfig, FCM_KERNEL, FCM_NUM_BLOCKS};
use super::norm::ConvBn2d;

/// A 3×3 conv with padding 1 and stride `(freq_stride, 1)`.
fn conv3(freq_stride: usize) -> Conv2dParams {
    Conv2dParams { stride: (freq_stride, 1), padding: (1, 1), ..Default::default() }
}

/// `BasicResBlock`: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, the shortcut a 1×1
/// conv + norm when the block changes stride or width, else the identity.
struct BasicResBlock {
    conv1: ConvBn2d,
    conv2: ConvBn2d,
    shortcut: Option<ConvBn2d>,
}

impl BasicResBlock {
    fn load(
        dev: &Device,
        store: &dyn WeightStore,
        p: &str,
        in_planes: usize,
        planes: usize,
        stride: usize,
    ) -> Result<Self> {
        let conv1 = ConvBn2d::load(
            dev,
            store,
            &format!("{p}.conv1"),
            &format!("{p}.bn1"),
            (in_planes, planes, FCM_KERNEL),
            conv3(stride),
        )?;
        let conv2 = ConvBn2d::load(
            dev,
            store,
            &format!("{p}.conv2"),
            &format!("{p}.bn2"),
            (planes, planes, FCM_KERNEL),
            conv3(1),
        )?;
        let shortcut = if stride != 1 || in_planes != planes {
            let params = Conv2dParams { stride: (stride, 1), ..Default::default() };
            let (conv, bn) = (format!("{p}.shortcut.0"), format!("{p}.shortcut.1"));
            Some(ConvBn2d::load(dev, store, &conv, &bn, (in_planes, planes, 1), params)?)
        } else {
            None
        };
        Ok(BasicResBlock { conv1, conv2, shortcut })
    }

    fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.conv1.round_bfloat16(dev)?;
        self.conv2.round_bfloat16(dev)?;
        self.shortcut.as_mut().map_or(Ok(()), |s| s.round_bfloat16(dev))
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

pub struct Fcm {
    conv1: ConvBn2d,
    /// `layer1` then `layer2`.
    blocks: Vec<BasicResBlock>,
    conv2: ConvBn2d,
}

impl Fcm {
    /// `{p}.conv1`, `{p}.bn1`, `{p}.layer{1,2}.{0,1}`, `{p}.conv2`, `{p}.bn2`.
    pub fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &CamPlusPlusConfig) -> Result<Self> {
        let m = c.m_channels;
        let conv1 =
            ConvBn2d::load(dev, store, &format!("{p}.conv1"), &format!("{p}.bn1"), (1, m, FCM_KERNEL), conv3(1))?;
        let mut blocks = Vec::new();
        for (layer, &n) in FCM_NUM_BLOCKS.iter().enumerate() {
            for i in 0..n {
                let stride = if i == 0 { 2 } else { 1 };
                blocks.push(BasicResBlock::load(dev, store, &format!("{p}.layer{}.{i}", layer + 1), m, m, stride)?);
            }
        }
        let conv2 =
            ConvBn2d::load(dev, store, &format!("{p}.conv2"), &format!("{p}.bn2"), (m, m, FCM_KERNEL), conv3(2))?;
        Ok(Fcm { conv1, blocks, conv2 })
    }

    /// The residual blocks' convs and the last conv in bfloat16 where the device computes bf16
    /// products; the first conv (one input channel: nine products an output) stays f32.
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.blocks.iter_mut().try_for_each(|b| b.round_bfloat16(dev))?;
        self.conv2.round_bfloat16(dev)
    }

    /// `x[B, F, T]` → `[B, m_channels · F/8, T]`.
    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let (b, f, t) = x.dims3("campplus fcm")?;
        let x = x.reshape(&[b, 1, f, t])?;
        let mut out = dev.activation(&self.conv1.forward(dev, &x)?, Activation::Relu)?;
        for block in &self.blocks {
            out = block.forward(dev, &out)?;
        }
        let out = dev.activation(&self.conv2.forward(dev, &out)?, Activation::Relu)?;
        let s = out.shape().to_vec();
        out.reshape(&[s[0], s[1] * s[2], s[3]])
    }
}
