//! The device abstraction. Model code holds a [`Device`] and calls ops on it; it never asks
//! which backend it is talking to. Each op is declared once in [`Backend`]; the CPU backend
//! (f32, both cores) is also the numerical reference for the CUDA backend.

use std::sync::Arc;

use crate::error::{Error, Result};

pub mod cpu;
pub mod oom;
mod ops;
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

pub use ops::{Activation, BinaryOp, Conv1dParams, Reduce};
pub use tensor::{Storage, Tensor};
pub use token_choice::{RowMask, Sampling, TokenChoice};

/// Every op the four model families (Whisper, wav2vec2, PyanNet, ECAPA-TDNN) need.
///
/// Conventions: tensors are contiguous row-major f32 (on the device, any precision the
/// backend chooses internally); "channels-first" sequences are `[batch, channels, time]`;
/// "tokens" sequences are `[batch, time, features]`.
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// One line for logs: the backend and how it runs (SIMD level, threads, GPU model).
    fn describe(&self) -> String {
        self.name().to_string()
    }
    /// The precision of its GEMMs, for the `[Predict] compute_type=` log line.
    fn compute_type(&self) -> &'static str {
        "float32"
    }

    // ---- memory ---------------------------------------------------------------------------
    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor>;
    fn download(&self, t: &Tensor) -> Result<Vec<f32>>;
    /// A weight whose values are f16 (a half-precision checkpoint). Ops treat it as the f32
    /// tensor of the same values; a backend may keep it in half precision, which halves its
    /// memory and the bandwidth of reading it, with no rounding (every f16 is exactly an f32).
    /// Such a tensor must be accepted as the weight of [`Backend::linear`], the table of
    /// [`Backend::embedding`], and by [`Backend::download`].
    fn upload_f16(&self, data: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        let widened: Vec<f32> = data.iter().map(|v| v.to_f32()).collect();
        self.upload(&widened, shape)
    }

    // ---- linear algebra -------------------------------------------------------------------
    /// `x[.., K] · w[N, K]ᵀ + b[N]` — a PyTorch `nn.Linear`.
    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor>;
    /// `act(x · wᵀ + b)`: a linear layer and its activation (an MLP's first half). A backend may
    /// fuse the activation into the bias pass over the output.
    fn linear_activation(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, act: Activation) -> Result<Tensor> {
        let y = self.linear(x, w, b)?;
        self.activation(&y, act)
    }
    /// `residual + x · wᵀ + b` with `residual` of the output's shape (a skip connection). A
    /// backend may fuse the bias and the residual into one pass over the GEMM output.
    fn linear_residual(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        let y = self.linear(x, w, b)?;
        self.binary(residual, &y, BinaryOp::Add)
    }
    /// Batched `a[B, M, K] · b[B, K, N]` (or `b[B, N, K]ᵀ` when `transpose_b`).
    fn matmul(&self, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor>;
    /// `nn.Conv1d` on `x[B, C_in, T]` with `w[C_out, C_in / groups, K]`.
    fn conv1d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor>;

    // ---- normalisation --------------------------------------------------------------------
    /// Layer norm over the last dimension.
    fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor>;
    /// `nn.GroupNorm` on `x[B, C, T]`.
    fn group_norm(&self, x: &Tensor, groups: usize, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor>;
    /// `nn.InstanceNorm1d` on `x[B, C, T]` (statistics per sample and channel), optional affine.
    fn instance_norm(&self, x: &Tensor, gamma: Option<&Tensor>, beta: Option<&Tensor>, eps: f32) -> Result<Tensor>;
    /// `nn.BatchNorm1d` in inference mode on `x[B, C, T]` (or `[B, C]`) with running statistics.
    fn batch_norm(
        &self,
        x: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<Tensor>;

    // ---- elementwise ----------------------------------------------------------------------
    fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor>;
    /// `a op b` with NumPy broadcasting of `b` against `a` (the result has `a`'s shape).
    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor>;
    /// `x · s`.
    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor>;

    // ---- softmax, attention ---------------------------------------------------------------
    fn softmax(&self, x: &Tensor) -> Result<Tensor>;
    fn log_softmax(&self, x: &Tensor) -> Result<Tensor>;
    /// Multi-head scaled dot-product attention on packed heads:
    /// `q[B, Tq, H·Dh]`, `k`/`v[B, Tk, H·Dh]` → `[B, Tq, H·Dh]`, scale `1/√Dh`.
    /// `causal`: query `i` sees keys `0..=i + (Tk − Tq)` (decoder self-attention with a KV cache).
    /// `k`/`v` may have fewer batch rows than `q` when they divide it: query rows then share
    /// key/value rows in contiguous groups (the beams of one audio share its cross-attention).
    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor>;

    // ---- recurrent ------------------------------------------------------------------------
    /// One direction of `nn.LSTM` over a whole sequence `x[B, T, In]` → `[B, T, H]`
    /// (gate order i, f, g, o as PyTorch; `reverse` runs from the last step).
    fn lstm(
        &self,
        x: &Tensor,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        reverse: bool,
    ) -> Result<Tensor>;

    // ---- indexing, layout, reductions -----------------------------------------------------
    /// Rows of `table[V, D]` → `[ids.len(), D]`.
    fn embedding(&self, ids: &[u32], table: &Tensor) -> Result<Tensor>;
    /// Token embeddings plus positional embeddings: `ids` are rows of `seq_len` tokens at
    /// positions `offset..offset + seq_len` of `positions[P, D]` → `[ids.len(), D]`. A backend
    /// may do both in one pass.
    fn embedding_with_positions(
        &self,
        ids: &[u32],
        table: &Tensor,
        positions: &Tensor,
        offset: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        if seq_len == 0 || !ids.len().is_multiple_of(seq_len) {
            return Err(Error::shape("embedding_with_positions", format!("{} ids in rows of {seq_len}", ids.len())));
        }
        let d = table.dim(-1);
        let x = self.embedding(ids, table)?.reshape(&[ids.len() / seq_len, seq_len, d])?;
        let pos = self.slice(positions, 0, offset, seq_len)?;
        self.binary(&x, &pos, BinaryOp::Add)?.reshape(&[ids.len(), d])
    }
    /// Reorder dimensions (materialises).
    fn permute(&self, x: &Tensor, perm: &[usize]) -> Result<Tensor>;
    /// `x[.., start..start+len, ..]` along `dim`.
    fn slice(&self, x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor>;
    /// Rows of dimension 0 in the given order (repeats allowed): beam reordering, batch expansion.
    fn index_select(&self, x: &Tensor, indices: &[usize]) -> Result<Tensor>;
    /// Concatenate along `dim`.
    fn concat(&self, xs: &[&Tensor], dim: usize) -> Result<Tensor>;
    /// Reduce the last dimension.
    fn reduce(&self, x: &Tensor, op: Reduce) -> Result<Tensor>;
    /// `nn.MaxPool1d(kernel, stride)` on `x[B, C, T]` (no padding, floor mode).
    fn max_pool1d(&self, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor>;
    /// Index of the maximum of each row of the last dimension (only ids cross to the host).
    fn argmax(&self, x: &Tensor) -> Result<Vec<u32>>;

    // ---- token choice (decoding) ----------------------------------------------------------
    /// For each row of `logits[.., V]` (rows = every leading dimension): apply `masks[row]`, then
    /// return the argmax, the top `k` by log-probability and, with `sampling`, a sampled id, each
    /// with its log-probability in the masked row. Only these cross to the host. The default
    /// downloads the rows and runs [`token_choice::choose_on_host`], the reference.
    fn choose_tokens(
        &self,
        logits: &Tensor,
        masks: &[RowMask],
        k: usize,
        sampling: Option<&Sampling>,
    ) -> Result<Vec<TokenChoice>> {
        let (_, v) = check_choice(logits, masks, sampling)?;
        Ok(token_choice::choose_rows_on_host(&self.download(logits)?, v, masks, k, sampling))
    }

    /// `log_softmax(logits[row])[id]` of a `[rows, V]` tensor (Whisper's no-speech probability):
    /// one value crosses to the host. The default downloads the row.
    fn logprob_of(&self, logits: &Tensor, row: usize, id: u32) -> Result<f32> {
        let (rows, v) = logits.rows_cols();
        if row >= rows || id as usize >= v {
            return Err(Error::shape("logprob_of", format!("row {row}, id {id} of {:?}", logits.shape())));
        }
        let data = self.download(logits)?;
        Ok(token_choice::log_softmax(&data[row * v..(row + 1) * v])[id as usize])
    }
}

/// Rows and width of a [`Backend::choose_tokens`] call, checked against its masks and draws.
pub fn check_choice(logits: &Tensor, masks: &[RowMask], sampling: Option<&Sampling>) -> Result<(usize, usize)> {
    let (rows, v) = logits.rows_cols();
    if masks.len() != rows || v == 0 {
        return Err(Error::shape("choose_tokens", format!("{} masks for logits {:?}", masks.len(), logits.shape())));
    }
    if let Some(s) = sampling {
        if s.uniforms.len() != rows || s.temperature <= 0.0 {
            return Err(Error::shape(
                "choose_tokens",
                format!("{} uniform draws at temperature {} for {rows} rows", s.uniforms.len(), s.temperature),
            ));
        }
    }
    Ok((rows, v))
}

/// A handle to a backend; cheap to clone.
#[derive(Clone)]
pub struct Device(Arc<dyn Backend>);

impl std::ops::Deref for Device {
    type Target = dyn Backend;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.0.name())
    }
}

/// What the user asked for: `--device auto|cpu|cuda`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    Auto,
    Cpu,
    Cuda,
}

impl std::str::FromStr for DeviceRequest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceRequest::Auto),
            "cpu" => Ok(DeviceRequest::Cpu),
            "cuda" | "gpu" => Ok(DeviceRequest::Cuda),
            other => Err(Error::Other(format!("unknown device `{other}` (expected auto, cpu or cuda)"))),
        }
    }
}

impl Device {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Device(backend)
    }

    pub fn cpu() -> Self {
        Device(Arc::new(cpu::CpuBackend::new()))
    }

    /// Pick a device: `auto` takes CUDA when it is usable (libraries found, GPU opened, kernels
    /// loaded and the start-up self-check passed) and otherwise falls back to the CPU with a log
    /// line saying why; an explicit `cuda` that cannot be honoured is an error naming the reason.
    pub fn select(request: DeviceRequest) -> Result<Self> {
        match request {
            DeviceRequest::Cpu => Ok(Device::cpu()),
            DeviceRequest::Auto => match open_cuda() {
                Ok(dev) => Ok(dev),
                Err(reason) => {
                    tracing::info!("CUDA is not used: {reason}; using the CPU");
                    Ok(Device::cpu())
                }
            },
            DeviceRequest::Cuda => open_cuda()
                .map_err(|reason| Error::Other(format!("device `cuda` requested, but CUDA is not usable: {reason}"))),
        }
    }

    // Convenience wrappers that keep model code short.
    pub fn gelu(&self, x: &Tensor) -> Result<Tensor> {
        self.activation(x, Activation::Gelu)
    }
    pub fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.binary(a, b, BinaryOp::Add)
    }
    pub fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.binary(a, b, BinaryOp::Mul)
    }
}

/// GPU 0 as a device, after the start-up self-check (every kernel against the CPU on small
/// random inputs); the reason it cannot be used otherwise.
#[cfg(feature = "cuda-backend")]
fn open_cuda() -> std::result::Result<Device, String> {
    let started = std::time::Instant::now();
    let backend = cuda::CudaBackend::new(0)?;
    let dev = Device(Arc::new(backend));
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
