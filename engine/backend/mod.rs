//! The device abstraction. Model code holds a [`Device`] and calls ops on it; it never asks
//! which backend it is talking to. Each op is declared once, as a [`Device`] method that checks
//! its operands ([`shape_checks`]), tells the device's observers ([`observe`]: profiling,
//! counting) and runs the backend's launch-only implementation ([`kernels`]). The CPU backend
//! (f32, both cores) is also the numerical reference for the CUDA backend.

pub mod cpu;
mod device;
pub mod kernels;
pub mod observe;
pub mod oom;
mod ops;
pub mod profile;
pub mod shape_checks;
pub mod token_choice;

/// The CUDA backend, and the kernel sources (and nvcc output, when the build had nvcc) embedded
/// by build.rs.
#[cfg(feature = "cuda-backend")]
pub mod cuda;
#[cfg(feature = "cuda-backend")]
pub mod kernel_sources {
    include!(concat!(env!("OUT_DIR"), "/kernel_sources.rs"));
}
mod tensor;

pub use device::{Backend, Device, DeviceRequest};
pub use ops::{Activation, BinaryOp, Conv1dParams, Conv2dParams, Padding, Reduce};
pub use tensor::{Storage, Tensor};
pub use token_choice::{RowMask, Sampling, TokenChoice};

/// GPU 0 as a device, after the start-up self-check (every kernel against the CPU on small
/// random inputs); the reason it cannot be used otherwise.
#[cfg(feature = "cuda-backend")]
fn open_cuda() -> std::result::Result<Device, String> {
    let started = std::time::Instant::now();
    let backend = cuda::CudaBackend::new(0)?;
    let dev = Device::new(std::sync::Arc::new(backend));
    let checks = cuda::self_check::check_ops(&dev, cuda::self_check::CheckScale::Startup)
        .map_err(|e| format!("the start-up self-check could not run: {e}"))?;
    if let Some(bad) = checks.iter().find(|c| !c.passed) {
        return Err(format!("the start-up self-check failed in kernel `{}`: {bad}", bad.kernel));
    }
    tracing::info!(
        "CUDA self-check: {} op checks passed in {:.0} ms (start-up included); {}",
        checks.len(),
        started.elapsed().as_secs_f64() * 1e3,
        dev.describe()
    );
    Ok(dev)
}

#[cfg(not(feature = "cuda-backend"))]
fn open_cuda() -> std::result::Result<Device, String> {
    Err("this build of scribe has no CUDA backend (build with --features cuda)".into())
}
