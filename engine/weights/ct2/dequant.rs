//! Int8/int16 CTranslate2 weights back to f32.
//!
//! CTranslate2 quantizes a `.../weight` variable `w` as `q = round(w * scale)` and stores the
//! scale next to it as `.../weight_scale` (model_spec.py; `ops::Dequantize` divides by it):
//! int8 weights carry one scale per output row (shape `[rows]`), int16 weights one scale for the
//! whole tensor. We divide once at load time into an owned f32 buffer, so every consumer of a
//! [`crate::weights::WeightStore`] sees ordinary float weights. This costs 4 bytes per weight for
//! quantized checkpoints; fp16/fp32 checkpoints (faster-whisper's default) still borrow the mmap.

use std::path::Path;

use crate::error::{Error, Result};
use crate::weights::{DType, TensorView};

/// Suffix CTranslate2 appends to a weight's name for its quantization scale.
pub const SCALE_SUFFIX: &str = "_scale";

/// `q / scale` as little-endian f32 bytes. `scale` has one entry per row of `q`, or one in all.
pub fn dequantize(path: &Path, name: &str, q: &TensorView<'_>, scale: &TensorView<'_>) -> Result<Vec<u8>> {
    let bad = |what: String| Error::tensor(path, name, what);
    let scales = scale.to_f32().map_err(|what| Error::tensor(path, format!("{name}{SCALE_SUFFIX}"), what))?;
    let rows = q.shape.first().copied().unwrap_or(1);
    let per_row = match scales.len() {
        1 => false,
        n if n == rows => true,
        n => return Err(bad(format!("has {rows} rows but its quantization scale has {n} entries"))),
    };
    if scales.iter().any(|&s| s == 0.0 || !s.is_finite()) {
        return Err(bad("its quantization scale holds a zero or non-finite value".into()));
    }
    let values: Vec<f32> = match q.dtype {
        DType::I8 => q.bytes.iter().map(|&b| b as i8 as f32).collect(),
        DType::I16 => q.bytes.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32).collect(),
        other => return Err(bad(format!("{other:?} is not a quantized CTranslate2 dtype"))),
    };
    // Elements per row; at least 1 so that an empty tensor never divides by zero.
    let row_len = values.len().checked_div(rows).unwrap_or(0).max(1);
    let mut out = Vec::with_capacity(values.len() * DType::F32.size());
    for (i, v) in values.iter().enumerate() {
        let s = if per_row { scales[i / row_len] } else { scales[0] };
        out.extend_from_slice(&(v / s).to_le_bytes());
    }
    Ok(out)
}
