//! Checkpoint readers. Every format is exposed through [`WeightStore`]: tensors by their
//! Hugging Face name, with dtype, shape and raw little-endian bytes (possibly unaligned).
//!
//! - `safetensors_store`: Hugging Face `model.safetensors`, memory-mapped.
//! - `ct2`: CTranslate2 `model.bin` (format version 6), memory-mapped, names mapped to HF ones.
//! - `convert`: write a CT2 checkpoint out in the Hugging Face layout.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub mod convert;
pub mod convert_vad;
pub mod ct2;
pub mod pickle;
pub mod safetensors_store;

/// Element type of a stored tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
    BF16,
    I8,
    I16,
    I32,
    I64,
    U8,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 => 1,
            DType::I64 => 8,
        }
    }
}

/// A borrowed view of one stored tensor: row-major, little-endian, possibly unaligned.
#[derive(Clone, Debug)]
pub struct TensorView<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: &'a [u8],
}

impl TensorView<'_> {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Decode to f32 (floating dtypes only; integer tensors are config scalars, not weights).
    pub fn to_f32(&self) -> std::result::Result<Vec<f32>, String> {
        let n = self.numel();
        if self.bytes.len() != n * self.dtype.size() {
            return Err(format!(
                "holds {} bytes, but shape {:?} of {:?} needs {}",
                self.bytes.len(),
                self.shape,
                self.dtype,
                n * self.dtype.size()
            ));
        }
        let b = self.bytes;
        Ok(match self.dtype {
            DType::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            DType::F16 => b.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            DType::BF16 => b.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            other => return Err(format!("dtype {other:?} is not a floating-point weight")),
        })
    }

    /// Decode an integer scalar (CT2 stores model attributes such as `num_heads` this way).
    pub fn to_i64_scalar(&self) -> std::result::Result<i64, String> {
        if self.numel() != 1 {
            return Err(format!("expected a scalar, found shape {:?}", self.shape));
        }
        let b = self.bytes;
        Ok(match self.dtype {
            DType::I8 => b[0] as i8 as i64,
            DType::U8 => b[0] as i64,
            DType::I16 => i16::from_le_bytes([b[0], b[1]]) as i64,
            DType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            DType::I64 => i64::from_le_bytes(b[..8].try_into().unwrap()),
            DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            other => return Err(format!("dtype {other:?} is not an integer scalar")),
        })
    }
}

/// A loaded checkpoint: tensors addressed by Hugging Face name.
pub trait WeightStore: Send + Sync {
    /// The file the tensors come from, for error messages.
    fn path(&self) -> &Path;
    /// All tensor names (HF naming).
    fn names(&self) -> Vec<String>;
    /// One tensor, or None when absent.
    fn view(&self, name: &str) -> Option<TensorView<'_>>;

    /// The tensor `name` as f32, checking its shape. Errors name the file and the tensor.
    fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let v = self.view(name).ok_or_else(|| Error::tensor(self.path(), name, "missing from the checkpoint"))?;
        if v.shape != shape {
            return Err(Error::tensor(self.path(), name, format!("has shape {:?}, expected {:?}", v.shape, shape)));
        }
        v.to_f32().map_err(|what| Error::tensor(self.path(), name, what))
    }

    /// Like [`WeightStore::f32`] but absent tensors give `None` (optional biases).
    fn f32_opt(&self, name: &str, shape: &[usize]) -> Result<Option<Vec<f32>>> {
        if self.view(name).is_none() {
            return Ok(None);
        }
        self.f32(name, shape).map(Some)
    }
}

/// Which checkpoint format a model directory holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// `model.safetensors` + `config.json` (Hugging Face transformers layout).
    HuggingFace(PathBuf),
    /// `model.bin` + `config.json` (CTranslate2 / faster-whisper layout).
    CTranslate2(PathBuf),
}

/// Inspect a model directory and say which layout it is.
pub fn detect(dir: &Path) -> Result<CheckpointKind> {
    let st = dir.join("model.safetensors");
    if st.is_file() {
        return Ok(CheckpointKind::HuggingFace(st));
    }
    let bin = dir.join("model.bin");
    if bin.is_file() {
        return Ok(CheckpointKind::CTranslate2(bin));
    }
    Err(Error::format(dir, "no model.safetensors (Hugging Face) or model.bin (CTranslate2) in this directory"))
}
