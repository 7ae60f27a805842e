//! The shape rules of the ops, written once for every backend: [`Device`](super::Device) runs
//! each op's rule before the backend sees the operands. Each function checks the operands and
//! returns the dimensions the kernels need, or the error naming what disagrees.

use super::{Conv1dParams, Conv2dParams, Padding, RowMask, Sampling, Tensor};
use crate::error::{Error, Result};

/// `data` fills `shape`.
pub fn upload(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    if shape.iter().product::<usize>() != len {
        return Err(Error::shape(op, format!("{len} values for shape {shape:?}")));
    }
    Ok(())
}

/// `x[.., K] · w[N, K]ᵀ + b[N]`: `(rows, N, K)`.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<(usize, usize, usize)> {
    if x.rank() == 0 {
        return Err(Error::shape("linear", "input must have rank ≥ 1, got a scalar"));
    }
    let (rows, k) = x.rows_cols();
    let (n, wk) = match w.shape() {
        [n, wk] => (*n, *wk),
        s => return Err(Error::shape("linear", format!("weight must be [N, K], got {s:?}"))),
    };
    if wk != k {
        return Err(Error::shape("linear", format!("input {:?} vs weight {:?}", x.shape(), w.shape())));
    }
    if let Some(b) = b.filter(|b| b.numel() != n) {
        return Err(Error::shape("linear", format!("bias {:?} for {n} outputs", b.shape())));
    }
    Ok((rows, n, k))
}

/// The output shape of [`linear`]: `x`'s with the last dimension `n`.
pub fn linear_output(x: &Tensor, n: usize) -> Vec<usize> {
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    shape
}

/// [`linear`] plus a residual of the output's shape.
pub fn linear_residual(x: &Tensor, w: &Tensor, b: Option<&Tensor>, residual: &Tensor) -> Result<(usize, usize, usize)> {
    let dims = linear(x, w, b)?;
    if residual.shape() != linear_output(x, dims.1) {
        return Err(Error::shape(
            "linear_residual",
            format!("residual {:?} for output {:?}", residual.shape(), linear_output(x, dims.1)),
        ));
    }
    Ok(dims)
}

/// `a[B, M, K] · b[B, K, N]` (or `b[B, N, K]ᵀ`): `(B, M, N, K)`.
pub fn matmul(a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<(usize, usize, usize, usize)> {
    let (ba, m, k) = a.dims3("matmul")?;
    let (bb, r, c) = b.dims3("matmul")?;
    let (kb, n) = if transpose_b { (c, r) } else { (r, c) };
    if ba != bb || kb != k {
        return Err(Error::shape("matmul", format!("{:?} · {:?} (transpose_b={transpose_b})", a.shape(), b.shape())));
    }
    Ok((ba, m, n, k))
}

/// Dimensions of a checked `nn.Conv1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    pub batch: usize,
    pub c_in: usize,
    pub t_in: usize,
    pub c_out: usize,
    /// Input channels per group.
    pub cg_in: usize,
    pub kernel: usize,
    pub t_out: usize,
}

/// `x[B, C_in, T]`, `w[C_out, C_in / groups, K]`, optional `b[C_out]`.
pub fn conv1d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<ConvDims> {
    let (batch, c_in, t_in) = x.dims3("conv1d")?;
    let (c_out, cg_in, kernel) = w.dims3("conv1d")?;
    let g = p.groups;
    if g == 0 || kernel == 0 || p.stride == 0 || p.dilation == 0 || c_in % g != 0 || c_out % g != 0 || cg_in != c_in / g
    {
        return Err(Error::shape("conv1d", format!("input {:?}, weight {:?}, {p:?}", x.shape(), w.shape())));
    }
    if let Some(b) = b.filter(|b| b.numel() != c_out) {
        return Err(Error::shape("conv1d", format!("bias {:?} for {c_out} channels", b.shape())));
    }
    Ok(ConvDims { batch, c_in, t_in, c_out, cg_in, kernel, t_out: p.out_len(t_in, kernel) })
}

/// Dimensions of a checked `nn.Conv2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dDims {
    pub batch: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    /// Input channels per group.
    pub cg_in: usize,
    pub kh: usize,
    pub kw: usize,
    pub h_out: usize,
    pub w_out: usize,
}

/// `x[B, C_in, H, W]`, `w[C_out, C_in / groups, KH, KW]`, optional `b[C_out]`.
pub fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Conv2dDims> {
    let bad = || Error::shape("conv2d", format!("input {:?}, weight {:?}, {p:?}", x.shape(), w.shape()));
    let [batch, c_in, h_in, w_in] = x.shape()[..] else { return Err(bad()) };
    let [c_out, cg_in, kh, kw] = w.shape()[..] else { return Err(bad()) };
    let g = p.groups;
    let positive = [kh, kw, p.stride.0, p.stride.1, p.dilation.0, p.dilation.1, g].iter().all(|&v| v > 0);
    if !positive || c_in % g != 0 || c_out % g != 0 || cg_in != c_in / g {
        return Err(bad());
    }
    if let Some(b) = b.filter(|b| b.numel() != c_out) {
        return Err(Error::shape("conv2d", format!("bias {:?} for {c_out} channels", b.shape())));
    }
    let (h_out, w_out) = p.out_size((h_in, w_in), (kh, kw));
    Ok(Conv2dDims { batch, c_in, h_in, w_in, c_out, cg_in, kh, kw, h_out, w_out })
}

/// `nn.MaxPool1d(kernel, stride)` on `x[B, C, T]`: `(B, C, T, T_out)`.
pub fn max_pool1d(x: &Tensor, kernel: usize, stride: usize) -> Result<(usize, usize, usize, usize)> {
    let (b, c, t) = x.dims3("max_pool1d")?;
    if kernel == 0 || stride == 0 {
        return Err(Error::shape("max_pool1d", "kernel and stride must be positive"));
    }
    let t_out = if t >= kernel { (t - kernel) / stride + 1 } else { 0 };
    Ok((b, c, t, t_out))
}

/// Windows of `x[C, T]` (see `ConvOps::windows_abs_max_pool`): `(C, T, W, pooled frames)`.
/// Every window must lie inside `x`, `scale` hold one value a window, `shift` be `[W, C]` and
/// `pool` positive.
pub fn windows_abs_max_pool(
    x: &Tensor,
    hop: usize,
    len: usize,
    scale: &Tensor,
    shift: &Tensor,
    pool: usize,
) -> Result<(usize, usize, usize, usize)> {
    let op = "windows_abs_max_pool";
    let [c, t] = x.shape() else {
        return Err(Error::shape(op, format!("input {:?} is not [C, T]", x.shape())));
    };
    let (c, t, w) = (*c, *t, scale.numel());
    if scale.shape().len() != 1 {
        return Err(Error::shape(op, format!("scale {:?} is not [W]", scale.shape())));
    }
    if shift.shape() != [w, c] {
        return Err(Error::shape(op, format!("shift {:?} for {w} windows of {c} channels", shift.shape())));
    }
    if pool == 0 {
        return Err(Error::shape(op, "pool must be positive"));
    }
    let end = w.checked_sub(1).map_or(Some(0), |gaps| gaps.checked_mul(hop).and_then(|s| s.checked_add(len)));
    if end.is_none_or(|end| end > t) {
        return Err(Error::shape(op, format!("{w} windows of {len} every {hop} do not fit in {t}")));
    }
    Ok((c, t, w, len / pool))
}

/// Layer norm of `x[.., D]` with `gamma`, `beta` of `D` values: `(rows, D)`.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<(usize, usize)> {
    let (rows, d) = x.rows_cols();
    if x.rank() == 0 || gamma.numel() != d || beta.numel() != d {
        return Err(Error::shape(
            "layer_norm",
            format!("x {:?}, gamma {:?}, beta {:?}", x.shape(), gamma.shape(), beta.shape()),
        ));
    }
    Ok((rows, d))
}

/// `x[B, C, ...]` (rank ≥ 2) with four statistics of `C` values: `(C, elements per channel
/// and sample)`.
pub fn batch_norm(x: &Tensor, params: [&Tensor; 4]) -> Result<(usize, usize)> {
    if x.rank() < 2 {
        return Err(Error::shape("batch_norm", format!("expected [B, C, ...], got {:?}", x.shape())));
    }
    let c = x.dim(1);
    for (name, p) in ["mean", "var", "gamma", "beta"].iter().zip(params) {
        if p.numel() != c {
            return Err(Error::shape("batch_norm", format!("{name} {:?} for {c} channels", p.shape())));
        }
    }
    Ok((c, x.shape()[2..].iter().product()))
}

/// `b` broadcasts against `a` (NumPy rules, `b` right-aligned, possibly of lower rank).
pub fn broadcast(a: &Tensor, b: &Tensor) -> Result<()> {
    let (ash, bsh) = (a.shape(), b.shape());
    if bsh.len() > ash.len() {
        return Err(Error::shape("binary", format!("cannot broadcast {bsh:?} to {ash:?}")));
    }
    let pad = ash.len() - bsh.len();
    for (i, &db) in bsh.iter().enumerate() {
        let da = ash[pad + i];
        if db != da && db != 1 {
            return Err(Error::shape("binary", format!("dimension {}: cannot broadcast {bsh:?} to {ash:?}", pad + i)));
        }
    }
    Ok(())
}

/// `x` has at least `rank` dimensions.
pub fn rank_at_least(op: &'static str, x: &Tensor, rank: usize) -> Result<()> {
    if x.rank() < rank {
        return Err(Error::shape(op, format!("expected rank ≥ {rank}, got {:?}", x.shape())));
    }
    Ok(())
}

/// A tensor stored as one of `allowed` ([`Tensor::dtype`]).
pub fn activation_dtype(op: &'static str, x: &Tensor, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&x.dtype()) {
        return Ok(());
    }
    Err(Error::shape(op, format!("a {} tensor {:?} (expected {})", x.dtype(), x.shape(), allowed.join(" or "))))
}

/// A matrix `[rows, cols]`.
pub fn matrix(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    match x.shape() {
        &[rows, cols] => Ok((rows, cols)),
        other => Err(Error::shape(op, format!("expected a matrix [rows, cols], got {other:?}"))),
    }
}

/// An op that picks from the last dimension (reduce, argmax): rank ≥ 1 and a last dimension
/// that is not empty. Returns `(rows, last)`.
pub fn rows(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    let (rows, d) = x.rows_cols();
    if x.rank() == 0 || d == 0 {
        return Err(Error::shape(op, format!("empty last dimension in {:?}", x.shape())));
    }
    Ok((rows, d))
}

/// `x[B, C, T]` in `groups` groups, affine parameters of `C` values: `(B, C, T)`.
pub fn group_norm(
    x: &Tensor,
    groups: usize,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
) -> Result<(usize, usize, usize)> {
    let (b, c, t) = x.dims3("group_norm")?;
    if groups == 0 || c % groups != 0 {
        return Err(Error::shape("group_norm", format!("{c} channels in {groups} groups")));
    }
    if gamma.is_some_and(|g| g.numel() != c) || beta.is_some_and(|g| g.numel() != c) {
        return Err(Error::shape("group_norm", format!("affine parameters must have {c} values")));
    }
    Ok((b, c, t))
}

/// Multi-head attention operands (see [`Backend::attention`](super::Backend::attention)):
/// `(B, Tq, D, B_kv, Tk)`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
) -> Result<(usize, usize, usize, usize, usize)> {
    let (b, tq, d) = q.dims3("attention")?;
    let (bk, tk, dk) = k.dims3("attention")?;
    if bk == 0
        || b % bk != 0
        || dk != d
        || v.shape() != k.shape()
        || heads == 0
        || d % heads != 0
        || (causal && tq > tk)
    {
        return Err(Error::shape(
            "attention",
            format!("q {:?}, k {:?}, v {:?}, heads {heads}, causal {causal}", q.shape(), k.shape(), v.shape()),
        ));
    }
    // Keys and values may be kept in half precision (`to_float16`), both alike.
    activation_dtype("attention", q, &["float32"])?;
    activation_dtype("attention", k, &["float32", "float16"])?;
    if v.dtype() != k.dtype() {
        return Err(Error::shape("attention", format!("k is {} but v is {}", k.dtype(), v.dtype())));
    }
    Ok((b, tq, d, bk, tk))
}

/// Attention with key lengths (see
/// [`AttentionOps::attention_kv_lens`](super::kernels::AttentionOps::attention_kv_lens)): the
/// operands of non-causal attention and one length in `1..=Tk` per key/value batch row:
/// `(B, Tq, D, B_kv, Tk)`.
pub fn attention_kv_lens(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    kv_lens: &[usize],
) -> Result<(usize, usize, usize, usize, usize)> {
    let dims = attention(q, k, v, heads, false)?;
    let (_, _, _, bk, tk) = dims;
    if kv_lens.len() != bk || kv_lens.iter().any(|&n| n == 0 || n > tk) {
        return Err(Error::shape(
            "attention_kv_lens",
            format!("key lengths {kv_lens:?} for {bk} key/value rows of {tk} keys (each must be in 1..={tk})"),
        ));
    }
    Ok(dims)
}

/// One direction of `nn.LSTM` on `x[B, T, In]`: `(B, T, H)`.
pub fn lstm(x: &Tensor, w_ih: &Tensor, w_hh: &Tensor, b_ih: &Tensor, b_hh: &Tensor) -> Result<(usize, usize, usize)> {
    let (b, t, _) = x.dims3("lstm")?;
    let (g4, hsz) = match w_hh.shape() {
        [g4, h] if *g4 == 4 * *h => (*g4, *h),
        s => return Err(Error::shape("lstm", format!("w_hh must be [4H, H], got {s:?}"))),
    };
    if w_ih.shape() != [g4, x.dim(2)] || b_ih.numel() != g4 || b_hh.numel() != g4 {
        return Err(Error::shape(
            "lstm",
            format!("w_ih {:?}, b_ih {:?}, b_hh {:?} for H = {hsz}", w_ih.shape(), b_ih.shape(), b_hh.shape()),
        ));
    }
    Ok((b, t, hsz))
}

/// An embedding table `[V, D]` and ids inside it: `(V, D)`.
pub fn embedding(ids: &[u32], table: &Tensor) -> Result<(usize, usize)> {
    let (v, d) = match table.shape() {
        [v, d] => (*v, *d),
        s => return Err(Error::shape("embedding", format!("table must be [V, D], got {s:?}"))),
    };
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= v) {
        return Err(Error::shape("embedding", format!("token id {bad} outside a vocabulary of {v}")));
    }
    Ok((v, d))
}

/// Rows of `seq_len` ids at positions `offset..offset + seq_len` of `positions[P, D]`, with a
/// table of the same `D`: `(V, D)`.
pub fn embedding_with_positions(
    ids: &[u32],
    table: &Tensor,
    positions: &Tensor,
    offset: usize,
    seq_len: usize,
) -> Result<(usize, usize)> {
    let (v, d) = embedding(ids, table)?;
    if seq_len == 0 || !ids.len().is_multiple_of(seq_len) {
        return Err(Error::shape("embedding_with_positions", format!("{} ids in rows of {seq_len}", ids.len())));
    }
    match positions.shape() {
        [p, pd] if *pd == d && offset + seq_len <= *p => Ok((v, d)),
        s => Err(Error::shape(
            "embedding_with_positions",
            format!("positions {s:?} for {seq_len} tokens at offset {offset} of width {d}"),
        )),
    }
}

/// Padding `before` and `after` along `dim` of `shape`: `(outer, length, inner, output shape)`.
/// Reflection needs more values than it mirrors on either side.
pub fn pad(
    shape: &[usize],
    dim: usize,
    before: usize,
    after: usize,
    padding: Padding,
) -> Result<(usize, usize, usize, Vec<usize>)> {
    if dim >= shape.len() {
        return Err(Error::shape("pad", format!("dim {dim} of {shape:?}")));
    }
    let len = shape[dim];
    if padding == Padding::Reflect && (before >= len || after >= len) {
        return Err(Error::shape(
            "pad",
            format!("reflect padding ({before}, {after}) needs more than that many values, dim {dim} of {shape:?} has {len}"),
        ));
    }
    let mut out = shape.to_vec();
    out[dim] = len + before + after;
    Ok((shape[..dim].iter().product(), len, shape[dim + 1..].iter().product(), out))
}

/// Statistics pooling of `x[B, C, T]` with optional `weights[B, T]`: `(B, C, T)`.
pub fn stats_pool(x: &Tensor, weights: Option<&Tensor>) -> Result<(usize, usize, usize)> {
    let (b, c, t) = x.dims3("stats_pool")?;
    if t == 0 {
        return Err(Error::shape("stats_pool", format!("no frames to pool in {:?}", x.shape())));
    }
    if let Some(w) = weights.filter(|w| w.shape() != [b, t]) {
        return Err(Error::shape(
            "stats_pool",
            format!("weights {:?} for x {:?}: expected [{b}, {t}]", w.shape(), x.shape()),
        ));
    }
    Ok((b, c, t))
}

/// `log_softmax(logits[row])[id]` addresses an element of `logits[rows, V]`.
pub fn logprob_of(logits: &Tensor, row: usize, id: u32) -> Result<()> {
    let (rows, v) = logits.rows_cols();
    if row >= rows || id as usize >= v {
        return Err(Error::shape("logprob_of", format!("row {row}, id {id} of {:?}", logits.shape())));
    }
    Ok(())
}

/// Rows and width of a token choice, checked against its masks and draws.
pub fn choose_tokens(logits: &Tensor, masks: &[RowMask], sampling: Option<&Sampling>) -> Result<(usize, usize)> {
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

/// `perm` is a permutation of the dimensions of `shape`.
pub fn permutation(shape: &[usize], perm: &[usize]) -> Result<()> {
    let mut seen = vec![false; shape.len()];
    if perm.len() != shape.len() || perm.iter().any(|&p| p >= shape.len() || std::mem::replace(&mut seen[p], true)) {
        return Err(Error::shape("permute", format!("{perm:?} is not a permutation of {shape:?}")));
    }
    Ok(())
}

/// `x[.., start..start+len, ..]` along `dim`: `(outer, inner, output shape)`.
pub fn slice(shape: &[usize], dim: usize, start: usize, len: usize) -> Result<(usize, usize, Vec<usize>)> {
    if dim >= shape.len() || start.checked_add(len).is_none_or(|end| end > shape[dim]) {
        return Err(Error::shape("slice", format!("[{start}, +{len}) of dim {dim} of {shape:?}")));
    }
    let mut out = shape.to_vec();
    out[dim] = len;
    Ok((shape[..dim].iter().product(), shape[dim + 1..].iter().product(), out))
}

/// Tensors that agree outside `dim`: `(outer, inner, output shape)`.
pub fn concat(xs: &[&Tensor], dim: usize) -> Result<(usize, usize, Vec<usize>)> {
    let first = xs.first().ok_or_else(|| Error::shape("concat", "no tensors"))?;
    let sh = first.shape();
    if dim >= sh.len() {
        return Err(Error::shape("concat", format!("dim {dim} of {sh:?}")));
    }
    for x in xs {
        let s = x.shape();
        if s.len() != sh.len() || s.iter().zip(sh).enumerate().any(|(i, (a, b))| i != dim && a != b) {
            return Err(Error::shape("concat", format!("{s:?} does not match {sh:?} outside dim {dim}")));
        }
    }
    let mut out = sh.to_vec();
    out[dim] = xs.iter().map(|x| x.shape()[dim]).sum();
    Ok((sh[..dim].iter().product(), sh[dim + 1..].iter().product(), out))
}

/// `cache[R0, T, D]` rows picked by `sources` (`R` of them), followed along `T` by
/// `new[R, S, D]`: `(T·D, S·D, output shape [R, T + S, D])`.
pub fn gather_append(cache: &[usize], sources: &[usize], new: &[usize]) -> Result<(usize, usize, Vec<usize>)> {
    let op = "gather_append";
    let (&[r0, t, d], &[r, s, dn]) = (cache, new) else {
        return Err(Error::shape(op, format!("cache {cache:?} and new {new:?} must be [rows, positions, width]")));
    };
    if dn != d || r != sources.len() {
        return Err(Error::shape(op, format!("new {new:?} for {} sources of cache {cache:?}", sources.len())));
    }
    if let Some(&bad) = sources.iter().find(|&&i| i >= r0) {
        return Err(Error::shape(op, format!("source row {bad} of cache {cache:?}")));
    }
    Ok((t * d, s * d, vec![r, t + s, d]))
}

/// Rows of dimension 0 picked by `indices`: `(row length, output shape)`.
pub fn index_select(shape: &[usize], indices: &[usize]) -> Result<(usize, Vec<usize>)> {
    let Some(&rows) = shape.first() else {
        return Err(Error::shape("index_select", "a rank-0 tensor has no rows"));
    };
    if let Some(&bad) = indices.iter().find(|&&i| i >= rows) {
        return Err(Error::shape("index_select", format!("row {bad} of {shape:?}")));
    }
    let mut out = shape.to_vec();
    out[0] = indices.len();
    Ok((shape[1..].iter().product(), out))
}
