//! The shape rules of the ops, written once for every backend: each function checks an op's
//! operands and returns the dimensions the kernels need, or the error naming what disagrees.

use super::{Conv1dParams, Tensor};
use crate::error::{Error, Result};

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
    Ok((b, tq, d, bk, tk))
}

/// One direction of `nn.LSTM` on `x[B, T, In]`: `(B, T, H)`.
pub fn lstm(x: &Tensor, w_ih: &Tensor, w_hh: &Tensor, b_ih: &Tensor, b_hh: &Tensor) -> Result<(usize, usize, usize)> {
    let (b, t, _) = x.dims3("lstm")?;
    let (g4, hsz) = match w_hh.shape() {
        [g4, h] if *g4 == 4 * *h => (*g4, *h),
        s => return Err(Error::shape("lstm", format!("w_hh must be [4H, H], got {s:?}"))),
    };
    if w_ih.shape().first() != Some(&g4) || b_ih.numel() != g4 || b_hh.numel() != g4 {
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
