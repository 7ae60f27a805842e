//! The embedding's tail (pyannote.audio 4.0.7 `resnet.py` `TSTP`, `ResNet.forward_embedding`;
//! `models/blocks/pooling.py` `StatsPool`): weights resampled to the ResNet's frames by
//! `F.interpolate(mode="nearest")`, weighted mean and unbiased standard deviation over time
//! (the device's `stats_pool`, pyannote's `_pool`), then `seg_1` (`nn.Linear`).

use crate::backend::{Device, Tensor};
use crate::error::{Error, Result};
use crate::models::common::layers::Linear;
use crate::weights::WeightStore;

use super::config::WeSpeakerConfig;

/// The source index of each of `output_size` frames when `F.interpolate(mode="nearest")`
/// resamples `input_size` frames (ATen `UpSample.h` `nearest_idx`): the identity for equal
/// sizes, `i / 2` for exactly twice as many, else `min(⌊i · scale⌋, input_size − 1)` with
/// `scale = input_size / output_size`, all in f32 as ATen computes it.
pub fn nearest_indices(input_size: usize, output_size: usize) -> Vec<usize> {
    if output_size == input_size {
        return (0..output_size).collect();
    }
    if output_size == 2 * input_size {
        return (0..output_size).map(|i| i >> 1).collect();
    }
    let scale = input_size as f32 / output_size as f32;
    (0..output_size).map(|i| ((i as f32 * scale).floor() as usize).min(input_size.saturating_sub(1))).collect()
}

/// `weights[B, mask_frames]` (row-major) nearest-resampled to `[B, frames]`.
pub fn interpolate_weights(weights: &[f32], batch: usize, frames: usize) -> Result<Vec<f32>> {
    if batch == 0 || weights.is_empty() || !weights.len().is_multiple_of(batch) {
        return Err(Error::shape(
            "wespeaker weights",
            format!("{} weights for a batch of {batch}: expected [B, mask_frames ≥ 1]", weights.len()),
        ));
    }
    let mask_frames = weights.len() / batch;
    let index = nearest_indices(mask_frames, frames);
    Ok(weights.chunks_exact(mask_frames).flat_map(|row| index.iter().map(|&i| row[i])).collect())
}

/// `seg_1`: `[B, 2 · pooled_channels]` → `[B, embed_dim]`.
pub struct Embedding {
    seg_1: Linear,
}

impl Embedding {
    pub fn load(dev: &Device, store: &dyn WeightStore, c: &WeSpeakerConfig) -> Result<Self> {
        Ok(Embedding { seg_1: Linear::load(dev, store, &c.name("seg_1"), 2 * c.pooled_channels(), c.embed_dim, true)? })
    }

    /// `features[B, C, T]` and optional `weights[B, T]` (already at the features' frame rate) →
    /// `[B, embed_dim]`.
    pub fn forward(&self, dev: &Device, features: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
        let stats = dev.stats_pool(features, weights)?;
        self.seg_1.forward(dev, &stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_matches_torch_interpolate() {
        // torch.nn.functional.interpolate(torch.arange(n)[None, None].float(), size=m,
        // mode="nearest") for these (n, m), torch 2.8.
        assert_eq!(nearest_indices(4, 4), [0, 1, 2, 3]);
        assert_eq!(nearest_indices(3, 6), [0, 0, 1, 1, 2, 2]);
        assert_eq!(nearest_indices(7, 3), [0, 2, 4]);
        assert_eq!(nearest_indices(2, 5), [0, 0, 0, 1, 1]);
        assert_eq!(nearest_indices(1, 3), [0, 0, 0]);
        let down = nearest_indices(589, 125);
        assert_eq!((down[0], down[1], down[62], down[124]), (0, 4, 292, 584));
    }

    #[test]
    fn weights_are_resampled_per_row_and_bad_lengths_refused() {
        let w = interpolate_weights(&[1.0, 0.0, 0.5, 0.25], 2, 4).unwrap();
        assert_eq!(w, [1.0, 1.0, 0.0, 0.0, 0.5, 0.5, 0.25, 0.25]);
        assert!(interpolate_weights(&[1.0, 0.0, 0.5], 2, 4).is_err());
        assert!(interpolate_weights(&[], 1, 4).is_err());
    }
}
