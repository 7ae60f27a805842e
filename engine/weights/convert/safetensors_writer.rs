//! Write tensors as a `model.safetensors`, streaming each tensor's bytes straight from its
//! view (no copy of the whole model in memory, which matters for large-v3's 3 GB).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::atomic::write_atomically;
use crate::error::{Error, Result};
use crate::weights::safetensors_store::{dtype_name, HEADER_LEN_BYTES, METADATA_KEY};
use crate::weights::TensorView;

/// The data section starts on this alignment; the spec pads the JSON header with spaces.
const HEADER_ALIGNMENT: usize = 8;

/// Write `tensors` (name -> view) to `path` atomically. Tensors are laid out in name order.
/// `__metadata__` says `"format": "pt"`, which transformers expects of PyTorch checkpoints.
pub fn write_safetensors(path: &Path, tensors: &BTreeMap<String, TensorView<'_>>) -> Result<()> {
    let mut header = serde_json::Map::new();
    header.insert(METADATA_KEY.to_string(), json!({ "format": "pt" }));
    let mut offset = 0usize;
    for (name, view) in tensors {
        let end = offset + view.bytes.len();
        header.insert(
            name.clone(),
            json!({ "dtype": dtype_name(view.dtype), "shape": view.shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    let mut header_bytes =
        serde_json::to_vec(&header).map_err(|e| Error::format(path, format!("encoding the header: {e}")))?;
    let padded = (HEADER_LEN_BYTES + header_bytes.len()).next_multiple_of(HEADER_ALIGNMENT) - HEADER_LEN_BYTES;
    header_bytes.resize(padded, b' ');

    write_atomically(path, |w| {
        let io = |e| Error::io(path, e);
        w.write_all(&(header_bytes.len() as u64).to_le_bytes()).map_err(io)?;
        w.write_all(&header_bytes).map_err(io)?;
        for view in tensors.values() {
            w.write_all(view.bytes).map_err(io)?;
        }
        Ok(())
    })
}
