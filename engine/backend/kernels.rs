//! What a backend implements: one trait per op family, launch-only. [`Device`](super::Device)
//! checks every op's operands ([`shape_checks`](super::shape_checks)) before it calls these, so a
//! backend may assume the shapes agree and only computes. Each backend implements each family in
//! the file of that family (`cpu/conv.rs`, `cuda/conv.rs`, ...), so adding an op is: declare it
//! here, write its shape rule and its [`Device`](super::Device) method, and implement it on each
//! backend. Observers (profiling, counting) wrap every op at the device, for any backend.
//!
//! Conventions: tensors are contiguous row-major f32 (on the device, any precision the backend
//! chooses internally); "channels-first" sequences are `[batch, channels, time]`; "tokens"
//! sequences are `[batch, time, features]`.

use super::{
    Activation, BinaryOp, Conv1dParams, Conv2dParams, Padding, Reduce, RowMask, Sampling, Tensor, TokenChoice,
};
use crate::error::Result;

/// Moving data between the host and the device.
pub trait MemoryOps {
    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor>;
    fn download(&self, t: &Tensor) -> Result<Vec<f32>>;
    /// A weight whose values are f16 (a half-precision checkpoint). Ops treat it as the f32
    /// tensor of the same values; a backend may keep it in half precision, which halves its
    /// memory and the bandwidth of reading it, with no rounding (every f16 is exactly an f32).
    /// Such a tensor must be accepted as the weight of [`LinearOps::linear`], the table of
    /// [`LayoutOps::embedding`], and by [`MemoryOps::download`].
    fn upload_f16(&self, data: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        let widened: Vec<f32> = data.iter().map(|v| v.to_f32()).collect();
        self.upload(&widened, shape)
    }
    /// A linear weight `w[N, K]` in the backend's int8 form (quantised per output channel, as
    /// CTranslate2's `compute_type=int8`) where the backend computes int8 products on this
    /// machine; elsewhere `w` itself ([`Tensor::dtype`] tells which). The result must be accepted
    /// as the weight of [`LinearOps::linear`] (and its fused forms), the table of
    /// [`LayoutOps::embedding`], and by [`MemoryOps::download`] (its dequantised values).
    fn quantize_int8(&self, w: &Tensor) -> Result<Tensor> {
        Ok(w.clone())
    }
    /// A weight `w[N, K]` rounded to bfloat16 in the backend's form where the backend computes
    /// bf16 products (f32 sums) on this machine; elsewhere `w` itself ([`Tensor::dtype`] tells
    /// which). The result must be accepted as the weight of [`LinearOps::linear`] (and its fused
    /// forms), as either weight of [`RecurrentOps::lstm`], viewed as `[C_out, C_in / groups,
    /// kernel…]` as the weight of [`ConvOps::conv1d`] and [`ConvOps::conv2d`], and by
    /// [`MemoryOps::download`] (its rounded values).
    fn round_bfloat16(&self, w: &Tensor) -> Result<Tensor> {
        Ok(w.clone())
    }
    /// A linear weight `w[N, K]` in the backend's form for products of a few rows against many
    /// outputs (a decoder step's beams against the vocabulary) where it has one; elsewhere `w`
    /// itself. The values are the same ([`Tensor::dtype`] too), only their layout differs; sums
    /// may be taken in another order. The result must be accepted as the weight of
    /// [`LinearOps::linear`] (and its fused forms), the table of [`LayoutOps::embedding`], as
    /// the weight to [`MemoryOps::quantize_int8`] and [`MemoryOps::round_bfloat16`], and by
    /// [`MemoryOps::download`].
    fn pack_for_few_rows(&self, w: &Tensor) -> Result<Tensor> {
        Ok(w.clone())
    }
    /// `x`'s values rounded to f16 (round to nearest even) and kept in half precision:
    /// attention's keys and values read at half the bytes (a decoder's cross-attention reads
    /// every audio frame's key and value at every step). Ops treat it as the f32 tensor of the
    /// rounded values. The result must be accepted as `k` and `v` of [`AttentionOps::attention`]
    /// (and of its `bf16` and `kv_lens` forms), by [`LayoutOps::index_select`], by
    /// [`MemoryOps::to_float32`] and by [`MemoryOps::download`].
    fn to_float16(&self, x: &Tensor) -> Result<Tensor>;
    /// A [`MemoryOps::to_float16`] tensor's values as an f32 tensor (exact: every f16 is an f32).
    fn to_float32(&self, x: &Tensor) -> Result<Tensor>;
}

/// Products with weights.
pub trait LinearOps: ElementwiseOps {
    /// `x[.., K] · w[N, K]ᵀ + b[N]` — a PyTorch `nn.Linear`.
    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor>;
    /// `act(x · wᵀ + b)`: a linear layer and its activation. A backend may fuse them.
    fn linear_activation(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, act: Activation) -> Result<Tensor> {
        let y = self.linear(x, w, b)?;
        self.activation(&y, act)
    }
    /// `residual + x · wᵀ + b` (a skip connection). A backend may fuse them.
    fn linear_residual(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, residual: &Tensor) -> Result<Tensor> {
        let y = self.linear(x, w, b)?;
        self.binary(residual, &y, BinaryOp::Add)
    }
    /// Batched `a[B, M, K] · b[B, K, N]` (or `b[B, N, K]ᵀ` when `transpose_b`).
    fn matmul(&self, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor>;
}

/// Convolutions and pooling windows.
pub trait ConvOps {
    /// `nn.Conv1d` on `x[B, C_in, T]` with `w[C_out, C_in / groups, K]` (zero padding).
    fn conv1d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor>;
    /// `nn.Conv2d` on `x[B, C_in, H, W]` with `w[C_out, C_in / groups, KH, KW]` (zero padding).
    fn conv2d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor>;
    /// `nn.MaxPool1d(kernel, stride)` on `x[B, C, T]` (no padding, floor mode).
    fn max_pool1d(&self, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor>;
    /// `scale.len()` overlapping windows of `x[C, T]`, `hop` apart and `len` long, each scaled
    /// and shifted, then their magnitudes max-pooled over `pool` frames (stride `pool`, floor
    /// mode): `out[w, c, j] = max_{i < pool} |x[c, w·hop + j·pool + i] · scale[w] + shift[w, c]|`
    /// (`[W, C, (len − pool) / pool + 1]`, no frames when `len < pool`). SincNet's
    /// `|filter bank| → MaxPool1d` of each window, read from one filter-bank pass.
    fn windows_abs_max_pool(
        &self,
        x: &Tensor,
        hop: usize,
        len: usize,
        scale: &Tensor,
        shift: &Tensor,
        pool: usize,
    ) -> Result<Tensor>;
}

/// Normalisations.
pub trait NormOps {
    /// Layer norm over the last dimension.
    fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor>;
    /// `nn.GroupNorm` on `x[B, C, T]`; `nn.InstanceNorm1d` is `groups = C` (affine optional).
    fn group_norm(
        &self,
        x: &Tensor,
        groups: usize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor>;
    /// `nn.BatchNorm{1,2}d` in inference mode on `x[B, C, ...]` (any rank from 2) with running
    /// statistics, followed by a ReLU when `relu` (CAM++'s `nonlinear` sequences, in one pass).
    #[allow(clippy::too_many_arguments)]
    fn batch_norm(
        &self,
        x: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        relu: bool,
    ) -> Result<Tensor>;
}

/// Pointwise ops.
pub trait ElementwiseOps {
    fn activation(&self, x: &Tensor, act: Activation) -> Result<Tensor>;
    /// `a op b` with NumPy broadcasting of `b` against `a` (the result has `a`'s shape).
    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor>;
    /// `x · s`.
    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor>;
}

/// Softmax and attention.
pub trait AttentionOps {
    /// Softmax (or log-softmax) over the last dimension.
    fn softmax(&self, x: &Tensor, log: bool) -> Result<Tensor>;
    /// Multi-head scaled dot-product attention on packed heads:
    /// `q[B, Tq, H·Dh]`, `k`/`v[B_kv, Tk, H·Dh]` → `[B, Tq, H·Dh]`, scale `1/√Dh`.
    /// `causal`: query `i` sees keys `0..=i + (Tk − Tq)` (decoder self-attention with a KV cache).
    /// `B_kv` divides `B`: query rows share key/value rows in contiguous groups (the beams of one
    /// audio share its cross-attention).
    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor>;
    /// [`Self::attention`] with both products (`Q·Kᵀ`, `P·V`) on operands rounded to bfloat16
    /// (f32 sums, the softmax in f32) where the backend computes bf16 products and many query
    /// rows share their keys (an encoder); elsewhere [`Self::attention`] itself (the CUDA
    /// backend's attention already runs its products in f16).
    fn attention_bf16(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        self.attention(q, k, v, heads, causal)
    }
    /// [`Self::attention`] (not causal) with a key padding mask: key/value batch row `b` has
    /// `kv_lens[b]` keys (`1 ≤ kv_lens[b] ≤ Tk`), the rest being padding that no query sees. A
    /// batch of sequences of different lengths padded to one `Tk` (transformers'
    /// `attention_mask`): each valid query row's result is that of its sequence alone. Padded
    /// query rows are computed like the others (finite; callers drop them).
    fn attention_kv_lens(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, kv_lens: &[usize]) -> Result<Tensor>;
    /// [`Self::attention_kv_lens`] with bf16 products as [`Self::attention_bf16`] has them
    /// (a batch of padded sequences through an encoder in bf16); elsewhere
    /// [`Self::attention_kv_lens`] itself (the CUDA backend's already runs its products in f16).
    fn attention_kv_lens_bf16(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        kv_lens: &[usize],
    ) -> Result<Tensor> {
        self.attention_kv_lens(q, k, v, heads, kv_lens)
    }
}

/// Recurrent layers.
pub trait RecurrentOps {
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
}

/// Indexing, layout and reductions.
pub trait LayoutOps: ElementwiseOps {
    /// Rows of `table[V, D]` → `[ids.len(), D]`.
    fn embedding(&self, ids: &[u32], table: &Tensor) -> Result<Tensor>;
    /// Token embeddings plus positional embeddings: `ids` are rows of `seq_len` tokens at
    /// positions `offset..offset + seq_len` of `positions[P, D]` → `[ids.len(), D]`.
    fn embedding_with_positions(
        &self,
        ids: &[u32],
        table: &Tensor,
        positions: &Tensor,
        offset: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        let d = table.dim(-1);
        let x = self.embedding(ids, table)?.reshape(&[ids.len() / seq_len, seq_len, d])?;
        let pos = self.slice(positions, 0, offset, seq_len)?;
        self.binary(&x, &pos, BinaryOp::Add)?.reshape(&[ids.len(), d])
    }
    /// Reorder dimensions (materialises).
    fn permute(&self, x: &Tensor, perm: &[usize]) -> Result<Tensor>;
    /// `x[.., start..start+len, ..]` along `dim`.
    fn slice(&self, x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor>;
    /// Rows of dimension 0 in the given order (repeats allowed); an f16 tensor
    /// ([`MemoryOps::to_float16`]) gives an f16 tensor.
    fn index_select(&self, x: &Tensor, indices: &[usize]) -> Result<Tensor>;
    /// Concatenate along `dim`.
    fn concat(&self, xs: &[&Tensor], dim: usize) -> Result<Tensor>;
    /// `cache[R0, T, D]`'s rows picked by `sources` (row `i` continues row `sources[i]`), each
    /// followed along `T` by that row of `new[R, S, D]`: `[R, T + S, D]`, the
    /// `concat([index_select(cache, sources), new], 1)` of a beam search's reordered
    /// self-attention cache grown by a step, in one copy instead of two.
    fn gather_append(&self, cache: &Tensor, sources: &[usize], new: &Tensor) -> Result<Tensor>;
    /// `x` padded along `dim` with `before` and `after` values: a constant, or the values
    /// mirrored about the edge without repeating it (`F.pad(mode="reflect")`).
    fn pad(&self, x: &Tensor, dim: usize, before: usize, after: usize, padding: Padding) -> Result<Tensor>;
    /// Reduce the last dimension.
    fn reduce(&self, x: &Tensor, op: Reduce) -> Result<Tensor>;
    /// Index of the maximum of each row of the last dimension (only ids cross to the host).
    fn argmax(&self, x: &Tensor) -> Result<Vec<u32>>;
}

/// Pooling over time.
pub trait PoolingOps {
    /// Statistics pooling of `x[B, C, T]` over time, `[B, 2C]` = mean then standard deviation,
    /// as pyannote's `StatsPool`: without `weights`, `mean(x)` and the unbiased `std(x)`; with
    /// `weights[B, T]` (a mask, or soft frame weights), `v1 = Σw + 1e-8`, `mean = Σ w·x / v1`,
    /// `var = Σ w·(x − mean)² / (v1 − Σw² / v1 + 1e-8)`, `std = √var`.
    fn stats_pool(&self, x: &Tensor, weights: Option<&Tensor>) -> Result<Tensor>;
}

/// Decoding's token choice, where the logits are. The defaults download the rows and run the
/// host reference ([`token_choice`](super::token_choice)).
pub trait TokenOps: MemoryOps {
    /// For each row of `logits[.., V]`: apply `masks[row]`, then return the argmax, the top `k`
    /// by log-probability and, with `sampling`, a sampled id, each with its log-probability in
    /// the masked row. Only these cross to the host.
    fn choose_tokens(
        &self,
        logits: &Tensor,
        masks: &[RowMask],
        k: usize,
        sampling: Option<&Sampling>,
    ) -> Result<Vec<TokenChoice>> {
        let v = logits.dim(-1);
        Ok(super::token_choice::choose_rows_on_host(&self.download(logits)?, v, masks, k, sampling))
    }
    /// `log_softmax(logits[row])[id]` of a `[rows, V]` tensor: one value crosses to the host.
    fn logprob_of(&self, logits: &Tensor, row: usize, id: u32) -> Result<f32> {
        let v = logits.dim(-1);
        let data = self.download(logits)?;
        Ok(super::token_choice::log_softmax(&data[row * v..(row + 1) * v])[id as usize])
    }
}
