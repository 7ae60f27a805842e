//! The CUDA backend's state (context, stream, cuBLAS handle, loaded kernels) and the plumbing every
//! op shares: allocation, launches, host↔device copies (counted, so a test can hold the decoder
//! to its per-step traffic budget).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cudarc::cublas::CudaBlas;
use cudarc::driver::{sys, CudaContext, CudaSlice, CudaStream, DeviceRepr, DriverError, LaunchConfig, PushKernelArg};

use super::kernels::Kernels;
use super::probe::{probe, CudaProbe};
use super::storage::{address, CudaStorage};
use crate::backend::Tensor;
use crate::error::{Error, Result};

/// Threads per block of grid-stride elementwise kernels.
pub(crate) const ELEMENTWISE_THREADS: u32 = 256;
/// Upper bound on blocks of a grid-stride launch (each thread then loops).
const MAX_GRID_BLOCKS: usize = 1 << 16;
/// Threads per block of row kernels (one block per row); kernels/common.cuh ROW_THREADS.
pub(crate) const ROW_THREADS: usize = 256;

pub struct CudaBackend {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) blas: Mutex<CudaBlas>,
    pub(crate) kernels: Kernels,
    pub(crate) info: CudaProbe,
    bytes_to_host: AtomicU64,
    bytes_to_device: AtomicU64,
}

/// One kernel argument. Pointers are raw device addresses; everything else is passed by value.
pub(crate) enum Arg {
    Ptr(u64),
    I64(i64),
    I32(i32),
    F32(f32),
    Broadcast(super::elementwise::BroadcastShape),
    Permute(super::layout::PermuteShape),
}

/// Bytes copied between host and device since the backend started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub to_host: u64,
    pub to_device: u64,
}

impl CudaBackend {
    /// Open GPU `ordinal` (after the library probe) and load every kernel.
    pub fn new(ordinal: usize) -> std::result::Result<Self, String> {
        let info = probe()?;
        let ctx = CudaContext::new(ordinal).map_err(|e| format!("GPU {ordinal} could not be opened: {e}"))?;
        // One stream serves every op in order, so cudarc's per-buffer events are not needed.
        // SAFETY: no buffer of this context exists yet.
        unsafe { ctx.disable_event_tracking() };
        // An owned stream: its handle names the context, so buffers dropped on any thread free
        // on it (the legacy default stream means "the calling thread's current context").
        let stream = ctx.new_stream().map_err(|e| format!("GPU {ordinal}: no stream: {e}"))?;
        keep_freed_memory(&ctx);
        let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS did not start: {e:?}"))?;
        let kernels = Kernels::load(&ctx, info.compute_capability)?;
        Ok(CudaBackend {
            ctx,
            stream,
            blas: Mutex::new(blas),
            kernels,
            info,
            bytes_to_host: AtomicU64::new(0),
            bytes_to_device: AtomicU64::new(0),
        })
    }

    pub fn info(&self) -> &CudaProbe {
        &self.info
    }

    pub fn traffic(&self) -> Traffic {
        Traffic {
            to_host: self.bytes_to_host.load(Ordering::Relaxed),
            to_device: self.bytes_to_device.load(Ordering::Relaxed),
        }
    }

    /// Wait for every queued kernel (benchmarks stop their clocks after this).
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| driver_error("synchronize", e))
    }

    /// Free and total device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx.mem_get_info().map_err(|e| driver_error("mem_get_info", e))
    }

    // ---- memory -------------------------------------------------------------------------------

    /// Uninitialised f32 buffer of `n` values (at least one, so empty tensors still own storage);
    /// every op writes all of its output.
    pub(crate) fn alloc(&self, n: usize) -> Result<CudaSlice<f32>> {
        // SAFETY: the callers' kernels write every element before anything reads it.
        unsafe { self.stream.alloc::<f32>(n.max(1)) }.map_err(|e| driver_error("alloc", e))
    }

    /// A new f32 tensor of `shape` and its address, for an op to write.
    pub(crate) fn output(&self, shape: Vec<usize>) -> Result<(Tensor, u64)> {
        let buf = self.alloc(shape.iter().product())?;
        let ptr = address(&buf);
        Ok((Tensor::from_storage(shape, Arc::new(CudaStorage::F32(buf))), ptr))
    }

    /// A new zero-filled f32 tensor of `shape` and its address.
    pub(crate) fn output_zeroed(&self, shape: Vec<usize>) -> Result<(Tensor, u64)> {
        let buf = self.zeros(shape.iter().product())?;
        let ptr = address(&buf);
        Ok((Tensor::from_storage(shape, Arc::new(CudaStorage::F32(buf))), ptr))
    }

    pub(crate) fn zeros(&self, n: usize) -> Result<CudaSlice<f32>> {
        self.stream.alloc_zeros::<f32>(n.max(1)).map_err(|e| driver_error("alloc", e))
    }

    pub(crate) fn to_device<T: DeviceRepr>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        self.bytes_to_device.fetch_add(std::mem::size_of_val(data) as u64, Ordering::Relaxed);
        if data.is_empty() {
            // SAFETY: a one-element placeholder that nothing reads.
            return unsafe { self.stream.alloc::<T>(1) }.map_err(|e| driver_error("alloc", e));
        }
        self.stream.clone_htod(data).map_err(|e| driver_error("upload", e))
    }

    /// The first `n` values of a buffer, on the host.
    pub(crate) fn to_host<T: DeviceRepr + Default + Clone>(&self, buf: &CudaSlice<T>, n: usize) -> Result<Vec<T>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut out = vec![T::default(); n];
        self.stream.memcpy_dtoh(&buf.slice(..n), &mut out[..]).map_err(|e| driver_error("download", e))?;
        self.stream.synchronize().map_err(|e| driver_error("download", e))?;
        self.bytes_to_host.fetch_add((n * std::mem::size_of::<T>()) as u64, Ordering::Relaxed);
        Ok(out)
    }

    // ---- launches -----------------------------------------------------------------------------

    pub(crate) fn launch(&self, name: &'static str, cfg: LaunchConfig, args: &[Arg]) -> Result<()> {
        let f = self.kernels.get(name).ok_or_else(|| Error::Cuda(format!("kernel `{name}` was not loaded")))?;
        let mut b = self.stream.launch_builder(f);
        for a in args {
            match a {
                Arg::Ptr(v) => b.arg(v),
                Arg::I64(v) => b.arg(v),
                Arg::I32(v) => b.arg(v),
                Arg::F32(v) => b.arg(v),
                Arg::Broadcast(v) => b.arg(v),
                Arg::Permute(v) => b.arg(v),
            };
        }
        // SAFETY: each op passes exactly the arguments its kernel declares (kernels/*.cu), with
        // buffers sized for the launch's indices.
        unsafe { b.launch(cfg) }.map(|_| ()).map_err(|e| driver_error(name, e))
    }

    /// Grid-stride launch over `n` elements (nothing to do when `n == 0`).
    pub(crate) fn launch_elementwise(&self, name: &'static str, n: usize, args: &[Arg]) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let blocks = n.div_ceil(ELEMENTWISE_THREADS as usize).min(MAX_GRID_BLOCKS) as u32;
        let cfg =
            LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (ELEMENTWISE_THREADS, 1, 1), shared_mem_bytes: 0 };
        self.launch(name, cfg, args)
    }

    /// One block per row of `cols` values.
    pub(crate) fn launch_rows(&self, name: &'static str, rows: usize, cols: usize, args: &[Arg]) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        let rows = u32::try_from(rows).map_err(|_| Error::Cuda(format!("{name}: {rows} rows exceed one grid")))?;
        let threads = cols.div_ceil(32).clamp(1, ROW_THREADS / 32) as u32 * 32;
        let cfg = LaunchConfig { grid_dim: (rows, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 };
        self.launch(name, cfg, args)
    }
}

/// Keep freed memory in the device's default pool instead of returning it to the driver at every
/// synchronisation (each decoding step synchronises once); best effort.
fn keep_freed_memory(ctx: &Arc<CudaContext>) {
    // SAFETY: plain driver calls on this context's device with valid out-pointers.
    unsafe {
        let mut pool = std::mem::MaybeUninit::uninit();
        if sys::cuDeviceGetDefaultMemPool(pool.as_mut_ptr(), ctx.cu_device()) != sys::CUresult::CUDA_SUCCESS {
            return;
        }
        let mut threshold = u64::MAX;
        let r = sys::cuMemPoolSetAttribute(
            pool.assume_init(),
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            &mut threshold as *mut u64 as *mut std::ffi::c_void,
        );
        if r != sys::CUresult::CUDA_SUCCESS {
            tracing::debug!("CUDA memory pool release threshold not set: {r:?}");
        }
    }
}

/// A driver error as the engine's error; out-of-memory is its own variant so batching callers can
/// halve and retry.
pub(crate) fn driver_error(what: &str, e: DriverError) -> Error {
    if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        Error::DeviceOutOfMemory(what.to_string())
    } else {
        Error::Cuda(format!("{what}: {e}"))
    }
}

/// Shape values the kernels take as `int`.
pub(crate) fn int(v: usize, what: &'static str) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::Cuda(format!("{what} = {v} exceeds a kernel's 32-bit index")))
}

impl crate::backend::Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn describe(&self) -> String {
        let (major, minor) = self.info.compute_capability;
        let origins: Vec<String> = self.kernels.origins.iter().map(|(n, o)| format!("{n}:{o:?}")).collect();
        format!("cuda GPU {} sm_{major}{minor}; kernels {}", self.info.device_name, origins.join(" "))
    }

    fn compute_type(&self) -> &'static str {
        // f16 checkpoint weights run on the tensor cores with f32 accumulation.
        "float16"
    }

    fn synchronize(&self) -> Result<()> {
        CudaBackend::synchronize(self)
    }
}

impl crate::backend::kernels::MemoryOps for CudaBackend {
    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let buf = self.to_device(data)?;
        Ok(Tensor::from_storage(shape.to_vec(), Arc::new(CudaStorage::F32(buf))))
    }

    fn upload_f16(&self, data: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        let buf = self.to_device(data)?;
        Ok(Tensor::from_storage(shape.to_vec(), Arc::new(CudaStorage::F16(buf))))
    }

    fn to_float16(&self, x: &Tensor) -> Result<Tensor> {
        let buf = self.to_f16(super::storage::f32_ptr(x)?, x.numel())?;
        Ok(Tensor::from_storage(x.shape().to_vec(), Arc::new(CudaStorage::F16(buf))))
    }

    fn to_float32(&self, x: &Tensor) -> Result<Tensor> {
        let (y, yp) = self.output(x.shape().to_vec())?;
        let n = x.numel();
        self.launch_elementwise(
            "cast_f16_to_f32",
            n,
            &[Arg::Ptr(super::storage::f16_ptr(x)?), Arg::Ptr(yp), Arg::I64(n as i64)],
        )?;
        Ok(y)
    }

    fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        match super::storage::storage(t)? {
            CudaStorage::F32(s) => self.to_host(s, t.numel()),
            CudaStorage::F16(s) => Ok(self.to_host(s, t.numel())?.into_iter().map(|v| v.to_f32()).collect()),
        }
    }
}
