//! Is CUDA usable here? Checked before the first CUDA call, because cudarc's dynamically loaded
//! entry points panic when their library is missing: each library is opened by name first
//! (libcuda for the driver, NVRTC for run-time kernel compilation, cuBLAS for GEMMs), then the
//! driver is initialised and device 0 queried.

use cudarc::driver::CudaContext;

/// What the probe found on a usable machine.
#[derive(Clone, Debug)]
pub struct CudaProbe {
    pub device_name: String,
    /// (major, minor), e.g. (9, 0) for an H100.
    pub compute_capability: (i32, i32),
    pub device_count: i32,
}

/// The reason CUDA cannot be used, or what it offers.
pub fn probe() -> Result<CudaProbe, String> {
    // SAFETY: these only try to open shared libraries by name; nothing from them is called.
    let (driver, nvrtc, cublas) = unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
            cudarc::cublas::sys::is_culib_present(),
        )
    };
    if !driver {
        return Err("the NVIDIA driver library (libcuda.so) was not found".into());
    }
    if !nvrtc {
        return Err("the NVRTC library (libnvrtc.so), needed to compile the kernels, was not found".into());
    }
    if !cublas {
        return Err("the cuBLAS library (libcublas.so) was not found".into());
    }
    let device_count = CudaContext::device_count().map_err(|e| format!("the CUDA driver did not start: {e}"))?;
    if device_count < 1 {
        return Err("the CUDA driver reports no GPU".into());
    }
    let ctx = CudaContext::new(0).map_err(|e| format!("GPU 0 could not be opened: {e}"))?;
    let device_name = ctx.name().map_err(|e| format!("GPU 0: {e}"))?;
    let compute_capability = ctx.compute_capability().map_err(|e| format!("GPU 0: {e}"))?;
    Ok(CudaProbe { device_name, compute_capability, device_count })
}
