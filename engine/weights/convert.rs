//! Convert a CTranslate2 (faster-whisper) model directory to the Hugging Face layout:
//! `model.safetensors` (HF tensor names, stored dtype kept), `config.json`,
//! `generation_config.json`, and a copy of `tokenizer.json`. Every file is written atomically.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::weights::ct2::{Ct2Store, HF_PROJ_OUT};
use crate::weights::WeightStore;

mod atomic;
mod hf_config;
mod safetensors_writer;

pub use hf_config::MULTILINGUAL_MIN_VOCAB;
pub use safetensors_writer::write_safetensors;

use atomic::{write_atomically, write_json_atomically};
use hf_config::{Ct2Config, ModelFacts, SpecialTokens};

/// Read `in_dir/{model.bin, config.json, tokenizer.json}` and write the HF layout to `out_dir`
/// (created if needed). `proj_out.weight` is not written: HF ties it to `embed_tokens`.
pub fn ct2_to_hf(in_dir: &Path, out_dir: &Path) -> Result<()> {
    let store = Ct2Store::open(&in_dir.join("model.bin"))?;
    let ct2_config_path = in_dir.join("config.json");
    let ct2_config = Ct2Config::read(&ct2_config_path)?;
    let tokenizer_path = in_dir.join("tokenizer.json");
    let tokens = SpecialTokens::read(&tokenizer_path)?;

    // A tensor without an HF name would silently vanish from the converted model.
    if let Some(name) = store.unmapped().first() {
        return Err(Error::tensor(store.path(), name, "has no Hugging Face name; refusing to drop it"));
    }
    let dims = store.whisper_dims()?;
    let embed = "model.decoder.embed_tokens.weight";
    let dtype = store
        .view(embed)
        .map(|v| v.dtype)
        .ok_or_else(|| Error::tensor(store.path(), embed, "missing from the checkpoint"))?;
    let facts = ModelFacts {
        dims,
        dtype,
        scale_embedding: store.attribute("decoder/scale_embeddings").is_some_and(|v| v != 0),
        activation: store.attribute("decoder/activation"),
    };
    let config = hf_config::config_json(&ct2_config_path, &facts, &ct2_config, &tokens)?;
    let generation = hf_config::generation_config_json(&ct2_config_path, &facts, &ct2_config, &tokens)?;

    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let tensors: BTreeMap<String, _> = store
        .names()
        .into_iter()
        .filter(|name| name != HF_PROJ_OUT)
        .filter_map(|name| store.view(&name).map(|v| (name, v)))
        .collect();
    write_safetensors(&out_dir.join("model.safetensors"), &tensors)?;
    write_json_atomically(&out_dir.join("config.json"), &config)?;
    write_json_atomically(&out_dir.join("generation_config.json"), &generation)?;
    let tokenizer = std::fs::read(&tokenizer_path).map_err(|e| Error::io(&tokenizer_path, e))?;
    let out_tokenizer = out_dir.join("tokenizer.json");
    write_atomically(&out_tokenizer, |w| w.write_all(&tokenizer).map_err(|e| Error::io(&out_tokenizer, e)))
}
