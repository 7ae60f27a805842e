//! The context-aware masking layer (`CAMLayer`): a local dilated conv whose output is gated by a
//! mask computed from context — the utterance mean plus the mean of the frame's 100-frame
//! segment (`seg_pooling`: `avg_pool1d(x, 100, 100, ceil_mode=True)`, the last segment averaged
//! over the frames it has, each segment's value repeated over its frames).
//!
//! The mask MLP (`linear1` → ReLU → `linear2` → sigmoid) is made of 1×1 convs, so it acts on each
//! frame's context vector alone; every frame of a segment has the same context, so it is computed
//! once per segment (`[B, C, segments]`) and the mask is spread over the segment's frames by a
//! broadcast multiply. The result equals the reference's per-frame computation.

use crate::backend::{Activation, BinaryOp, Conv1dParams, Device, Padding, Reduce, Tensor};
use crate::error::{Error, Result};
use crate::models::common::layers::Conv1d;
use crate::weights::WeightStore;

use super::config::{CAM_REDUCTION, SEG_LEN};

/// How `frames` split into [`SEG_LEN`]-frame segments, shared by every CAM layer of a forward
/// pass (all run at the same frame rate).
pub struct Segments {
    pub frames: usize,
    pub count: usize,
    /// Frames in each segment, `[count]` (the last segment may be short).
    lengths: Tensor,
}

impl Segments {
    pub fn new(dev: &Device, frames: usize) -> Result<Self> {
        let count = frames.div_ceil(SEG_LEN);
        let lengths: Vec<f32> = (0..count).map(|s| (frames - s * SEG_LEN).min(SEG_LEN) as f32).collect();
        Ok(Segments { frames, count, lengths: dev.upload(&lengths, &[count])? })
    }

    /// Frames once padded to whole segments.
    fn padded(&self) -> usize {
        self.count * SEG_LEN
    }

    /// `x[B, C, frames]` zero-padded to `[B, C, count, SEG_LEN]`.
    fn split(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let (b, c, t) = x.dims3("campplus segments")?;
        let x =
            if self.padded() > t { dev.pad(x, 2, 0, self.padded() - t, Padding::Constant(0.0))? } else { x.clone() };
        x.reshape(&[b, c, self.count, SEG_LEN])
    }

    /// `seg_pooling(x)` before its expansion: each segment's mean, `[B, C, count]`.
    fn means(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let sums = dev.reduce(&self.split(dev, x)?, Reduce::Sum)?;
        dev.binary(&sums, &self.lengths, BinaryOp::Div)
    }

    /// `x[B, C, frames] · mask[B, C, count]`, each segment's mask value over its frames.
    fn gate(&self, dev: &Device, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, c, t) = x.dims3("campplus segments")?;
        let mask = mask.reshape(&[b, c, self.count, 1])?;
        let gated = dev.mul(&self.split(dev, x)?, &mask)?.reshape(&[b, c, self.padded()])?;
        if self.padded() > t {
            dev.slice(&gated, 2, 0, t)
        } else {
            Ok(gated)
        }
    }
}

pub struct CamLayer {
    linear_local: Conv1d,
    linear1: Conv1d,
    linear2: Conv1d,
}

impl CamLayer {
    /// `{p}.linear_local` `[out, bn, k]` (dilated, "same" padding, no bias), `{p}.linear1`
    /// `[bn/2, bn, 1]` and `{p}.linear2` `[out, bn/2, 1]` (with biases).
    pub fn load(
        dev: &Device,
        store: &dyn WeightStore,
        p: &str,
        (bn_channels, out_channels): (usize, usize),
        (kernel, dilation): (usize, usize),
    ) -> Result<Self> {
        let local = Conv1dParams { padding: (kernel - 1) / 2 * dilation, dilation, ..Default::default() };
        let hidden = bn_channels / CAM_REDUCTION;
        let one = Conv1dParams::default();
        let linear_local =
            Conv1d::load(dev, store, &format!("{p}.linear_local"), (bn_channels, out_channels, kernel), local)?;
        let linear1 = Conv1d::load(dev, store, &format!("{p}.linear1"), (bn_channels, hidden, 1), one)?;
        let linear2 = Conv1d::load(dev, store, &format!("{p}.linear2"), (hidden, out_channels, 1), one)?;
        for (conv, name) in [(&linear1, "linear1"), (&linear2, "linear2")] {
            if conv.bias.is_none() {
                return Err(Error::tensor(store.path(), format!("{p}.{name}.bias"), "missing from the checkpoint"));
            }
        }
        Ok(CamLayer { linear_local, linear1, linear2 })
    }

    /// `x[B, bn, T]` → `[B, out, T]`.
    pub fn forward(&self, dev: &Device, x: &Tensor, segments: &Segments) -> Result<Tensor> {
        let (b, c, _) = x.dims3("campplus cam")?;
        let y = self.linear_local.forward(dev, x)?;
        let mean = dev.reduce(x, Reduce::Mean)?.reshape(&[b, c, 1])?;
        let context = dev.add(&segments.means(dev, x)?, &mean)?;
        let hidden = dev.activation(&self.linear1.forward(dev, &context)?, Activation::Relu)?;
        let mask = dev.activation(&self.linear2.forward(dev, &hidden)?, Activation::Sigmoid)?;
        segments.gate(dev, &y, &mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_means_average_only_the_frames_a_segment_has_and_the_gate_spreads_them() {
        let dev = Device::cpu();
        // One channel, 230 frames: segments of 100, 100 and 30 frames.
        let x: Vec<f32> = (0..230).map(|i| i as f32).collect();
        let xt = dev.upload(&x, &[1, 1, 230]).unwrap();
        let seg = Segments::new(&dev, 230).unwrap();
        assert_eq!(seg.count, 3);
        let means = dev.download(&seg.means(&dev, &xt).unwrap()).unwrap();
        assert_eq!(means, vec![49.5, 149.5, 214.5]);
        let mask = dev.upload(&[1.0, 2.0, 3.0], &[1, 1, 3]).unwrap();
        let gated = seg.gate(&dev, &xt, &mask).unwrap();
        assert_eq!(gated.shape(), &[1, 1, 230]);
        let gated = dev.download(&gated).unwrap();
        for (i, g) in gated.iter().enumerate() {
            assert_eq!(*g, x[i] * (1 + i / 100) as f32, "frame {i}");
        }
    }
}
