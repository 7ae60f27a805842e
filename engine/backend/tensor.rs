//! A device tensor: a shape plus a handle to storage that only its backend can read.
//!
//! Tensors are always contiguous and row-major; ops that change layout (permute, slice,
//! concat) materialise a new tensor. That keeps every kernel simple and every backend honest.

use std::any::Any;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Backend-owned memory. Each backend downcasts to its own storage type.
pub trait Storage: Send + Sync + 'static {
    fn as_any(&self) -> &dyn Any;
    /// Name of the backend that owns this storage, for error messages.
    fn backend_name(&self) -> &'static str;
    /// How the values are stored: `float32`, or `float16`/`int8` for weights kept so.
    fn dtype(&self) -> &'static str {
        "float32"
    }
}

#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?} on {})", self.shape, self.storage.backend_name())
    }
}

impl Tensor {
    /// Wrap backend storage. Only backends call this.
    pub fn from_storage(shape: Vec<usize>, storage: Arc<dyn Storage>) -> Self {
        Tensor { shape, storage }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Size of dimension `d`; negative counts from the end.
    pub fn dim(&self, d: isize) -> usize {
        let i = if d < 0 { self.shape.len() as isize + d } else { d } as usize;
        self.shape[i]
    }

    /// How its values are stored (see [`Storage::dtype`]).
    pub fn dtype(&self) -> &'static str {
        self.storage.dtype()
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Same data, new shape (no copy). The element count must not change.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("cannot view {:?} ({} elements) as {:?}", self.shape, self.numel(), shape),
            ));
        }
        Ok(Tensor { shape: shape.to_vec(), storage: self.storage.clone() })
    }

    /// Shape as (rows, last): every leading dimension folded into rows.
    pub fn rows_cols(&self) -> (usize, usize) {
        let last = self.shape.last().copied().unwrap_or(1);
        // The leading dims' product (not numel / last, which is 0 for rows of width 0).
        let rows = self.shape[..self.shape.len().saturating_sub(1)].iter().product();
        (rows, last)
    }

    pub fn dims3(&self, op: &'static str) -> Result<(usize, usize, usize)> {
        match self.shape[..] {
            [a, b, c] => Ok((a, b, c)),
            _ => Err(Error::shape(op, format!("expected a rank-3 tensor, got {:?}", self.shape))),
        }
    }
}
