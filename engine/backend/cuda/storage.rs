//! GPU memory behind a [`Tensor`]: f32 activations, or f16 values: a weight (see
//! [`Backend::upload_f16`](crate::backend::Backend::upload_f16)) or attention's keys and values
//! (`to_float16`).

use std::any::Any;

use cudarc::driver::{CudaSlice, DevicePtr};

use crate::backend::{Storage, Tensor};
use crate::error::{Error, Result};

pub enum CudaStorage {
    F32(CudaSlice<f32>),
    F16(CudaSlice<half::f16>),
}

impl Storage for CudaStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "cuda"
    }
    fn dtype(&self) -> &'static str {
        match self {
            CudaStorage::F32(_) => "float32",
            CudaStorage::F16(_) => "float16",
        }
    }
}

/// The raw device address of a buffer (the backend runs on one stream, so no event is needed).
pub(crate) fn address<T>(s: &CudaSlice<T>) -> u64 {
    let (ptr, _sync) = s.device_ptr(s.stream());
    ptr
}

/// A tensor's storage, or an error naming the tensor when it lives elsewhere.
pub(crate) fn storage(t: &Tensor) -> Result<&CudaStorage> {
    t.storage()
        .as_any()
        .downcast_ref::<CudaStorage>()
        .ok_or_else(|| Error::Cuda(format!("tensor {:?} is not on the CUDA backend", t.shape())))
}

/// The buffer of an f32 tensor.
pub(crate) fn f32_slice(t: &Tensor) -> Result<&CudaSlice<f32>> {
    match storage(t)? {
        CudaStorage::F32(s) => Ok(s),
        CudaStorage::F16(_) => Err(Error::Cuda(format!("tensor {:?} is a half-precision weight", t.shape()))),
    }
}

/// Address of an f32 tensor; a half-precision weight is refused outside the ops that read weights.
pub(crate) fn f32_ptr(t: &Tensor) -> Result<u64> {
    match storage(t)? {
        CudaStorage::F32(s) => Ok(address(s)),
        CudaStorage::F16(_) => Err(Error::Cuda(format!(
            "tensor {:?} is a half-precision weight; only linear, embedding and download accept one",
            t.shape()
        ))),
    }
}

/// Address of an f16 tensor (a half-precision weight, or keys and values kept so).
pub(crate) fn f16_ptr(t: &Tensor) -> Result<u64> {
    match storage(t)? {
        CudaStorage::F16(s) => Ok(address(s)),
        CudaStorage::F32(_) => Err(Error::Cuda(format!("tensor {:?} is float32, not float16", t.shape()))),
    }
}
