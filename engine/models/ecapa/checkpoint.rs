//! Where ECAPA-TDNN's weights come from: the model directory's `embedding_model.ckpt` (what
//! SpeechBrain's checkpointer writes: `torch.save` of the `ECAPA_TDNN` state dict, read by the
//! restricted unpickler — nothing in it is executed) or a `model.safetensors` holding the same
//! tensor names (`blocks.0.conv.conv.weight`, …, `fc.conv.bias`).
//!
//! `mean_var_norm_emb.ckpt` (the published directory's embedding normaliser) is never read:
//! SpeechBrain's `SpeakerRecognition.verify_batch` embeds with `normalize=False`, so the
//! verification scores use the embeddings as the network gives them. `classifier.ckpt` and
//! `label_encoder.txt` (speaker identification over VoxCeleb's speakers) are not used either.

use std::path::Path;

use crate::error::{Error, Result};
use crate::weights::pickle::TorchCheckpoint;
use crate::weights::safetensors_store::SafetensorsStore;
use crate::weights::WeightStore;

/// The checkpoint's file name in a SpeechBrain model directory.
pub const CHECKPOINT_FILE: &str = "embedding_model.ckpt";
/// A safetensors copy (preferred when present).
pub const SAFETENSORS_FILE: &str = "model.safetensors";
/// A tensor every ECAPA_TDNN state dict holds: its absence means another model's checkpoint.
pub const FIRST_TENSOR: &str = "blocks.0.conv.conv.weight";

/// Open a checkpoint file (`.safetensors` by its extension, anything else as a `torch.save`
/// archive) or a model directory holding [`SAFETENSORS_FILE`] or [`CHECKPOINT_FILE`]. A file that
/// holds no ECAPA_TDNN state dict is an error naming it.
pub fn open(path: &Path) -> Result<Box<dyn WeightStore>> {
    if path.is_dir() {
        for file in [SAFETENSORS_FILE, CHECKPOINT_FILE] {
            if path.join(file).is_file() {
                return open(&path.join(file));
            }
        }
        return Err(Error::format(path, format!("no {SAFETENSORS_FILE} or {CHECKPOINT_FILE} in this directory")));
    }
    if !path.exists() {
        return Err(Error::Other(format!("ECAPA-TDNN checkpoint {} does not exist", path.display())));
    }
    let store: Box<dyn WeightStore> = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors")) {
        Box::new(SafetensorsStore::open(path)?)
    } else {
        Box::new(TorchCheckpoint::open(path)?)
    };
    if store.view(FIRST_TENSOR).is_none() {
        let names = store.names();
        let some: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
        return Err(Error::format(
            path,
            format!(
                "not a SpeechBrain ECAPA_TDNN state dict: no `{FIRST_TENSOR}` among its {} tensors ({}{})",
                names.len(),
                some.join(", "),
                if names.len() > 3 { ", …" } else { "" }
            ),
        ));
    }
    Ok(store)
}
