//! Where a wav2vec2 CTC model's weights, hyper-parameters and labels come from:
//!
//! - a Hugging Face directory: `config.json`, `vocab.json` (+ `added_tokens.json`) and
//!   `model.safetensors` or `pytorch_model.bin` (read by the restricted unpickler; nothing in it
//!   is executed);
//! - a torchaudio bundle file (`$TORCH_HOME/hub/checkpoints/<file>.pth|.pt`): torchaudio's key
//!   names (TAH `_build`: `feature_extractor` ↔ `wav2vec2.feature_extractor`,
//!   `encoder.feature_projection` ↔ `wav2vec2.feature_projection`, `encoder.transformer` ↔
//!   `wav2vec2.encoder`, `aux` ↔ `lm_head`), the bundle's label list, and the output rows it
//!   drops (`_remove_aux_axes`).
//!
//! Both are exposed as one [`WeightStore`] with transformers' names, with the positional conv's
//! weight norm folded (`weight_g`/`weight_v` or `parametrizations.weight.original0/1`:
//! `W[o,i,k] = g[k]·v[o,i,k] / ‖v[:,:,k]‖₂`, `torch.nn.utils.weight_norm(dim=2)`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::weights::pickle::TorchCheckpoint;
use crate::weights::safetensors_store::SafetensorsStore;
use crate::weights::{DType, TensorView, WeightStore};

use super::bundles::{self, Bundle};
use super::config::Wav2Vec2Config;

pub const CONFIG_FILE: &str = "config.json";
pub const VOCAB_FILE: &str = "vocab.json";
pub const ADDED_TOKENS_FILE: &str = "added_tokens.json";
pub const SAFETENSORS_FILE: &str = "model.safetensors";
pub const PYTORCH_FILE: &str = "pytorch_model.bin";

/// A model ready to load: its weights (transformers' names), hyper-parameters and the label of
/// each output class.
pub struct Checkpoint {
    pub store: Box<dyn WeightStore>,
    pub config: Wav2Vec2Config,
    /// `labels[id]` (empty for ids the vocabulary leaves out).
    pub labels: Vec<String>,
    /// Where it was read from, for messages.
    pub source: PathBuf,
}

/// Open a model directory (Hugging Face layout) or a torchaudio bundle file (recognised by its
/// file name).
pub fn open(path: &Path) -> Result<Checkpoint> {
    if path.is_dir() {
        return open_hf_dir(path);
    }
    if !path.exists() {
        return Err(Error::Other(format!("alignment model {} does not exist", path.display())));
    }
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    match bundles::by_file(file_name) {
        Some(bundle) => open_bundle(path, bundle),
        None => Err(Error::format(
            path,
            "not a model directory and not a torchaudio bundle file WhisperX uses (expected a directory with \
             config.json, vocab.json and model.safetensors or pytorch_model.bin)",
        )),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("invalid JSON: {e}")))
}

/// `labels[id]` from `vocab.json` and, when present, `added_tokens.json` (the tokenizer's
/// `get_vocab()`, which WhisperX turns into its dictionary).
pub fn read_vocab(dir: &Path, vocab_size: usize) -> Result<Vec<String>> {
    let mut labels = vec![String::new(); vocab_size];
    let mut add = |file: &Path, required: bool| -> Result<()> {
        if !file.is_file() {
            return if required { Err(Error::Other(format!("{} is missing", file.display()))) } else { Ok(()) };
        }
        let Value::Object(map) = read_json(file)? else {
            return Err(Error::format(file, "expected a JSON object of token → id"));
        };
        for (token, id) in map {
            let id = id
                .as_u64()
                .map(|i| i as usize)
                .ok_or_else(|| Error::format(file, format!("token `{token}` has id {id}, not an integer")))?;
            if id >= vocab_size {
                // Special tokens past the output layer (`<s>`, `</s>` in some vocabularies)
                // are never emitted.
                continue;
            }
            labels[id] = token;
        }
        Ok(())
    };
    add(&dir.join(VOCAB_FILE), true)?;
    add(&dir.join(ADDED_TOKENS_FILE), false)?;
    Ok(labels)
}

/// A transformers `Wav2Vec2ForCTC` directory.
pub fn open_hf_dir(dir: &Path) -> Result<Checkpoint> {
    let config_path = dir.join(CONFIG_FILE);
    let config = Wav2Vec2Config::from_hf_json(&config_path, &read_json(&config_path)?)?;
    let labels = read_vocab(dir, config.vocab_size)?;
    let inner: Box<dyn WeightStore> = if dir.join(SAFETENSORS_FILE).is_file() {
        Box::new(SafetensorsStore::open(&dir.join(SAFETENSORS_FILE))?)
    } else if dir.join(PYTORCH_FILE).is_file() {
        Box::new(TorchCheckpoint::open(&dir.join(PYTORCH_FILE))?)
    } else if dir.join("model.safetensors.index.json").is_file() || dir.join("pytorch_model.bin.index.json").is_file() {
        return Err(Error::format(dir, "sharded checkpoints are not supported; merge the shards into one file"));
    } else {
        return Err(Error::format(dir, format!("no {SAFETENSORS_FILE} or {PYTORCH_FILE} in this directory")));
    };
    let store = MappedStore::new(inner, &config, Naming::HuggingFace, &[])?;
    Ok(Checkpoint { store: Box::new(store), config, labels, source: dir.to_path_buf() })
}

/// The base architecture every WhisperX torchaudio default uses, with `vocab_size` outputs.
pub fn bundle_config(vocab_size: usize) -> Wav2Vec2Config {
    use super::config::*;
    Wav2Vec2Config {
        hidden_size: 768,
        num_hidden_layers: 12,
        num_attention_heads: 12,
        intermediate_size: 3072,
        feat_extract_norm: FeatExtractNorm::Group,
        conv_dim: CONV_DIM.to_vec(),
        conv_kernel: CONV_KERNEL.to_vec(),
        conv_stride: CONV_STRIDE.to_vec(),
        conv_bias: false,
        num_conv_pos_embeddings: NUM_CONV_POS_EMBEDDINGS,
        num_conv_pos_embedding_groups: NUM_CONV_POS_EMBEDDING_GROUPS,
        do_stable_layer_norm: false,
        layer_norm_eps: LAYER_NORM_EPS,
        vocab_size,
    }
}

/// One of WhisperX's torchaudio defaults, from its checkpoint file.
pub fn open_bundle(path: &Path, bundle: &Bundle) -> Result<Checkpoint> {
    let labels = bundle.all_labels();
    open_torchaudio(path, bundle_config(labels.len()), labels, bundle.remove_aux_axis)
}

/// A torchaudio-format state dict with the given architecture and labels; `remove_aux_axis`:
/// output rows in the file that are not classes (dropped, as torchaudio does).
pub fn open_torchaudio(
    path: &Path,
    config: Wav2Vec2Config,
    labels: Vec<String>,
    remove_aux_axis: &[usize],
) -> Result<Checkpoint> {
    let inner = Box::new(TorchCheckpoint::open(path)?);
    let store = MappedStore::new(inner, &config, Naming::Torchaudio, remove_aux_axis)?;
    Ok(Checkpoint { store: Box::new(store), config, labels, source: path.to_path_buf() })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    HuggingFace,
    Torchaudio,
}

/// transformers' name → the name in a torchaudio state dict.
fn torchaudio_name(hf: &str, body: &str) -> String {
    let rest = hf.strip_prefix(body).and_then(|r| r.strip_prefix('.'));
    match rest {
        Some(r) if r.starts_with("feature_extractor.") => r.to_string(),
        Some(r) if r.starts_with("feature_projection.") => format!("encoder.{r}"),
        Some(r) if r.starts_with("encoder.") => format!("encoder.transformer.{}", &r["encoder.".len()..]),
        _ => match hf.strip_prefix("lm_head.") {
            Some(r) => format!("aux.{r}"),
            None => hf.to_string(),
        },
    }
}

type Owned = (DType, Vec<usize>, Vec<u8>);

/// The checkpoint's tensors under transformers' names, with the tensors that are computed at
/// load (folded weight norm, trimmed output layer) held here.
struct MappedStore {
    inner: Box<dyn WeightStore>,
    naming: Naming,
    body: &'static str,
    computed: BTreeMap<String, Owned>,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl MappedStore {
    fn new(
        inner: Box<dyn WeightStore>,
        config: &Wav2Vec2Config,
        naming: Naming,
        remove_aux_axis: &[usize],
    ) -> Result<Self> {
        let mut store = MappedStore { inner, naming, body: super::config::BODY_PREFIX, computed: BTreeMap::new() };
        store.fold_weight_norm(config)?;
        if !remove_aux_axis.is_empty() {
            store.remove_aux_axis(config, remove_aux_axis)?;
        }
        Ok(store)
    }

    fn source_name(&self, hf: &str) -> String {
        match self.naming {
            Naming::HuggingFace => hf.to_string(),
            Naming::Torchaudio => torchaudio_name(hf, self.body),
        }
    }

    fn source_f32(&self, hf: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.inner.f32(&self.source_name(hf), shape)
    }

    /// `pos_conv_embed.conv.weight` from its weight-norm parts, whichever names they have.
    fn fold_weight_norm(&mut self, c: &Wav2Vec2Config) -> Result<()> {
        let conv = format!("{}.encoder.pos_conv_embed.conv", self.body);
        let (d, k) = (c.hidden_size, c.num_conv_pos_embeddings);
        let per_group = d / c.num_conv_pos_embedding_groups;
        let w_shape = [d, per_group, k];
        let has = |s: &MappedStore, name: &str| s.inner.view(&s.source_name(name)).is_some();
        let (g_name, v_name) = if has(self, &format!("{conv}.weight_g")) {
            (format!("{conv}.weight_g"), format!("{conv}.weight_v"))
        } else if has(self, &format!("{conv}.parametrizations.weight.original0")) {
            (format!("{conv}.parametrizations.weight.original0"), format!("{conv}.parametrizations.weight.original1"))
        } else if has(self, &format!("{conv}.weight")) {
            return Ok(()); // already a plain weight
        } else {
            return Err(Error::tensor(
                self.inner.path(),
                self.source_name(&format!("{conv}.weight_g")),
                "missing from the checkpoint (nor parametrizations.weight.original0, nor a plain weight)",
            ));
        };
        let g = self.source_f32(&g_name, &[1, 1, k])?;
        let v = self.source_f32(&v_name, &w_shape)?;
        let mut w = vec![0f32; v.len()];
        for (tap, &gain) in g.iter().enumerate() {
            let norm: f64 = (0..d * per_group).map(|oi| (v[oi * k + tap] as f64).powi(2)).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { gain as f64 / norm } else { 0.0 };
            for oi in 0..d * per_group {
                w[oi * k + tap] = (v[oi * k + tap] as f64 * scale) as f32;
            }
        }
        self.computed.insert(format!("{conv}.weight"), (DType::F32, w_shape.to_vec(), f32_bytes(&w)));
        Ok(())
    }

    /// Drop the rows of `lm_head` (torchaudio `aux`) that are not classes.
    fn remove_aux_axis(&mut self, c: &Wav2Vec2Config, axes: &[usize]) -> Result<()> {
        let (d, v) = (c.hidden_size, c.vocab_size);
        let rows = v + axes.len();
        let weight = self.source_f32("lm_head.weight", &[rows, d])?;
        let bias = self.source_f32("lm_head.bias", &[rows])?;
        let keep: Vec<usize> = (0..rows).filter(|r| !axes.contains(r)).collect();
        let w: Vec<f32> = keep.iter().flat_map(|&r| weight[r * d..(r + 1) * d].iter().copied()).collect();
        let b: Vec<f32> = keep.iter().map(|&r| bias[r]).collect();
        self.computed.insert("lm_head.weight".into(), (DType::F32, vec![v, d], f32_bytes(&w)));
        self.computed.insert("lm_head.bias".into(), (DType::F32, vec![v], f32_bytes(&b)));
        Ok(())
    }
}

impl WeightStore for MappedStore {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.computed.keys().cloned().collect();
        names.extend(self.inner.names());
        names
    }
    fn view(&self, name: &str) -> Option<TensorView<'_>> {
        if let Some((dtype, shape, bytes)) = self.computed.get(name) {
            return Some(TensorView { dtype: *dtype, shape: shape.clone(), bytes });
        }
        self.inner.view(&self.source_name(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchaudio_names_follow_its_module_tree() {
        let b = "wav2vec2";
        assert_eq!(
            torchaudio_name("wav2vec2.feature_extractor.conv_layers.0.conv.weight", b),
            "feature_extractor.conv_layers.0.conv.weight"
        );
        assert_eq!(
            torchaudio_name("wav2vec2.feature_projection.projection.bias", b),
            "encoder.feature_projection.projection.bias"
        );
        assert_eq!(
            torchaudio_name("wav2vec2.encoder.layers.3.attention.q_proj.weight", b),
            "encoder.transformer.layers.3.attention.q_proj.weight"
        );
        assert_eq!(
            torchaudio_name("wav2vec2.encoder.pos_conv_embed.conv.weight_g", b),
            "encoder.transformer.pos_conv_embed.conv.weight_g"
        );
        assert_eq!(torchaudio_name("lm_head.weight", b), "aux.weight");
    }
}
