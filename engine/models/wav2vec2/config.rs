//! wav2vec2 hyper-parameters, with transformers' `Wav2Vec2Config` field names (HFC), read from a
//! Hugging Face `config.json` or built from a torchaudio bundle's parameters (TAI).

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// transformers `Wav2Vec2Config.layer_norm_eps` default (and torchaudio's `nn.LayerNorm`).
pub const LAYER_NORM_EPS: f32 = 1e-5;
/// The feature encoder of every wav2vec2 / HuBERT checkpoint WhisperX uses: seven 512-channel
/// convolutions (HFC `conv_dim`, `conv_kernel`, `conv_stride` defaults).
pub const CONV_DIM: [usize; 7] = [512; 7];
pub const CONV_KERNEL: [usize; 7] = [10, 3, 3, 3, 3, 2, 2];
pub const CONV_STRIDE: [usize; 7] = [5, 2, 2, 2, 2, 2, 2];
/// HFC `num_conv_pos_embeddings` and `num_conv_pos_embedding_groups` defaults.
pub const NUM_CONV_POS_EMBEDDINGS: usize = 128;
pub const NUM_CONV_POS_EMBEDDING_GROUPS: usize = 16;
/// Sample rate every wav2vec2 CTC model is trained at.
pub const SAMPLE_RATE: usize = 16_000;

/// How the feature encoder normalises (HFC `feat_extract_norm`; torchaudio `extractor_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatExtractNorm {
    /// `"group"` / `"group_norm"`: GroupNorm(C, C) after the first conv only, statistics over
    /// the whole input (base models).
    Group,
    /// `"layer"` / `"layer_norm"`: LayerNorm over channels after every conv (large, XLSR).
    Layer,
}

/// The checkpoint prefix of the model body (`wav2vec2.encoder…`).
pub const BODY_PREFIX: &str = "wav2vec2";

#[derive(Clone, Debug, PartialEq)]
pub struct Wav2Vec2Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub feat_extract_norm: FeatExtractNorm,
    pub conv_dim: Vec<usize>,
    pub conv_kernel: Vec<usize>,
    pub conv_stride: Vec<usize>,
    pub conv_bias: bool,
    pub num_conv_pos_embeddings: usize,
    pub num_conv_pos_embedding_groups: usize,
    /// Pre-LN encoder (XLSR, large) instead of post-LN (base).
    pub do_stable_layer_norm: bool,
    pub layer_norm_eps: f32,
    pub vocab_size: usize,
}

impl Wav2Vec2Config {
    /// Frames the model emits for `samples` inputs: every conv unpadded, `⌊(L − k)/s⌋ + 1`
    /// (0 once the input is shorter than a kernel). With the standard encoder this is
    /// `⌊(N − 400)/320⌋ + 1` for N ≥ 400: a 20 ms hop and a 25 ms receptive field.
    pub fn frames(&self, samples: usize) -> usize {
        let mut len = samples;
        for (&k, &s) in self.conv_kernel.iter().zip(&self.conv_stride) {
            if len < k {
                return 0;
            }
            len = (len - k) / s + 1;
        }
        len
    }

    /// Input samples per output frame (320 for the standard encoder).
    pub fn hop(&self) -> usize {
        self.conv_stride.iter().product()
    }

    /// Samples the first frame needs (400 for the standard encoder).
    pub fn receptive_field(&self) -> usize {
        let mut field = 1;
        for (&k, &s) in self.conv_kernel.iter().zip(&self.conv_stride).rev() {
            field = (field - 1) * s + k;
        }
        field
    }

    /// Read a transformers `config.json` (`Wav2Vec2ForCTC`). Architectures
    /// with another body are refused by name.
    pub fn from_hf_json(path: &Path, v: &Value) -> Result<Self> {
        // WhisperX loads every Hugging Face model as `Wav2Vec2ForCTC`; other bodies are refused.
        match v.get("model_type").and_then(Value::as_str).unwrap_or("wav2vec2") {
            "wav2vec2" => {}
            other => {
                return Err(Error::config(
                    path,
                    "model_type",
                    format!(
                        "`{other}` is not supported for alignment (only wav2vec2, which WhisperX's \
                         Wav2Vec2ForCTC loads; HuBERT, WavLM, Data2VecAudio, UniSpeech, SEW and conformer bodies \
                         differ)"
                    ),
                ))
            }
        }
        let usize_of = |field: &str, default: Option<usize>| -> Result<usize> {
            match v.get(field) {
                None | Some(Value::Null) => default.ok_or_else(|| Error::config(path, field, "missing")),
                Some(x) => x
                    .as_u64()
                    .filter(|&n| n > 0)
                    .map(|n| n as usize)
                    .ok_or_else(|| Error::config(path, field, format!("must be a positive integer, found {x}"))),
            }
        };
        let list_of = |field: &str, default: &[usize]| -> Result<Vec<usize>> {
            match v.get(field) {
                None | Some(Value::Null) => Ok(default.to_vec()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_u64().filter(|&n| n > 0).map(|n| n as usize).ok_or_else(|| {
                            Error::config(path, field, format!("must hold positive integers, found {x}"))
                        })
                    })
                    .collect(),
                Some(x) => Err(Error::config(path, field, format!("must be a list, found {x}"))),
            }
        };
        let bool_of = |field: &str, default: bool| -> Result<bool> {
            match v.get(field) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(x) => Err(Error::config(path, field, format!("must be true or false, found {x}"))),
            }
        };
        let feat_extract_norm = match v.get("feat_extract_norm").and_then(Value::as_str).unwrap_or("group") {
            "group" => FeatExtractNorm::Group,
            "layer" => FeatExtractNorm::Layer,
            other => {
                return Err(Error::config(
                    path,
                    "feat_extract_norm",
                    format!("must be \"group\" or \"layer\", found `{other}`"),
                ))
            }
        };
        for (field, want) in [("hidden_act", "gelu"), ("feat_extract_activation", "gelu")] {
            if let Some(act) = v.get(field).and_then(Value::as_str) {
                if act != want {
                    return Err(Error::config(path, field, format!("`{act}` is not supported (only exact `gelu`)")));
                }
            }
        }
        if bool_of("add_adapter", false)? {
            return Err(Error::config(path, "add_adapter", "adapter layers are not supported"));
        }
        if bool_of("conv_pos_batch_norm", false)? {
            return Err(Error::config(
                path,
                "conv_pos_batch_norm",
                "a batch-normalised positional conv is not supported",
            ));
        }
        let eps =
            match v.get("layer_norm_eps") {
                None | Some(Value::Null) => LAYER_NORM_EPS,
                Some(x) => x.as_f64().filter(|e| *e > 0.0).ok_or_else(|| {
                    Error::config(path, "layer_norm_eps", format!("must be a positive number, found {x}"))
                })? as f32,
            };
        let c = Wav2Vec2Config {
            hidden_size: usize_of("hidden_size", Some(768))?,
            num_hidden_layers: usize_of("num_hidden_layers", Some(12))?,
            num_attention_heads: usize_of("num_attention_heads", Some(12))?,
            intermediate_size: usize_of("intermediate_size", Some(3072))?,
            feat_extract_norm,
            conv_dim: list_of("conv_dim", &CONV_DIM)?,
            conv_kernel: list_of("conv_kernel", &CONV_KERNEL)?,
            conv_stride: list_of("conv_stride", &CONV_STRIDE)?,
            conv_bias: bool_of("conv_bias", false)?,
            num_conv_pos_embeddings: usize_of("num_conv_pos_embeddings", Some(NUM_CONV_POS_EMBEDDINGS))?,
            num_conv_pos_embedding_groups: usize_of(
                "num_conv_pos_embedding_groups",
                Some(NUM_CONV_POS_EMBEDDING_GROUPS),
            )?,
            do_stable_layer_norm: bool_of("do_stable_layer_norm", false)?,
            layer_norm_eps: eps,
            vocab_size: usize_of("vocab_size", None)?,
        };
        c.check(path)?;
        Ok(c)
    }

    /// The geometry rules the model relies on; errors name the file and the field.
    pub fn check(&self, path: &Path) -> Result<()> {
        let n = self.conv_dim.len();
        if n == 0 || self.conv_kernel.len() != n || self.conv_stride.len() != n {
            return Err(Error::config(
                path,
                "conv_dim",
                format!(
                    "conv_dim, conv_kernel and conv_stride must have the same non-zero length ({}, {}, {})",
                    n,
                    self.conv_kernel.len(),
                    self.conv_stride.len()
                ),
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::config(
                path,
                "num_attention_heads",
                format!("{} does not divide hidden_size {}", self.num_attention_heads, self.hidden_size),
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_conv_pos_embedding_groups) {
            return Err(Error::config(
                path,
                "num_conv_pos_embedding_groups",
                format!("{} does not divide hidden_size {}", self.num_conv_pos_embedding_groups, self.hidden_size),
            ));
        }
        Ok(())
    }
}
