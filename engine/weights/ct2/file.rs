//! The CTranslate2 `model.bin` container, parsed from bytes without copying payloads.
//!
//! Layout (little-endian, nothing aligned), as written by CTranslate2's
//! `python/ctranslate2/specs/model_spec.py` and read by `src/models/model.cc`:
//!
//! ```text
//! u32 binary_version
//! str spec_name            (only when binary_version >= 2)
//! u32 spec_revision        (only when binary_version >= 2)
//! u32 variable_count
//! variable_count x {
//!     str name
//!     u8  rank
//!     u32 dims[rank]
//!     u8  dtype id         (binary_version >= 4; earlier versions stored an item size)
//!     u32 byte_count
//!     u8  payload[byte_count]
//! }
//! u32 alias_count          (binary_version >= 3)
//! alias_count x { str alias, str target }
//! ```
//!
//! where `str` is a u16 byte length followed by that many bytes, the last of which is a NUL.
//! We only read versions whose variable records carry a dtype id (4 to 6): older files stored an
//! item size instead, which cannot tell f16 from i16.

use std::path::Path;

use crate::error::{Error, Result};
use crate::weights::DType;

/// Oldest binary version whose variable records hold a dtype id and a byte count.
pub const MIN_BINARY_VERSION: u32 = 4;
/// Newest binary version this reader understands (faster-whisper checkpoints are version 6).
pub const MAX_BINARY_VERSION: u32 = 6;

/// CTranslate2's `DataType` enum (include/ctranslate2/types.h), in declaration order.
const CT2_FLOAT32: u8 = 0;
const CT2_INT8: u8 = 1;
const CT2_INT16: u8 = 2;
const CT2_INT32: u8 = 3;
const CT2_FLOAT16: u8 = 4;
const CT2_BFLOAT16: u8 = 5;

/// The dtype a CTranslate2 dtype id stands for.
pub fn dtype_from_id(id: u8) -> Option<DType> {
    Some(match id {
        CT2_FLOAT32 => DType::F32,
        CT2_INT8 => DType::I8,
        CT2_INT16 => DType::I16,
        CT2_INT32 => DType::I32,
        CT2_FLOAT16 => DType::F16,
        CT2_BFLOAT16 => DType::BF16,
        _ => return None,
    })
}

/// The CTranslate2 dtype id of a dtype (for writers; CT2 has no u8 or i64).
pub fn dtype_id(dtype: DType) -> Option<u8> {
    Some(match dtype {
        DType::F32 => CT2_FLOAT32,
        DType::I8 => CT2_INT8,
        DType::I16 => CT2_INT16,
        DType::I32 => CT2_INT32,
        DType::F16 => CT2_FLOAT16,
        DType::BF16 => CT2_BFLOAT16,
        DType::I64 | DType::U8 => return None,
    })
}

/// One variable record: where its payload lies in the file.
#[derive(Clone, Debug)]
pub struct RawVariable {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Byte offset of the payload from the start of the file (not aligned).
    pub offset: usize,
    pub len: usize,
}

/// Everything in a `model.bin` except the payload bytes themselves.
#[derive(Debug)]
pub struct Ct2File {
    pub binary_version: u32,
    pub spec_name: String,
    pub spec_revision: u32,
    pub variables: Vec<RawVariable>,
    /// (alias, target) pairs, in file order.
    pub aliases: Vec<(String, String)>,
}

/// A bounds-checked reader over the file bytes. Every read says what it was reading, so a
/// truncated file reports "ends inside the name of variable 12" rather than a bare EOF.
struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(Error::format(
                self.path,
                format!(
                    "truncated CTranslate2 file: {} needs {n} bytes at offset {}, but the file is {} bytes long",
                    what(),
                    self.pos,
                    self.bytes.len()
                ),
            )),
        }
    }

    fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &dyn Fn() -> String) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u16-length-prefixed string; CT2 reads it as a C string, so it ends at the first NUL.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let len = self.u16(&|| format!("the length of {}", what()))? as usize;
        let raw = self.take(len, what)?;
        let text = raw.split(|&b| b == 0).next().unwrap_or(raw);
        String::from_utf8(text.to_vec()).map_err(|_| Error::format(self.path, format!("{} is not valid UTF-8", what())))
    }
}

/// Parse the container. `path` is only used in error messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Ct2File> {
    if bytes.is_empty() {
        return Err(Error::format(path, "empty file: not a CTranslate2 model.bin"));
    }
    let mut c = Cursor { path, bytes, pos: 0 };
    let binary_version = c.u32(&|| "the binary version".into())?;
    if !(MIN_BINARY_VERSION..=MAX_BINARY_VERSION).contains(&binary_version) {
        return Err(Error::format(
            path,
            format!(
                "unsupported CTranslate2 binary version {binary_version} \
                 (this reader knows versions {MIN_BINARY_VERSION} to {MAX_BINARY_VERSION})"
            ),
        ));
    }
    let spec_name = c.string(&|| "the model spec name".into())?;
    let spec_revision = c.u32(&|| "the spec revision".into())?;
    let count = c.u32(&|| "the variable count".into())? as usize;

    // Each record takes at least 2 + 1 + 1 + 4 bytes; capping the reservation by what the file
    // can hold keeps a corrupt count from reserving gigabytes (the reads below then fail with
    // an error naming the variable where the file ends).
    const MIN_RECORD_BYTES: usize = 8;
    let mut variables = Vec::with_capacity(count.min((bytes.len() - c.pos) / MIN_RECORD_BYTES));
    for index in 0..count {
        variables.push(parse_variable(&mut c, index)?);
    }

    let alias_count = c.u32(&|| "the alias count".into())? as usize;
    let mut aliases = Vec::new();
    for index in 0..alias_count {
        let alias = c.string(&|| format!("the name of alias {index}"))?;
        let target = c.string(&|| format!("the target of alias `{alias}`"))?;
        aliases.push((alias, target));
    }
    if c.pos != bytes.len() {
        return Err(Error::format(
            path,
            format!("{} unexpected bytes after the aliases at offset {}", bytes.len() - c.pos, c.pos),
        ));
    }
    Ok(Ct2File { binary_version, spec_name, spec_revision, variables, aliases })
}

fn parse_variable(c: &mut Cursor<'_>, index: usize) -> Result<RawVariable> {
    let name = c.string(&|| format!("the name of variable {index}"))?;
    let rank = c.u8(&|| format!("the rank of variable `{name}`"))? as usize;
    let mut shape = Vec::with_capacity(rank);
    for axis in 0..rank {
        shape.push(c.u32(&|| format!("dimension {axis} of variable `{name}`"))? as usize);
    }
    let id = c.u8(&|| format!("the dtype of variable `{name}`"))?;
    let dtype =
        dtype_from_id(id).ok_or_else(|| Error::tensor(c.path, &name, format!("unknown CTranslate2 dtype id {id}")))?;
    let len = c.u32(&|| format!("the byte count of variable `{name}`"))? as usize;
    let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if numel.and_then(|n| n.checked_mul(dtype.size())) != Some(len) {
        return Err(Error::tensor(
            c.path,
            &name,
            format!("holds {len} bytes, but shape {shape:?} of {dtype:?} needs {}", shape_bytes(&shape, dtype)),
        ));
    }
    let offset = c.pos;
    c.take(len, &|| format!("the payload of variable `{name}`"))?;
    Ok(RawVariable { name, dtype, shape, offset, len })
}

fn shape_bytes(shape: &[usize], dtype: DType) -> String {
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .map_or_else(|| "more than usize bytes".to_string(), |n| n.to_string())
}
