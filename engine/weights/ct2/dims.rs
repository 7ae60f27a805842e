//! The numbers a Whisper config needs, read off tensor shapes (by HF name) and head counts.

use crate::error::{Error, Result};
use crate::weights::WeightStore;

/// Whisper's hyper-parameters, named as in Hugging Face's `WhisperConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WhisperDims {
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub num_mel_bins: usize,
    pub vocab_size: usize,
    pub max_source_positions: usize,
    pub max_target_positions: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
}

impl WhisperDims {
    /// Derive the dims from `store`'s tensor shapes. Head counts are not visible in any shape
    /// (they only split `d_model`), so the caller supplies them.
    pub fn from_store(store: &dyn WeightStore, encoder_heads: usize, decoder_heads: usize) -> Result<Self> {
        let shape = |name: &str| -> Result<Vec<usize>> {
            store
                .view(name)
                .map(|v| v.shape)
                .ok_or_else(|| Error::tensor(store.path(), name, "missing from the checkpoint"))
        };
        let dim = |name: &str, axis: usize| -> Result<usize> {
            let s = shape(name)?;
            s.get(axis).copied().ok_or_else(|| {
                Error::tensor(store.path(), name, format!("has shape {s:?}, expected at least {} axes", axis + 1))
            })
        };

        let embed = "model.decoder.embed_tokens.weight";
        let d_model = dim(embed, 1)?;
        let vocab_size = dim(embed, 0)?;
        let encoder_layers = layer_count(store, "model.encoder.layers.")?;
        let decoder_layers = layer_count(store, "model.decoder.layers.")?;
        for (heads, field) in [(encoder_heads, "encoder_attention_heads"), (decoder_heads, "decoder_attention_heads")] {
            if heads == 0 || d_model % heads != 0 {
                return Err(Error::config(
                    store.path(),
                    field,
                    format!("{heads} heads do not divide d_model {d_model}"),
                ));
            }
        }
        Ok(WhisperDims {
            d_model,
            encoder_layers,
            decoder_layers,
            encoder_attention_heads: encoder_heads,
            decoder_attention_heads: decoder_heads,
            num_mel_bins: dim("model.encoder.conv1.weight", 1)?,
            vocab_size,
            max_source_positions: dim("model.encoder.embed_positions.weight", 0)?,
            max_target_positions: dim("model.decoder.embed_positions.weight", 0)?,
            encoder_ffn_dim: dim("model.encoder.layers.0.fc1.weight", 0)?,
            decoder_ffn_dim: dim("model.decoder.layers.0.fc1.weight", 0)?,
        })
    }
}

/// Number of layers under `prefix` (`model.encoder.layers.`), checking the indices run 0..n.
fn layer_count(store: &dyn WeightStore, prefix: &str) -> Result<usize> {
    let mut indices: Vec<usize> =
        store.names().iter().filter_map(|n| n.strip_prefix(prefix)?.split('.').next()?.parse().ok()).collect();
    indices.sort_unstable();
    indices.dedup();
    if indices.is_empty() {
        return Err(Error::tensor(store.path(), format!("{prefix}0"), "no layers found"));
    }
    if let Some((expected, _)) = indices.iter().enumerate().find(|(i, &got)| *i != got) {
        return Err(Error::tensor(store.path(), format!("{prefix}{expected}"), "missing: layer indices have a gap"));
    }
    Ok(indices.len())
}
