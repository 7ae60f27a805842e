//! Hugging Face `model.safetensors`, memory-mapped.
//!
//! Format: a u64 little-endian header length N, N bytes of JSON mapping each tensor name to
//! `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the end of the header),
//! an optional `"__metadata__"` string map, then the data. We parse the header ourselves rather
//! than through the `safetensors` crate so that each complaint can name the offending tensor.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::weights::{DType, TensorView, WeightStore};

/// Bytes of the little-endian u64 that gives the JSON header's length.
pub const HEADER_LEN_BYTES: usize = 8;
/// The header key that holds free-form string metadata rather than a tensor.
pub const METADATA_KEY: &str = "__metadata__";

/// The dtype string safetensors uses for `dtype`.
pub fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "F32",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::I8 => "I8",
        DType::I16 => "I16",
        DType::I32 => "I32",
        DType::I64 => "I64",
        DType::U8 => "U8",
    }
}

/// The dtype a safetensors dtype string names, if it is one we hold.
pub fn dtype_from_name(name: &str) -> Option<DType> {
    Some(match name {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "I8" => DType::I8,
        "I16" => DType::I16,
        "I32" => DType::I32,
        "I64" => DType::I64,
        "U8" => DType::U8,
        _ => return None,
    })
}

#[derive(Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

#[derive(Clone, Debug)]
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: usize,
    end: usize,
}

/// A `model.safetensors` file: every tensor borrows the map.
pub struct SafetensorsStore {
    path: PathBuf,
    mmap: Mmap,
    tensors: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
}

impl SafetensorsStore {
    /// Map `path` and validate its header: JSON well-formed, every dtype known, every byte range
    /// inside the file and matching its shape.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < HEADER_LEN_BYTES as u64 {
            return Err(Error::format(
                path,
                format!(
                    "{len} bytes is too short for a safetensors file (the header length alone is {HEADER_LEN_BYTES})"
                ),
            ));
        }
        // SAFETY: read-only map; we rely on the file not being rewritten while it is open.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let (tensors, metadata) = parse_header(path, &mmap)?;
        Ok(SafetensorsStore { path: path.to_path_buf(), mmap, tensors, metadata })
    }

    /// The `__metadata__` map (e.g. `{"format": "pt"}`), empty when absent.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }
}

type Parsed = (BTreeMap<String, Entry>, BTreeMap<String, String>);

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Parsed> {
    let mut len_bytes = [0u8; HEADER_LEN_BYTES];
    len_bytes.copy_from_slice(&bytes[..HEADER_LEN_BYTES]);
    let header_len = u64::from_le_bytes(len_bytes);
    let data_start = usize::try_from(header_len)
        .ok()
        .and_then(|n| n.checked_add(HEADER_LEN_BYTES))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            Error::format(
                path,
                format!("header length {header_len} runs past the end of the {}-byte file", bytes.len()),
            )
        })?;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[HEADER_LEN_BYTES..data_start])
        .map_err(|e| Error::format(path, format!("safetensors header is not a JSON object: {e}")))?;

    let data_len = bytes.len() - data_start;
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    for (name, value) in header {
        if name == METADATA_KEY {
            metadata = serde_json::from_value(value)
                .map_err(|e| Error::format(path, format!("`{METADATA_KEY}` is not a map of strings: {e}")))?;
            continue;
        }
        let raw: HeaderEntry =
            serde_json::from_value(value).map_err(|e| Error::tensor(path, &name, format!("bad header entry: {e}")))?;
        let dtype = dtype_from_name(&raw.dtype)
            .ok_or_else(|| Error::tensor(path, &name, format!("unsupported dtype `{}`", raw.dtype)))?;
        let [begin, end] = raw.data_offsets;
        if begin > end || end > data_len {
            return Err(Error::tensor(
                path,
                &name,
                format!("data offsets [{begin}, {end}] lie outside the {data_len} bytes of tensor data"),
            ));
        }
        let needed = raw.shape.iter().try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if needed != Some(end - begin) {
            return Err(Error::tensor(
                path,
                &name,
                format!("holds {} bytes, but shape {:?} of {dtype:?} needs {needed:?}", end - begin, raw.shape),
            ));
        }
        tensors.insert(name, Entry { dtype, shape: raw.shape, start: data_start + begin, end: data_start + end });
    }
    Ok((tensors, metadata))
}

impl WeightStore for SafetensorsStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn view(&self, name: &str) -> Option<TensorView<'_>> {
        self.tensors.get(name).map(|e| TensorView {
            dtype: e.dtype,
            shape: e.shape.clone(),
            bytes: &self.mmap[e.start..e.end],
        })
    }
}
