//! WeSpeaker ResNet34 hyper-parameters, with the reference's names (pyannote.audio 4.0.7
//! `models/embedding/wespeaker/resnet.py` `ResNet.__init__`, `ResNet34`), read from the
//! checkpoint's shapes.

use crate::error::{Error, Result};
use crate::weights::WeightStore;

/// `nn.BatchNorm2d`'s default epsilon (every norm of the model).
pub const BATCH_NORM_EPS: f32 = 1e-5;
/// `ResNet34`: `BasicBlock`s per layer.
pub const NUM_BLOCKS: [usize; 4] = [3, 4, 6, 3];
/// The first block of `layer{2,3,4}` has stride 2 (on frequency and time); `layer1` stride 1.
pub const LAYER_STRIDES: [usize; 4] = [1, 2, 2, 2];
/// `layer{i}` has `m_channels · LAYER_WIDTHS[i]` channels.
pub const LAYER_WIDTHS: [usize; 4] = [1, 2, 4, 8];
/// Every conv but the shortcuts is 3×3 with padding 1.
pub const KERNEL: usize = 3;
/// The three stride-2 layers divide frequency (and time, rounding up) by 8.
pub const FREQ_DOWNSAMPLE: usize = 8;

/// The state-dict prefix of the ResNet inside pyannote's `WeSpeakerResNet34` (`self.resnet`).
pub const PYANNOTE_PREFIX: &str = "resnet.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeSpeakerConfig {
    /// Mel bins of the input fbank (`feat_dim`, pyannote's `num_mel_bins`: 80).
    pub feat_dim: usize,
    /// Channels of `conv1` and `layer1` (32 in `ResNet34`).
    pub m_channels: usize,
    /// Output size (`embed_dim`: 256 for `wespeaker-voxceleb-resnet34-LM`).
    pub embed_dim: usize,
    /// Where the ResNet's tensors live in the state dict: [`PYANNOTE_PREFIX`] in pyannote's
    /// checkpoint, empty in a bare WeSpeaker `ResNet` state dict.
    pub prefix: String,
}

impl Default for WeSpeakerConfig {
    /// pyannote's `WeSpeakerResNet34()`: `ResNet34(80, 256, pooling_func="TSTP", two_emb_layer=False)`.
    fn default() -> Self {
        WeSpeakerConfig { feat_dim: 80, m_channels: 32, embed_dim: 256, prefix: PYANNOTE_PREFIX.to_string() }
    }
}

/// The shape of `name`, or an error naming the file and the tensor.
fn shape_of(store: &dyn WeightStore, name: &str) -> Result<Vec<usize>> {
    store.view(name).map(|v| v.shape).ok_or_else(|| Error::tensor(store.path(), name, "missing from the checkpoint"))
}

impl WeSpeakerConfig {
    /// The hyper-parameters a state dict implies: `m_channels` from `conv1.weight`, `embed_dim`
    /// and the input mel bins from `seg_1.weight` (`[embed_dim, 2 · 8m · feat_dim/8]`). The
    /// layout (3, 4, 6, 3 blocks) is ResNet34's; every tensor's shape is checked when the model
    /// loads. A checkpoint with `seg_2` (`two_emb_layer=True`) is refused.
    pub fn from_store(store: &dyn WeightStore) -> Result<Self> {
        let prefix = if store.view(&format!("{PYANNOTE_PREFIX}conv1.weight")).is_some()
            || store.view("conv1.weight").is_none()
        {
            PYANNOTE_PREFIX
        } else {
            ""
        };
        let conv1 = format!("{prefix}conv1.weight");
        let shape = shape_of(store, &conv1)?;
        if shape.len() != 4 || shape[1] != 1 || shape[2] != KERNEL || shape[3] != KERNEL || shape[0] == 0 {
            return Err(Error::tensor(store.path(), conv1, format!("has shape {shape:?}, expected [m, 1, 3, 3]")));
        }
        let m_channels = shape[0];
        let seg_1 = format!("{prefix}seg_1.weight");
        let shape = shape_of(store, &seg_1)?;
        let stats_per_bin = 2 * m_channels * LAYER_WIDTHS[3];
        if shape.len() != 2 || shape[0] == 0 || shape[1] == 0 || !shape[1].is_multiple_of(stats_per_bin) {
            return Err(Error::tensor(
                store.path(),
                seg_1,
                format!(
                    "has shape {shape:?}, expected [embed_dim, a multiple of 2 · 8 · m_channels = {stats_per_bin}]"
                ),
            ));
        }
        let seg_2 = format!("{prefix}seg_2.weight");
        if store.view(&seg_2).is_some() {
            return Err(Error::tensor(
                store.path(),
                seg_2,
                "present: a two_emb_layer=True ResNet, which pyannote's WeSpeakerResNet34 never builds",
            ));
        }
        let c = WeSpeakerConfig {
            feat_dim: shape[1] / stats_per_bin * FREQ_DOWNSAMPLE,
            m_channels,
            embed_dim: shape[0],
            prefix: prefix.to_string(),
        };
        Ok(c)
    }

    /// `(in_planes, planes, stride)` of every `BasicBlock`, layer by layer (`_make_layer`).
    pub fn blocks(&self) -> Vec<Vec<(usize, usize, usize)>> {
        let mut in_planes = self.m_channels;
        NUM_BLOCKS
            .iter()
            .zip(LAYER_STRIDES)
            .zip(LAYER_WIDTHS)
            .map(|((&n, stride), width)| {
                let planes = self.m_channels * width;
                (0..n)
                    .map(|i| {
                        let block = (in_planes, planes, if i == 0 { stride } else { 1 });
                        in_planes = planes;
                        block
                    })
                    .collect()
            })
            .collect()
    }

    /// Frequency bins after `layer4`: `feat_dim` halved three times, rounding up (10 for 80).
    pub fn out_freq(&self) -> usize {
        (0..3).fold(self.feat_dim, |f, _| f.div_ceil(2))
    }

    /// Channels the pooling sees, `8m · out_freq` (TSTP's `rearrange` folds frequency into
    /// channels): 2560.
    pub fn pooled_channels(&self) -> usize {
        self.m_channels * LAYER_WIDTHS[3] * self.out_freq()
    }

    /// ResNet frames of `fbank_frames` input frames: three stride-2 3×3 convs with padding 1,
    /// each `⌈T / 2⌉` (pyannote's `ResNet.num_frames`).
    pub fn num_frames(&self, fbank_frames: usize) -> usize {
        (0..3).fold(fbank_frames, |t, _| t.div_ceil(2))
    }

    /// `{prefix}{name}`.
    pub fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_pyannotes_resnet34() {
        let c = WeSpeakerConfig::default();
        let blocks = c.blocks();
        assert_eq!(blocks.iter().map(Vec::len).collect::<Vec<_>>(), NUM_BLOCKS);
        assert_eq!(blocks[0][0], (32, 32, 1));
        assert_eq!(blocks[1][0], (32, 64, 2));
        assert_eq!(blocks[1][1], (64, 64, 1));
        assert_eq!(blocks[3][0], (128, 256, 2));
        assert_eq!(blocks[3][2], (256, 256, 1));
        assert_eq!(c.out_freq(), 10);
        // `ResNet.stats_dim = int(feat_dim / 8) * m_channels * 8`.
        assert_eq!(c.pooled_channels(), 2560);
        // 10 s: 998 fbank frames → 125 ResNet frames; one frame stays one.
        assert_eq!([1, 2, 8, 9, 998].map(|t| c.num_frames(t)), [1, 1, 1, 2, 125]);
    }
}
