//! Whisper hyper-parameters (field names as in transformers' `WhisperConfig`) and the decoding
//! data a checkpoint carries (suppressed tokens, alignment heads).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::weights::ct2::WhisperDims;

#[derive(Clone, Debug, PartialEq)]
pub struct WhisperConfig {
    pub d_model: usize,
    pub encoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_layers: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub num_mel_bins: usize,
    pub vocab_size: usize,
    /// Encoder positions: 1500 (30 s of 20 ms frames after the stride-2 conv).
    pub max_source_positions: usize,
    /// Decoder context: 448 tokens.
    pub max_target_positions: usize,
}

/// Decoding data stored beside the weights (HF generation_config.json or CT2 config.json).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationData {
    /// Suppressed at every step (the non-speech symbol list; openai's `suppress_tokens = "-1"`).
    pub suppress_tokens: Vec<u32>,
    /// Suppressed at the first sampled step (blank and end-of-text).
    pub begin_suppress_tokens: Vec<u32>,
    /// (layer, head) pairs whose cross-attention tracks time, for DTW word timing.
    pub alignment_heads: Vec<(usize, usize)>,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("invalid JSON: {e}")))
}

fn usize_field(path: &Path, v: &Value, field: &str) -> Result<usize> {
    match v.get(field) {
        None => Err(Error::config(path, field, "missing")),
        Some(x) => x
            .as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| Error::config(path, field, format!("must be a positive integer, found {x}"))),
    }
}

fn ids_field(path: &Path, v: &Value, field: &str) -> Result<Option<Vec<u32>>> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_u64().map(|n| n as u32).ok_or_else(|| Error::config(path, field, format!("non-integer entry {x}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(x) => Err(Error::config(path, field, format!("must be a list of token ids, found {x}"))),
    }
}

fn heads_field(path: &Path, v: &Value, field: &str) -> Result<Option<Vec<(usize, usize)>>> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| {
                match p.as_array().map(|p| (p.first().and_then(Value::as_u64), p.get(1).and_then(Value::as_u64))) {
                    Some((Some(l), Some(h))) => Ok((l as usize, h as usize)),
                    _ => Err(Error::config(path, field, format!("entry {p} is not a [layer, head] pair"))),
                }
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(x) => Err(Error::config(path, field, format!("must be a list of [layer, head] pairs, found {x}"))),
    }
}

impl WhisperConfig {
    /// Parse a transformers `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let v = read_json(path)?;
        let f = |name: &str| usize_field(path, &v, name);
        Ok(WhisperConfig {
            d_model: f("d_model")?,
            encoder_layers: f("encoder_layers")?,
            encoder_attention_heads: f("encoder_attention_heads")?,
            decoder_layers: f("decoder_layers")?,
            decoder_attention_heads: f("decoder_attention_heads")?,
            encoder_ffn_dim: f("encoder_ffn_dim")?,
            decoder_ffn_dim: f("decoder_ffn_dim")?,
            num_mel_bins: f("num_mel_bins")?,
            vocab_size: f("vocab_size")?,
            max_source_positions: f("max_source_positions")?,
            max_target_positions: f("max_target_positions")?,
        })
    }

    /// English-only models have 51864 tokens; multilingual ones 51865 or more.
    pub fn is_multilingual(&self) -> bool {
        self.vocab_size >= 51865
    }
}

/// A CTranslate2 checkpoint's dimensions (read from its tensor shapes and head attributes).
impl From<WhisperDims> for WhisperConfig {
    fn from(d: WhisperDims) -> Self {
        WhisperConfig {
            d_model: d.d_model,
            encoder_layers: d.encoder_layers,
            encoder_attention_heads: d.encoder_attention_heads,
            decoder_layers: d.decoder_layers,
            decoder_attention_heads: d.decoder_attention_heads,
            encoder_ffn_dim: d.encoder_ffn_dim,
            decoder_ffn_dim: d.decoder_ffn_dim,
            num_mel_bins: d.num_mel_bins,
            vocab_size: d.vocab_size,
            max_source_positions: d.max_source_positions,
            max_target_positions: d.max_target_positions,
        }
    }
}

impl GenerationData {
    /// Read from a CTranslate2 `config.json` (`suppress_ids`, `suppress_ids_begin`, `alignment_heads`).
    pub fn from_ct2_json(path: &Path) -> Result<Self> {
        let v = read_json(path)?;
        Ok(GenerationData {
            suppress_tokens: ids_field(path, &v, "suppress_ids")?.unwrap_or_default(),
            begin_suppress_tokens: ids_field(path, &v, "suppress_ids_begin")?.unwrap_or_default(),
            alignment_heads: heads_field(path, &v, "alignment_heads")?.unwrap_or_default(),
        })
    }

    /// Read from HF `generation_config.json`, falling back to fields of `config.json`.
    pub fn from_hf_json(generation: Option<&Path>, config: &Path) -> Result<Self> {
        let mut out = GenerationData::default();
        let mut sources: Vec<(PathBuf, Value)> = Vec::new();
        if let Some(g) = generation.filter(|g| g.is_file()) {
            sources.push((g.to_path_buf(), read_json(g)?));
        }
        sources.push((config.to_path_buf(), read_json(config)?));
        for (p, v) in sources.iter().rev() {
            if let Some(s) = ids_field(p, v, "suppress_tokens")? {
                out.suppress_tokens = s;
            }
            if let Some(s) = ids_field(p, v, "begin_suppress_tokens")? {
                out.begin_suppress_tokens = s;
            }
            if let Some(h) = heads_field(p, v, "alignment_heads")? {
                out.alignment_heads = h;
            }
        }
        Ok(out)
    }
}
