//! Opening a model's weights the way the speaker models ship them: a `torch.save` archive (read
//! by the restricted unpickler, nothing in it executed) or a safetensors copy with the same tensor
//! names, given as a file or as a model directory.

use std::path::Path;

use crate::error::{Error, Result};
use crate::weights::pickle::TorchCheckpoint;
use crate::weights::safetensors_store::SafetensorsStore;
use crate::weights::WeightStore;

/// A safetensors copy in a model directory (preferred when present).
pub const SAFETENSORS_FILE: &str = "model.safetensors";

/// Open `path`: a file (`.safetensors` by its extension, anything else as a `torch.save` archive)
/// or a directory holding [`SAFETENSORS_FILE`] or `checkpoint_file`. Errors name `model` and the
/// path; `hint` (may be empty) follows the message for a directory that holds neither.
pub fn open_weights(path: &Path, model: &str, checkpoint_file: &str, hint: &str) -> Result<Box<dyn WeightStore>> {
    if path.is_dir() {
        for file in [SAFETENSORS_FILE, checkpoint_file] {
            if path.join(file).is_file() {
                return open_weights(&path.join(file), model, checkpoint_file, hint);
            }
        }
        return Err(Error::format(path, format!("no {SAFETENSORS_FILE} or {checkpoint_file} in this directory{hint}")));
    }
    if !path.exists() {
        return Err(Error::Other(format!("{model} checkpoint {} does not exist", path.display())));
    }
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors")) {
        Ok(Box::new(SafetensorsStore::open(path)?))
    } else {
        Ok(Box::new(TorchCheckpoint::open(path)?))
    }
}
