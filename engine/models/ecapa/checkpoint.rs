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
use crate::models::common::checkpoint::open_weights;
pub use crate::models::common::checkpoint::SAFETENSORS_FILE;
use crate::weights::WeightStore;

/// The checkpoint's file name in a SpeechBrain model directory.
pub const CHECKPOINT_FILE: &str = "embedding_model.ckpt";
/// A tensor every ECAPA_TDNN state dict holds: its absence means another model's checkpoint.
pub const FIRST_TENSOR: &str = "blocks.0.conv.conv.weight";

/// Open a checkpoint file (`.safetensors` by its extension, anything else as a `torch.save`
/// archive) or a model directory holding [`SAFETENSORS_FILE`] or [`CHECKPOINT_FILE`]. A file that
/// holds no ECAPA_TDNN state dict is an error naming it.
pub fn open(path: &Path) -> Result<Box<dyn WeightStore>> {
    let store = open_weights(path, "ECAPA-TDNN", CHECKPOINT_FILE, "")?;
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
