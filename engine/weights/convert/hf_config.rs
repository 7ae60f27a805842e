//! `config.json` and `generation_config.json` in Hugging Face's Whisper layout, built from a
//! CTranslate2 checkpoint's dims and attributes, its own `config.json`, and `tokenizer.json`.
//!
//! Field names and fixed values follow openai/whisper-tiny.en and openai/whisper-base on the
//! Hugging Face hub (transformers' `WhisperConfig` / `GenerationConfig`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::weights::ct2::WhisperDims;
use crate::weights::DType;

/// transformers' rule: multilingual vocabularies have 51865 entries or more (English-only 51864).
pub const MULTILINGUAL_MIN_VOCAB: usize = 51865;
/// `WhisperConfig`'s default `bos_token_id`, which every openai/whisper-* config keeps.
const HF_BOS_TOKEN_ID: i64 = 50257;
/// openai/whisper's `max_initial_timestamp` (1.0 s) in 20 ms timestamp steps.
const MAX_INITIAL_TIMESTAMP_INDEX: i64 = 50;
/// CTranslate2's `Activation` enum value for exact (erf) GELU (common_spec.py).
const CT2_ACTIVATION_GELU: i64 = 3;

/// The parts of CTranslate2's `config.json` for Whisper that HF needs.
#[derive(Debug)]
pub struct Ct2Config {
    /// `[layer, head]` pairs whose cross-attention tracks word timing; absent in some exports.
    pub alignment_heads: Option<Vec<[i64; 2]>>,
    /// Token ids of the language tokens (multilingual models), in Whisper's language order.
    pub lang_ids: Vec<i64>,
    /// HF `suppress_tokens`.
    pub suppress_ids: Vec<i64>,
    /// HF `begin_suppress_tokens`.
    pub suppress_ids_begin: Vec<i64>,
}

impl Ct2Config {
    /// Read `path`; each field is checked on its own so that an error names it.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let doc: serde_json::Map<String, Value> =
            serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not a JSON object: {e}")))?;
        fn field<T: serde::de::DeserializeOwned>(
            path: &Path,
            doc: &serde_json::Map<String, Value>,
            name: &str,
        ) -> Result<Option<T>> {
            doc.get(name)
                .map(|v| serde_json::from_value(v.clone()).map_err(|e| Error::config(path, name, e.to_string())))
                .transpose()
        }
        let required = |name: &str| -> Result<Vec<i64>> {
            field(path, &doc, name)?.ok_or_else(|| Error::config(path, name, "missing"))
        };
        Ok(Ct2Config {
            alignment_heads: field(path, &doc, "alignment_heads")?,
            lang_ids: field(path, &doc, "lang_ids")?.unwrap_or_default(),
            suppress_ids: required("suppress_ids")?,
            suppress_ids_begin: required("suppress_ids_begin")?,
        })
    }
}

/// Special-token ids, looked up by their text in `tokenizer.json`'s `added_tokens` (they shift
/// by one between English-only and multilingual vocabularies, so they cannot be constants).
#[derive(Debug)]
pub struct SpecialTokens {
    pub end_of_text: i64,
    pub start_of_transcript: i64,
    pub no_timestamps: i64,
    pub start_of_prev: Option<i64>,
    pub transcribe: Option<i64>,
    pub translate: Option<i64>,
    /// Every added token: id -> text (to name the language ids).
    pub by_id: BTreeMap<i64, String>,
}

#[derive(Deserialize)]
struct TokenizerJson {
    added_tokens: Vec<AddedToken>,
}

#[derive(Deserialize)]
struct AddedToken {
    id: i64,
    content: String,
}

impl SpecialTokens {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let parsed: TokenizerJson =
            serde_json::from_str(&text).map_err(|e| Error::config(path, "added_tokens", e.to_string()))?;
        let by_text: BTreeMap<&str, i64> = parsed.added_tokens.iter().map(|t| (t.content.as_str(), t.id)).collect();
        let required = |token: &str| {
            by_text
                .get(token)
                .copied()
                .ok_or_else(|| Error::config(path, "added_tokens", format!("no `{token}` token")))
        };
        Ok(SpecialTokens {
            end_of_text: required("<|endoftext|>")?,
            start_of_transcript: required("<|startoftranscript|>")?,
            no_timestamps: required("<|notimestamps|>")?,
            start_of_prev: by_text.get("<|startofprev|>").copied(),
            transcribe: by_text.get("<|transcribe|>").copied(),
            translate: by_text.get("<|translate|>").copied(),
            by_id: parsed.added_tokens.iter().map(|t| (t.id, t.content.clone())).collect(),
        })
    }
}

/// What the checkpoint itself says beyond the dims.
pub struct ModelFacts {
    pub dims: WhisperDims,
    pub dtype: DType,
    pub scale_embedding: bool,
    pub activation: Option<i64>,
}

fn torch_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        _ => "float32",
    }
}

fn is_multilingual(dims: &WhisperDims) -> bool {
    dims.vocab_size >= MULTILINGUAL_MIN_VOCAB
}

/// `config.json` (transformers `WhisperConfig`).
pub fn config_json(path: &Path, facts: &ModelFacts, ct2: &Ct2Config, tokens: &SpecialTokens) -> Result<Value> {
    let d = &facts.dims;
    if let Some(id) = facts.activation.filter(|&id| id != CT2_ACTIVATION_GELU) {
        return Err(Error::config(
            path,
            "decoder/activation",
            format!("activation id {id}; Whisper uses GELU ({CT2_ACTIVATION_GELU})"),
        ));
    }
    // English-only checkpoints force <|notimestamps|> at position 1 (as openai/whisper-tiny.en's
    // config does); the multilingual default forces a language, which we leave to the caller.
    let forced_decoder_ids = if is_multilingual(d) { Value::Null } else { json!([[1, tokens.no_timestamps]]) };
    Ok(json!({
        "activation_dropout": 0.0,
        "activation_function": "gelu",
        "architectures": ["WhisperForConditionalGeneration"],
        "attention_dropout": 0.0,
        "begin_suppress_tokens": ct2.suppress_ids_begin,
        "bos_token_id": HF_BOS_TOKEN_ID,
        "d_model": d.d_model,
        "decoder_attention_heads": d.decoder_attention_heads,
        "decoder_ffn_dim": d.decoder_ffn_dim,
        "decoder_layerdrop": 0.0,
        "decoder_layers": d.decoder_layers,
        "decoder_start_token_id": tokens.start_of_transcript,
        "dropout": 0.0,
        "encoder_attention_heads": d.encoder_attention_heads,
        "encoder_ffn_dim": d.encoder_ffn_dim,
        "encoder_layerdrop": 0.0,
        "encoder_layers": d.encoder_layers,
        "eos_token_id": tokens.end_of_text,
        "forced_decoder_ids": forced_decoder_ids,
        "init_std": 0.02,
        "is_encoder_decoder": true,
        "max_length": d.max_target_positions,
        "max_source_positions": d.max_source_positions,
        "max_target_positions": d.max_target_positions,
        "model_type": "whisper",
        "num_hidden_layers": d.encoder_layers,
        "num_mel_bins": d.num_mel_bins,
        "pad_token_id": tokens.end_of_text,
        "scale_embedding": facts.scale_embedding,
        "suppress_tokens": ct2.suppress_ids,
        "tie_word_embeddings": true,
        "torch_dtype": torch_dtype(facts.dtype),
        "use_cache": true,
        "vocab_size": d.vocab_size,
    }))
}

/// `generation_config.json` (transformers `GenerationConfig` with Whisper's extra fields).
pub fn generation_config_json(
    path: &Path,
    facts: &ModelFacts,
    ct2: &Ct2Config,
    tokens: &SpecialTokens,
) -> Result<Value> {
    let d = &facts.dims;
    let multilingual = is_multilingual(d);
    let mut g = json!({
        "begin_suppress_tokens": ct2.suppress_ids_begin,
        "bos_token_id": HF_BOS_TOKEN_ID,
        "decoder_start_token_id": tokens.start_of_transcript,
        "eos_token_id": tokens.end_of_text,
        "is_multilingual": multilingual,
        "max_initial_timestamp_index": MAX_INITIAL_TIMESTAMP_INDEX,
        "max_length": d.max_target_positions,
        "no_timestamps_token_id": tokens.no_timestamps,
        "pad_token_id": tokens.end_of_text,
        "return_timestamps": false,
        "suppress_tokens": ct2.suppress_ids,
    });
    let obj = g.as_object_mut().ok_or_else(|| Error::Other("generation config is not an object".into()))?;
    if let Some(heads) = &ct2.alignment_heads {
        obj.insert("alignment_heads".into(), json!(heads));
    }
    if let Some(id) = tokens.start_of_prev {
        obj.insert("prev_sot_token_id".into(), json!(id));
    }
    if multilingual {
        obj.insert("lang_to_id".into(), json!(lang_to_id(path, ct2, tokens)?));
        let task = |id: Option<i64>, name: &str| {
            id.ok_or_else(|| Error::config(path, "task_to_id", format!("tokenizer.json has no `<|{name}|>` token")))
        };
        obj.insert(
            "task_to_id".into(),
            json!({ "transcribe": task(tokens.transcribe, "transcribe")?, "translate": task(tokens.translate, "translate")? }),
        );
    } else {
        obj.insert("forced_decoder_ids".into(), json!([[1, tokens.no_timestamps]]));
    }
    Ok(g)
}

/// CT2's `lang_ids` named by their tokens (`"<|en|>": 50259`), which is HF's `lang_to_id`.
fn lang_to_id(path: &Path, ct2: &Ct2Config, tokens: &SpecialTokens) -> Result<BTreeMap<String, i64>> {
    ct2.lang_ids
        .iter()
        .map(|&id| {
            let text = tokens.by_id.get(&id).filter(|t| t.starts_with("<|") && t.ends_with("|>"));
            text.map(|t| (t.clone(), id)).ok_or_else(|| {
                Error::config(path, "lang_ids", format!("id {id} is not a `<|xx|>` token in tokenizer.json"))
            })
        })
        .collect()
}
