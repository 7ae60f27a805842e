//! `scribe convert-vad IN OUT_DIR`: WhisperX's VAD checkpoint (pyannote's PyanNet segmentation
//! model, a PyTorch Lightning pickle) → `model.safetensors` (the state dict, names unchanged) and
//! `config.json` (its hyper-parameters, the task's classes and chunk duration), read with the
//! restricted unpickler (nothing in the pickle is executed).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value as Json};

use super::convert::write_safetensors;
use super::pickle::{TorchCheckpoint, Value};
use super::WeightStore;
use crate::error::{Error, Result};

/// A pickle value as JSON (records and tensors are not hyper-parameters and become null).
fn to_json(v: &Value) -> Json {
    match v {
        Value::None | Value::Storage { .. } | Value::Tensor(_) | Value::Global(_) | Value::Bytes(_) => Json::Null,
        Value::Record { state, .. } => state.as_deref().map_or(Json::Null, to_json),
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Str(s) => json!(s),
        Value::List(items) | Value::Tuple(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Dict(pairs) => Json::Object(
            pairs
                .iter()
                .filter_map(|(k, v)| match k {
                    Value::Str(k) => Some((k.clone(), to_json(v))),
                    Value::Int(i) => Some((i.to_string(), to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
    }
}

/// The config of a PyanNet checkpoint: Lightning's `hyper_parameters`, plus `classes` and
/// `duration` from pyannote's task specifications (`pyannote.audio` → `specifications`).
pub fn vad_config(ckpt: &TorchCheckpoint) -> Result<Json> {
    let hp = ckpt
        .hyper_parameters()
        .ok_or_else(|| Error::format(ckpt.path(), "no hyper_parameters: not a PyTorch Lightning checkpoint"))?;
    let mut config = to_json(hp);
    let specs = ckpt.object.get("pyannote.audio").and_then(|p| p.get("specifications"));
    let specs = specs.map(to_json).unwrap_or(Json::Null);
    if let Json::Object(map) = &mut config {
        map.insert("classes".into(), specs.get("classes").cloned().unwrap_or(Json::Null));
        map.insert("duration".into(), specs.get("duration").cloned().unwrap_or(Json::Null));
        // segmentation-3.0's powerset head (None for WhisperX's multi-label VAD).
        map.insert("powerset_max_classes".into(), specs.get("powerset_max_classes").cloned().unwrap_or(Json::Null));
        let architecture = ckpt.object.get("pyannote.audio").and_then(|p| p.get("architecture")).map(to_json);
        map.insert("architecture".into(), architecture.unwrap_or(Json::Null));
    }
    Ok(config)
}

pub fn convert_vad(input: &Path, out_dir: &Path) -> Result<()> {
    let ckpt = TorchCheckpoint::open(input)?;
    let config = vad_config(&ckpt)?;
    if ckpt.names().is_empty() {
        return Err(Error::format(input, "the checkpoint holds no tensors"));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let tensors: BTreeMap<String, _> = ckpt.names().into_iter().filter_map(|n| ckpt.view(&n).map(|v| (n, v))).collect();
    write_safetensors(&out_dir.join("model.safetensors"), &tensors)?;
    let path = out_dir.join("config.json");
    let text = serde_json::to_string_pretty(&config).map_err(|e| Error::format(&path, e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))
}
