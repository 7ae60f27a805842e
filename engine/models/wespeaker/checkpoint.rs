//! Where WeSpeaker ResNet34's weights come from: pyannote's `pytorch_model.bin` on the Hugging
//! Face hub (`pyannote/wespeaker-voxceleb-resnet34-LM`: a PyTorch Lightning checkpoint whose
//! `state_dict` holds `resnet.*`, read by the restricted unpickler — nothing in it is executed),
//! or a safetensors file holding the same tensor names.

use std::path::Path;

use crate::error::Result;
use crate::models::common::checkpoint::open_weights;
pub use crate::models::common::checkpoint::SAFETENSORS_FILE;
use crate::weights::WeightStore;

/// The checkpoint's file name on the hub.
pub const CHECKPOINT_FILE: &str = "pytorch_model.bin";

/// Open a checkpoint file (`.safetensors` by its extension, anything else as a `torch.save`
/// archive, its `state_dict` when it has one) or a model directory holding [`SAFETENSORS_FILE`]
/// or [`CHECKPOINT_FILE`].
pub fn open(path: &Path) -> Result<Box<dyn WeightStore>> {
    open_weights(path, "WeSpeaker", CHECKPOINT_FILE, "")
}
