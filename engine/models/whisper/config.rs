//! Whisper hyper-parameters (field names as in transformers' `WhisperConfig`) and the decoding
//! data a checkpoint carries (suppressed tokens, alignment heads).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::weights::WeightStore;

/// Every released Whisper model uses 64-dimensional attention heads; used only when a
/// checkpoint does not state its head count.
pub const HEAD_DIM: usize = 64;

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

    /// Derive the configuration from tensor shapes (CT2 checkpoints carry no config.json of
    /// this kind). `heads` comes from the checkpoint when it says; else `d_model / HEAD_DIM`.
    pub fn from_weights(store: &dyn WeightStore, heads: Option<(usize, usize)>) -> Result<Self> {
        let path = store.path();
        let shape = |name: &str, rank: usize| -> Result<Vec<usize>> {
            let v = store.view(name).ok_or_else(|| Error::tensor(path, name, "missing from the checkpoint"))?;
            if v.shape.len() != rank {
                return Err(Error::tensor(path, name, format!("has rank {}, expected {rank}", v.shape.len())));
            }
            Ok(v.shape)
        };
        let conv1 = shape("model.encoder.conv1.weight", 3)?;
        let enc_pos = shape("model.encoder.embed_positions.weight", 2)?;
        let dec_pos = shape("model.decoder.embed_positions.weight", 2)?;
        let emb = shape("model.decoder.embed_tokens.weight", 2)?;
        let enc_fc1 = shape("model.encoder.layers.0.fc1.weight", 2)?;
        let dec_fc1 = shape("model.decoder.layers.0.fc1.weight", 2)?;
        let count =
            |prefix: &str| (0..).take_while(|i| store.view(&format!("{prefix}.{i}.fc1.weight")).is_some()).count();
        let d_model = conv1[0];
        let (eh, dh) = heads.unwrap_or((d_model / HEAD_DIM, d_model / HEAD_DIM));
        if eh == 0 || d_model % eh != 0 || dh == 0 || d_model % dh != 0 {
            return Err(Error::config(path, "num_heads", format!("{eh}/{dh} heads do not divide d_model {d_model}")));
        }
        Ok(WhisperConfig {
            d_model,
            encoder_layers: count("model.encoder.layers"),
            encoder_attention_heads: eh,
            decoder_layers: count("model.decoder.layers"),
            decoder_attention_heads: dh,
            encoder_ffn_dim: enc_fc1[0],
            decoder_ffn_dim: dec_fc1[0],
            num_mel_bins: conv1[1],
            vocab_size: emb[0],
            max_source_positions: enc_pos[0],
            max_target_positions: dec_pos[0],
        })
    }

    /// English-only models have 51864 tokens; multilingual ones 51865 or more.
    pub fn is_multilingual(&self) -> bool {
        self.vocab_size >= 51865
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
