//! CTranslate2 (faster-whisper) `model.bin`, memory-mapped and exposed under Hugging Face names.
//!
//! The container is parsed by [`file`]; [`names`] maps CT2 variable names to HF ones and says
//! how fused projections split. Fused q/k/v (and cross-attention k/v) are split along dim 0,
//! which in row-major storage is a contiguous byte range, so split views still borrow the mmap.
//! Quantized (int8/int16) weights are dequantized to owned f32 at open time ([`dequant`]).
//! Rank-0 integer variables (`encoder/num_heads`, `decoder/alignment_layer`, ...) are model
//! attributes, read through [`Ct2Store::attribute`] rather than exposed as tensors.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::weights::{DType, TensorView, WeightStore};

mod dequant;
mod dims;
pub mod file;
mod names;

pub use dims::WhisperDims;
pub use names::HF_PROJ_OUT;

use names::{Chunk, Target};

/// The only model spec this store maps to HF names.
pub const WHISPER_SPEC: &str = "WhisperSpec";
/// CT2 attributes that hold the head counts (not derivable from any tensor shape).
pub const ENCODER_HEADS_ATTRIBUTE: &str = "encoder/num_heads";
pub const DECODER_HEADS_ATTRIBUTE: &str = "decoder/num_heads";

/// Where a tensor's bytes live: in the mapped file or in one of the store's owned buffers.
#[derive(Clone, Copy, Debug)]
enum Buffer {
    Mapped,
    Owned(usize),
}

/// One tensor: dtype, shape, and a byte range of a buffer.
#[derive(Clone, Debug)]
struct Slot {
    dtype: DType,
    shape: Vec<usize>,
    buffer: Buffer,
    start: usize,
    len: usize,
}

/// A CTranslate2 Whisper checkpoint. Tensors by HF name through [`WeightStore`]; the raw CT2
/// variables stay reachable through [`Ct2Store::ct2_view`].
pub struct Ct2Store {
    path: PathBuf,
    mmap: Mmap,
    owned: Vec<Vec<u8>>,
    binary_version: u32,
    spec_revision: u32,
    /// CT2 tensors (rank >= 1, plus scalar `*_scale`s) by CT2 name, aliases included.
    ct2: BTreeMap<String, Slot>,
    /// HF tensors by HF name.
    hf: BTreeMap<String, Slot>,
    attributes: BTreeMap<String, i64>,
    unmapped: Vec<String>,
}

impl Ct2Store {
    /// Map and index `path` (a `model.bin`). Fails with an error naming the file (and the
    /// variable, where one is to blame) on any malformed input.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Err(Error::format(path, "empty file: not a CTranslate2 model.bin"));
        }
        // SAFETY: the map is read-only; like every mmap-based reader we rely on the checkpoint
        // not being truncated or rewritten by another process while it is open.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let parsed = file::parse(path, &mmap)?;
        if parsed.spec_name != WHISPER_SPEC {
            return Err(Error::format(
                path,
                format!("model spec is `{}`; only `{WHISPER_SPEC}` checkpoints are supported", parsed.spec_name),
            ));
        }
        let mut store = Ct2Store {
            path: path.to_path_buf(),
            mmap,
            owned: Vec::new(),
            binary_version: parsed.binary_version,
            spec_revision: parsed.spec_revision,
            ct2: BTreeMap::new(),
            hf: BTreeMap::new(),
            attributes: BTreeMap::new(),
            unmapped: Vec::new(),
        };
        store.index_variables(&parsed.variables)?;
        store.register_aliases(&parsed.aliases)?;
        store.dequantize_weights()?;
        store.map_to_hf()?;
        Ok(store)
    }

    /// Sort the file's variables into attributes (rank 0) and CT2 tensors.
    fn index_variables(&mut self, variables: &[file::RawVariable]) -> Result<()> {
        for var in variables {
            let slot = Slot {
                dtype: var.dtype,
                shape: var.shape.clone(),
                buffer: Buffer::Mapped,
                start: var.offset,
                len: var.len,
            };
            // Scalars are attributes, except a per-tensor quantization scale (int16 weights),
            // which dequantization needs alongside the tensors.
            if var.shape.is_empty() && !var.name.ends_with(dequant::SCALE_SUFFIX) {
                let view = self.slot_view(&slot);
                // Float scalars (none in Whisper specs so far) are not attributes we can use.
                if !matches!(var.dtype, DType::F32 | DType::F16 | DType::BF16) {
                    let value = view.to_i64_scalar().map_err(|what| Error::tensor(&self.path, &var.name, what))?;
                    self.attributes.insert(var.name.clone(), value);
                }
                continue;
            }
            if self.ct2.insert(var.name.clone(), slot).is_some() {
                return Err(Error::tensor(&self.path, &var.name, "appears twice in the file"));
            }
        }
        Ok(())
    }

    /// Aliases share their target's storage. Like CTranslate2, an alias also covers the
    /// target's quantization scale (`alias_scale` -> `target_scale`) when there is one.
    fn register_aliases(&mut self, aliases: &[(String, String)]) -> Result<()> {
        for (alias, target) in aliases {
            let slot = self.ct2.get(target).cloned().ok_or_else(|| {
                Error::tensor(&self.path, alias, format!("is an alias of `{target}`, which is not in the file"))
            })?;
            self.ct2.insert(alias.clone(), slot);
            let target_scale = format!("{target}{}", dequant::SCALE_SUFFIX);
            if let Some(scale) = self.ct2.get(&target_scale).cloned() {
                self.ct2.insert(format!("{alias}{}", dequant::SCALE_SUFFIX), scale);
            }
        }
        Ok(())
    }

    /// Replace every int8/int16 `...weight` by its f32 dequantization. Aliases sharing a
    /// payload share the dequantized buffer too.
    fn dequantize_weights(&mut self) -> Result<()> {
        let mut done: BTreeMap<usize, Slot> = BTreeMap::new(); // payload offset -> f32 slot
        let quantized: Vec<String> = self
            .ct2
            .iter()
            .filter(|(name, s)| name.ends_with("weight") && matches!(s.dtype, DType::I8 | DType::I16))
            .map(|(name, _)| name.clone())
            .collect();
        for name in quantized {
            let slot = self.ct2[&name].clone();
            let f32_slot = match done.get(&slot.start) {
                Some(existing) => existing.clone(),
                None => {
                    let scale_name = format!("{name}{}", dequant::SCALE_SUFFIX);
                    let scale = self.ct2.get(&scale_name).ok_or_else(|| {
                        Error::tensor(
                            &self.path,
                            &name,
                            format!("is quantized ({:?}) but `{scale_name}` is missing", slot.dtype),
                        )
                    })?;
                    let bytes = dequant::dequantize(&self.path, &name, &self.slot_view(&slot), &self.slot_view(scale))?;
                    self.owned.push(bytes);
                    let new = Slot {
                        dtype: DType::F32,
                        shape: slot.shape.clone(),
                        buffer: Buffer::Owned(self.owned.len() - 1),
                        start: 0,
                        len: slot.len / slot.dtype.size() * DType::F32.size(),
                    };
                    done.insert(slot.start, new.clone());
                    new
                }
            };
            self.ct2.insert(name, f32_slot);
        }
        Ok(())
    }

    /// Build the HF name index from the CT2 tensors.
    fn map_to_hf(&mut self) -> Result<()> {
        for (ct2_name, slot) in &self.ct2 {
            if ct2_name.ends_with(dequant::SCALE_SUFFIX) {
                continue;
            }
            let Some(targets) = names::hf_targets(ct2_name) else {
                self.unmapped.push(ct2_name.clone());
                continue;
            };
            for target in targets {
                match target {
                    Target::Tensor { hf, chunk } => {
                        let part = self.chunk(ct2_name, slot, chunk)?;
                        if self.hf.insert(hf.clone(), part).is_some() {
                            return Err(Error::tensor(
                                &self.path,
                                ct2_name,
                                format!("maps to `{hf}`, which is already taken"),
                            ));
                        }
                    }
                    Target::ZeroBias { hf, chunk } => {
                        let part = self.chunk(ct2_name, slot, chunk)?;
                        let values =
                            self.slot_view(&part).to_f32().map_err(|w| Error::tensor(&self.path, ct2_name, w))?;
                        if let Some(v) = values.iter().find(|&&v| v != 0.0) {
                            return Err(Error::tensor(
                                &self.path,
                                ct2_name,
                                format!("the fused rows for `{hf}` hold {v}, but Hugging Face Whisper has no such bias (it must be zero)"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Rows `chunk` of `slot` along dim 0, as a slot over the same buffer.
    fn chunk(&self, ct2_name: &str, slot: &Slot, chunk: Chunk) -> Result<Slot> {
        if chunk == Chunk::WHOLE {
            return Ok(slot.clone());
        }
        let Some(&rows) = slot.shape.first() else {
            return Err(Error::tensor(&self.path, ct2_name, "is a scalar, but a fused projection was expected"));
        };
        if rows % chunk.count != 0 {
            return Err(Error::tensor(
                &self.path,
                ct2_name,
                format!("has {rows} rows, which do not split into {} fused projections", chunk.count),
            ));
        }
        let part_rows = rows / chunk.count;
        let part_len = slot.len / chunk.count;
        let mut shape = slot.shape.clone();
        shape[0] = part_rows;
        Ok(Slot { shape, start: slot.start + chunk.index * part_len, len: part_len, ..slot.clone() })
    }

    fn slot_view(&self, slot: &Slot) -> TensorView<'_> {
        let buffer: &[u8] = match slot.buffer {
            Buffer::Mapped => &self.mmap,
            Buffer::Owned(i) => &self.owned[i],
        };
        TensorView { dtype: slot.dtype, shape: slot.shape.clone(), bytes: &buffer[slot.start..slot.start + slot.len] }
    }

    /// An integer attribute (a rank-0 CT2 variable) by its CT2 name, e.g. `encoder/num_heads`.
    pub fn attribute(&self, name: &str) -> Option<i64> {
        self.attributes.get(name).copied()
    }

    /// All integer attributes by CT2 name.
    pub fn attributes(&self) -> &BTreeMap<String, i64> {
        &self.attributes
    }

    /// A tensor by its CT2 name (aliases included; quantized weights already dequantized).
    pub fn ct2_view(&self, name: &str) -> Option<TensorView<'_>> {
        self.ct2.get(name).map(|s| self.slot_view(s))
    }

    /// All CT2 tensor names (aliases included, attributes excluded).
    pub fn ct2_names(&self) -> Vec<String> {
        self.ct2.keys().cloned().collect()
    }

    /// CT2 tensors that have no HF name (empty for the Whisper checkpoints we know).
    pub fn unmapped(&self) -> &[String] {
        &self.unmapped
    }

    pub fn binary_version(&self) -> u32 {
        self.binary_version
    }

    pub fn spec_revision(&self) -> u32 {
        self.spec_revision
    }

    /// The dims a Whisper config needs: shapes of the HF tensors plus the head attributes.
    pub fn whisper_dims(&self) -> Result<WhisperDims> {
        let heads = |name: &str| -> Result<usize> {
            let v = self
                .attribute(name)
                .ok_or_else(|| Error::tensor(&self.path, name, "attribute missing from the checkpoint"))?;
            usize::try_from(v).map_err(|_| Error::tensor(&self.path, name, format!("holds {v}, not a head count")))
        };
        WhisperDims::from_store(self, heads(ENCODER_HEADS_ATTRIBUTE)?, heads(DECODER_HEADS_ATTRIBUTE)?)
    }
}

impl WeightStore for Ct2Store {
    fn path(&self) -> &Path {
        &self.path
    }

    fn names(&self) -> Vec<String> {
        self.hf.keys().cloned().collect()
    }

    fn view(&self, name: &str) -> Option<TensorView<'_>> {
        self.hf.get(name).map(|s| self.slot_view(s))
    }
}
