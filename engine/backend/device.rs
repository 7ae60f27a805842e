//! [`Device`]: what model code holds and calls. Every op is declared here once: its operands are
//! checked by its rule in [`shape_checks`], its observers are told (profiling, counting), and
//! its backend runs it. Model code never asks which backend it talks to.

use std::sync::Arc;
use std::time::Instant;

use super::kernels::*;
use super::observe::{OpCall, OpObserver};
use super::{
    cpu, profile, shape_checks, Activation, BinaryOp, Conv1dParams, Conv2dParams, Padding, Reduce, RowMask, Sampling,
    Tensor, TokenChoice,
};
use crate::error::{Error, Result};

/// Everything a backend is: one implementation of every op family, plus what it says about
/// itself.
pub trait Backend:
    MemoryOps
    + LinearOps
    + ConvOps
    + NormOps
    + ElementwiseOps
    + AttentionOps
    + RecurrentOps
    + LayoutOps
    + PoolingOps
    + TokenOps
    + Send
    + Sync
{
    fn name(&self) -> &'static str;
    /// One line for logs: the backend and how it runs (SIMD level, threads, GPU model).
    fn describe(&self) -> String {
        self.name().to_string()
    }
    /// The precision of its GEMMs, for the `[Predict] compute_type=` log line.
    fn compute_type(&self) -> &'static str {
        "float32"
    }
    /// Wait until every op launched so far has finished (a no-op where ops are synchronous).
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    /// Whether two pipeline stages may issue ops from two threads at once, so that each fills
    /// the cores the other leaves idle (the CPU: its ops are synchronous, its thread pool takes
    /// work from both). A GPU's one stream gains little from it, and is not shared so.
    fn runs_stages_alongside(&self) -> bool {
        false
    }
    /// The most sequences a model that may choose (a VAD's batch of windows) should take through
    /// its layers in one pass, `None` for no limit. The CPU keeps a few windows' activations in
    /// its caches from one layer to the next; a GPU wants as many at once as it is given.
    fn sequences_per_pass(&self) -> Option<usize> {
        None
    }
}

/// A handle to a backend and its observers; cheap to clone.
#[derive(Clone)]
pub struct Device {
    backend: Arc<dyn Backend>,
    observers: Arc<[Arc<dyn OpObserver>]>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.backend.name())
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
    /// A device on `backend`; with `SCRIBE_PROFILE=1` its ops are timed ([`profile`]).
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let observers: Vec<Arc<dyn OpObserver>> =
            if profile::enabled() { vec![Arc::new(profile::Profiler)] } else { Vec::new() };
        Device { backend, observers: observers.into() }
    }

    pub fn cpu() -> Self {
        Device::new(Arc::new(cpu::CpuBackend::new()))
    }

    /// The same device with `observer` told of every op too.
    pub fn observed(&self, observer: Arc<dyn OpObserver>) -> Self {
        let observers: Vec<Arc<dyn OpObserver>> = self.observers.iter().cloned().chain([observer]).collect();
        Device { backend: self.backend.clone(), observers: observers.into() }
    }

    /// Pick a device: `auto` takes CUDA when it is usable (libraries found, GPU opened, kernels
    /// loaded and the start-up self-check passed) and otherwise falls back to the CPU with a log
    /// line saying why; an explicit `cuda` that cannot be honoured is an error naming the reason.
    pub fn select(request: DeviceRequest) -> Result<Self> {
        match request {
            DeviceRequest::Cpu => Ok(Device::cpu()),
            DeviceRequest::Auto => match super::open_cuda() {
                Ok(dev) => Ok(dev),
                Err(reason) => {
                    tracing::info!("CUDA is not used: {reason}; using the CPU");
                    Ok(Device::cpu())
                }
            },
            DeviceRequest::Cuda => super::open_cuda()
                .map_err(|reason| Error::Other(format!("device `cuda` requested, but CUDA is not usable: {reason}"))),
        }
    }

    pub fn name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    pub fn compute_type(&self) -> &'static str {
        self.backend.compute_type()
    }

    pub fn synchronize(&self) -> Result<()> {
        self.backend.synchronize()
    }

    /// See [`Backend::runs_stages_alongside`].
    pub fn runs_stages_alongside(&self) -> bool {
        self.backend.runs_stages_alongside()
    }

    /// `batch` sequences a pass, or fewer where the backend prefers fewer (see
    /// [`Backend::sequences_per_pass`]).
    pub fn sequences_per_pass(&self, batch: usize) -> usize {
        self.backend.sequences_per_pass().map_or(batch, |most| batch.min(most.max(1)))
    }

    /// Run one op on the backend, its observers told before and after.
    fn run<T>(&self, call: OpCall<'_>, op: impl FnOnce(&dyn Backend) -> Result<T>) -> Result<T> {
        if self.observers.is_empty() {
            return op(&*self.backend);
        }
        for o in self.observers.iter() {
            o.before(&call);
        }
        let started = Instant::now();
        let out = op(&*self.backend);
        if self.observers.iter().any(|o| o.timed()) {
            self.backend.synchronize()?;
        }
        let elapsed = started.elapsed();
        for o in self.observers.iter() {
            o.after(&call, elapsed);
        }
        out
    }

    // ---- memory ---------------------------------------------------------------------------
    pub fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        shape_checks::upload("upload", data.len(), shape)?;
        self.run(OpCall { op: "upload", inputs: &[], sizes: &[data.len()] }, |b| b.upload(data, shape))
    }

    /// A weight whose values are f16 (see [`MemoryOps::upload_f16`]).
    pub fn upload_f16(&self, data: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        shape_checks::upload("upload_f16", data.len(), shape)?;
        self.run(OpCall { op: "upload_f16", inputs: &[], sizes: &[data.len()] }, |b| b.upload_f16(data, shape))
    }

    /// A linear weight `[N, K]` quantised to int8 where the backend computes int8 products
    /// (see [`MemoryOps::quantize_int8`]); `w` itself elsewhere.
    pub fn quantize_int8(&self, w: &Tensor) -> Result<Tensor> {
        shape_checks::matrix("quantize_int8", w)?;
        self.run(OpCall { op: "quantize_int8", inputs: &[w], sizes: &[] }, |b| b.quantize_int8(w))
    }

    /// A weight `[N, K]` rounded to bfloat16 where the backend computes bf16 products (see
    /// [`MemoryOps::round_bfloat16`]); `w` itself elsewhere.
    pub fn round_bfloat16(&self, w: &Tensor) -> Result<Tensor> {
        shape_checks::matrix("round_bfloat16", w)?;
        self.run(OpCall { op: "round_bfloat16", inputs: &[w], sizes: &[] }, |b| b.round_bfloat16(w))
    }

    /// A linear weight `[N, K]` laid out for products with few rows where the backend has such
    /// a form (see [`MemoryOps::pack_for_few_rows`]); `w` itself elsewhere.
    pub fn pack_for_few_rows(&self, w: &Tensor) -> Result<Tensor> {
        shape_checks::matrix("pack_for_few_rows", w)?;
        self.run(OpCall { op: "pack_for_few_rows", inputs: &[w], sizes: &[] }, |b| b.pack_for_few_rows(w))
    }

    /// `x` rounded to f16 and kept in half precision, as attention's keys and values (see
    /// [`MemoryOps::to_float16`]).
    pub fn to_float16(&self, x: &Tensor) -> Result<Tensor> {
        shape_checks::activation_dtype("to_float16", x, &["float32"])?;
        self.run(OpCall { op: "to_float16", inputs: &[x], sizes: &[] }, |b| b.to_float16(x))
    }

    /// A [`Device::to_float16`] tensor widened back to f32 (exact; see [`MemoryOps::to_float32`]).
    pub fn to_float32(&self, x: &Tensor) -> Result<Tensor> {
        shape_checks::activation_dtype("to_float32", x, &["float16"])?;
        self.run(OpCall { op: "to_float32", inputs: &[x], sizes: &[] }, |b| b.to_float32(x))
    }

    pub fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        self.run(OpCall { op: "download", inputs: &[t], sizes: &[t.numel()] }, |b| b.download(t))
    }

    // ---- linear algebra -------------------------------------------------------------------
    /// `x[.., K] · w[N, K]ᵀ + b[N]` — a PyTorch `nn.Linear`.
    pub fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        shape_checks::linear(x, w, b)?;
        self.run(OpCall { op: "linear", inputs: &[x, w], sizes: &[] }, |k| k.linear(x, w, b))
    }

    /// `act(x · wᵀ + b)`.
    pub fn linear_activation(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, act: Activation) -> Result<Tensor> {
        shape_checks::linear(x, w, b)?;
        self.run(OpCall { op: "linear_activation", inputs: &[x, w], sizes: &[] }, |k| k.linear_activation(x, w, b, act))
    }

    /// `residual + x · wᵀ + b` with `residual` of the output's shape.
    pub fn linear_residual(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        shape_checks::linear_residual(x, w, b, residual)?;
        self.run(OpCall { op: "linear_residual", inputs: &[x, w, residual], sizes: &[] }, |k| {
            k.linear_residual(x, w, b, residual)
        })
    }

    /// Batched `a[B, M, K] · b[B, K, N]` (or `b[B, N, K]ᵀ` when `transpose_b`).
    pub fn matmul(&self, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
        shape_checks::matmul(a, b, transpose_b)?;
        self.run(OpCall { op: "matmul", inputs: &[a, b], sizes: &[] }, |k| k.matmul(a, b, transpose_b))
    }

    // ---- convolution ----------------------------------------------------------------------
    /// `nn.Conv1d` on `x[B, C_in, T]` with `w[C_out, C_in / groups, K]`.
    pub fn conv1d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor> {
        shape_checks::conv1d(x, w, b, p)?;
        self.run(OpCall { op: "conv1d", inputs: &[x, w], sizes: &[] }, |k| k.conv1d(x, w, b, p))
    }

    /// `nn.Conv2d` on `x[B, C_in, H, W]` with `w[C_out, C_in / groups, KH, KW]`.
    pub fn conv2d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor> {
        shape_checks::conv2d(x, w, b, p)?;
        self.run(OpCall { op: "conv2d", inputs: &[x, w], sizes: &[] }, |k| k.conv2d(x, w, b, p))
    }

    /// `nn.MaxPool1d(kernel, stride)` on `x[B, C, T]` (no padding, floor mode).
    pub fn max_pool1d(&self, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
        shape_checks::max_pool1d(x, kernel, stride)?;
        self.run(OpCall { op: "max_pool1d", inputs: &[x], sizes: &[kernel, stride] }, |k| {
            k.max_pool1d(x, kernel, stride)
        })
    }

    // ---- normalisation --------------------------------------------------------------------
    /// Layer norm over the last dimension.
    pub fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        shape_checks::layer_norm(x, gamma, beta)?;
        self.run(OpCall { op: "layer_norm", inputs: &[x], sizes: &[] }, |k| k.layer_norm(x, gamma, beta, eps))
    }

    /// `nn.GroupNorm` on `x[B, C, T]`.
    pub fn group_norm(&self, x: &Tensor, groups: usize, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        shape_checks::group_norm(x, groups, Some(gamma), Some(beta))?;
        self.run(OpCall { op: "group_norm", inputs: &[x], sizes: &[groups] }, |k| {
            k.group_norm(x, groups, Some(gamma), Some(beta), eps)
        })
    }

    /// Overlapping windows of `x[C, T]`, each with an affine map of its own, their magnitudes
    /// max-pooled (see
    /// [`ConvOps::windows_abs_max_pool`](crate::backend::kernels::ConvOps::windows_abs_max_pool)).
    pub fn windows_abs_max_pool(
        &self,
        x: &Tensor,
        hop: usize,
        len: usize,
        scale: &Tensor,
        shift: &Tensor,
        pool: usize,
    ) -> Result<Tensor> {
        shape_checks::windows_abs_max_pool(x, hop, len, scale, shift, pool)?;
        self.run(OpCall { op: "windows_abs_max_pool", inputs: &[x, scale, shift], sizes: &[hop, len, pool] }, |k| {
            k.windows_abs_max_pool(x, hop, len, scale, shift, pool)
        })
    }

    /// `nn.InstanceNorm1d` on `x[B, C, T]` (statistics per sample and channel), optional affine.
    pub fn instance_norm(&self, x: &Tensor, gamma: Option<&Tensor>, beta: Option<&Tensor>, eps: f32) -> Result<Tensor> {
        let (_, c, _) = x.dims3("instance_norm")?;
        shape_checks::group_norm(x, c, gamma, beta)?;
        self.run(OpCall { op: "instance_norm", inputs: &[x], sizes: &[] }, |k| k.group_norm(x, c, gamma, beta, eps))
    }

    /// `nn.BatchNorm{1,2}d` in inference mode on `x[B, C, ...]` with running statistics.
    pub fn batch_norm(
        &self,
        x: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<Tensor> {
        self.batch_norm_then(x, [mean, var, gamma, beta], eps, false)
    }

    /// `relu(BN(x))`: [`Device::batch_norm`] and a ReLU in one pass.
    pub fn batch_norm_relu(
        &self,
        x: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<Tensor> {
        self.batch_norm_then(x, [mean, var, gamma, beta], eps, true)
    }

    /// [`Device::batch_norm`], with the ReLU when `relu` (its own row in the op profile).
    fn batch_norm_then(
        &self,
        x: &Tensor,
        [mean, var, gamma, beta]: [&Tensor; 4],
        eps: f32,
        relu: bool,
    ) -> Result<Tensor> {
        shape_checks::batch_norm(x, [mean, var, gamma, beta])?;
        let op = if relu { "batch_norm_relu" } else { "batch_norm" };
        self.run(OpCall { op, inputs: &[x], sizes: &[] }, |k| k.batch_norm(x, mean, var, gamma, beta, eps, relu))
    }

    // ---- elementwise ----------------------------------------------------------------------
    pub fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        self.run(OpCall { op: "activation", inputs: &[x], sizes: &[] }, |k| k.activation(x, act))
    }

    /// `a op b` with NumPy broadcasting of `b` against `a` (the result has `a`'s shape).
    pub fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
        shape_checks::broadcast(a, b)?;
        self.run(OpCall { op: "binary", inputs: &[a, b], sizes: &[] }, |k| k.binary(a, b, op))
    }

    /// `x · s`.
    pub fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        self.run(OpCall { op: "scale", inputs: &[x], sizes: &[] }, |k| k.scale(x, s))
    }

    pub fn gelu(&self, x: &Tensor) -> Result<Tensor> {
        self.activation(x, Activation::Gelu)
    }

    pub fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.binary(a, b, BinaryOp::Add)
    }

    pub fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.binary(a, b, BinaryOp::Mul)
    }

    // ---- softmax, attention ---------------------------------------------------------------
    pub fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        shape_checks::rank_at_least("softmax", x, 1)?;
        self.run(OpCall { op: "softmax", inputs: &[x], sizes: &[] }, |k| k.softmax(x, false))
    }

    pub fn log_softmax(&self, x: &Tensor) -> Result<Tensor> {
        shape_checks::rank_at_least("log_softmax", x, 1)?;
        self.run(OpCall { op: "log_softmax", inputs: &[x], sizes: &[] }, |k| k.softmax(x, true))
    }

    /// Multi-head scaled dot-product attention (see [`AttentionOps::attention`]).
    pub fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        shape_checks::attention(q, k, v, heads, causal)?;
        self.run(OpCall { op: "attention", inputs: &[q, k, v], sizes: &[heads] }, |b| {
            b.attention(q, k, v, heads, causal)
        })
    }

    /// [`Device::attention`] with bf16 products where the backend has them (see
    /// [`AttentionOps::attention_bf16`]).
    pub fn attention_bf16(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        shape_checks::attention(q, k, v, heads, causal)?;
        self.run(OpCall { op: "attention_bf16", inputs: &[q, k, v], sizes: &[heads] }, |b| {
            b.attention_bf16(q, k, v, heads, causal)
        })
    }

    /// Attention where key/value row `b` has only its first `kv_lens[b]` keys (see
    /// [`AttentionOps::attention_kv_lens`]).
    pub fn attention_kv_lens(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        kv_lens: &[usize],
    ) -> Result<Tensor> {
        shape_checks::attention_kv_lens(q, k, v, heads, kv_lens)?;
        self.run(OpCall { op: "attention_kv_lens", inputs: &[q, k, v], sizes: &[heads] }, |b| {
            b.attention_kv_lens(q, k, v, heads, kv_lens)
        })
    }

    /// [`Device::attention_kv_lens`] with bf16 products where the backend has them (see
    /// [`AttentionOps::attention_kv_lens_bf16`]).
    pub fn attention_kv_lens_bf16(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        kv_lens: &[usize],
    ) -> Result<Tensor> {
        shape_checks::attention_kv_lens(q, k, v, heads, kv_lens)?;
        self.run(OpCall { op: "attention_kv_lens_bf16", inputs: &[q, k, v], sizes: &[heads] }, |b| {
            b.attention_kv_lens_bf16(q, k, v, heads, kv_lens)
        })
    }

    // ---- recurrent ------------------------------------------------------------------------
    /// One direction of `nn.LSTM` over `x[B, T, In]` → `[B, T, H]`.
    pub fn lstm(
        &self,
        x: &Tensor,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        reverse: bool,
    ) -> Result<Tensor> {
        shape_checks::lstm(x, w_ih, w_hh, b_ih, b_hh)?;
        self.run(OpCall { op: "lstm", inputs: &[x, w_ih, w_hh], sizes: &[] }, |k| {
            k.lstm(x, w_ih, w_hh, b_ih, b_hh, reverse)
        })
    }

    // ---- indexing, layout, reductions -----------------------------------------------------
    /// Rows of `table[V, D]` → `[ids.len(), D]`.
    pub fn embedding(&self, ids: &[u32], table: &Tensor) -> Result<Tensor> {
        shape_checks::embedding(ids, table)?;
        self.run(OpCall { op: "embedding", inputs: &[table], sizes: &[ids.len()] }, |k| k.embedding(ids, table))
    }

    /// Token embeddings plus positional embeddings (see [`LayoutOps::embedding_with_positions`]).
    pub fn embedding_with_positions(
        &self,
        ids: &[u32],
        table: &Tensor,
        positions: &Tensor,
        offset: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        shape_checks::embedding_with_positions(ids, table, positions, offset, seq_len)?;
        let call = OpCall {
            op: "embedding_with_positions",
            inputs: &[table, positions],
            sizes: &[ids.len(), seq_len, offset],
        };
        self.run(call, |k| k.embedding_with_positions(ids, table, positions, offset, seq_len))
    }

    /// Reorder dimensions (materialises).
    pub fn permute(&self, x: &Tensor, perm: &[usize]) -> Result<Tensor> {
        shape_checks::permutation(x.shape(), perm)?;
        self.run(OpCall { op: "permute", inputs: &[x], sizes: perm }, |k| k.permute(x, perm))
    }

    /// `x[.., start..start+len, ..]` along `dim`.
    pub fn slice(&self, x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        shape_checks::slice(x.shape(), dim, start, len)?;
        self.run(OpCall { op: "slice", inputs: &[x], sizes: &[dim, start, len] }, |k| k.slice(x, dim, start, len))
    }

    /// Rows of dimension 0 in the given order (repeats allowed), of an f32 or f16 tensor.
    pub fn index_select(&self, x: &Tensor, indices: &[usize]) -> Result<Tensor> {
        shape_checks::index_select(x.shape(), indices)?;
        shape_checks::activation_dtype("index_select", x, &["float32", "float16"])?;
        self.run(OpCall { op: "index_select", inputs: &[x], sizes: indices }, |k| k.index_select(x, indices))
    }

    /// Concatenate along `dim`.
    pub fn concat(&self, xs: &[&Tensor], dim: usize) -> Result<Tensor> {
        shape_checks::concat(xs, dim)?;
        self.run(OpCall { op: "concat", inputs: xs, sizes: &[dim] }, |k| k.concat(xs, dim))
    }

    /// `cache`'s rows picked by `sources`, each grown along dimension 1 by that row of `new`
    /// (see [`LayoutOps::gather_append`]).
    pub fn gather_append(&self, cache: &Tensor, sources: &[usize], new: &Tensor) -> Result<Tensor> {
        shape_checks::gather_append(cache.shape(), sources, new.shape())?;
        self.run(OpCall { op: "gather_append", inputs: &[cache, new], sizes: sources }, |k| {
            k.gather_append(cache, sources, new)
        })
    }

    /// `x` padded along `dim` (see [`LayoutOps::pad`]).
    pub fn pad(&self, x: &Tensor, dim: usize, before: usize, after: usize, padding: Padding) -> Result<Tensor> {
        shape_checks::pad(x.shape(), dim, before, after, padding)?;
        self.run(OpCall { op: "pad", inputs: &[x], sizes: &[dim, before, after] }, |k| {
            k.pad(x, dim, before, after, padding)
        })
    }

    /// Reduce the last dimension.
    pub fn reduce(&self, x: &Tensor, op: Reduce) -> Result<Tensor> {
        shape_checks::rows("reduce", x)?;
        self.run(OpCall { op: "reduce", inputs: &[x], sizes: &[] }, |k| k.reduce(x, op))
    }

    /// Index of the maximum of each row of the last dimension.
    pub fn argmax(&self, x: &Tensor) -> Result<Vec<u32>> {
        shape_checks::rows("argmax", x)?;
        self.run(OpCall { op: "argmax", inputs: &[x], sizes: &[] }, |k| k.argmax(x))
    }

    // ---- pooling --------------------------------------------------------------------------
    /// Mean and standard deviation over time, `[B, 2C]` (see [`PoolingOps::stats_pool`]).
    pub fn stats_pool(&self, x: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
        shape_checks::stats_pool(x, weights)?;
        let inputs: &[&Tensor] = match weights {
            Some(w) => &[x, w],
            None => &[x],
        };
        self.run(OpCall { op: "stats_pool", inputs, sizes: &[] }, |k| k.stats_pool(x, weights))
    }

    // ---- token choice ---------------------------------------------------------------------
    /// Masked argmax, top-k and sampling per row of `logits` (see [`TokenOps::choose_tokens`]).
    pub fn choose_tokens(
        &self,
        logits: &Tensor,
        masks: &[RowMask],
        k: usize,
        sampling: Option<&Sampling>,
    ) -> Result<Vec<TokenChoice>> {
        shape_checks::choose_tokens(logits, masks, sampling)?;
        self.run(OpCall { op: "choose_tokens", inputs: &[logits], sizes: &[k] }, |b| {
            b.choose_tokens(logits, masks, k, sampling)
        })
    }

    /// `log_softmax(logits[row])[id]`.
    pub fn logprob_of(&self, logits: &Tensor, row: usize, id: u32) -> Result<f32> {
        shape_checks::logprob_of(logits, row, id)?;
        self.run(OpCall { op: "logprob_of", inputs: &[logits], sizes: &[row, id as usize] }, |b| {
            b.logprob_of(logits, row, id)
        })
    }
}
