//! Embedding lookup, permute, slice, concat, padding, last-dimension reductions and argmax.

use std::sync::Arc;

use rayon::prelude::*;

use super::norm::{moments, sum_f64};
use super::simd::SimdLevel;
use super::{data, floats, tensor, weight, CpuBackend, CpuHalfStorage, Weight};
use crate::backend::kernels::LayoutOps;
use crate::backend::{shape_checks, Padding, Reduce, Tensor};
use crate::error::Result;

pub fn embedding(level: SimdLevel, ids: &[u32], table: &Tensor) -> Result<Tensor> {
    let (_, d) = shape_checks::embedding(ids, table)?;
    let table = weight(table)?;
    let mut out = Vec::with_capacity(ids.len() * d);
    for &id in ids {
        let id = id as usize;
        out.extend_from_slice(&table.rows_f32(level, id..id + 1, d));
    }
    Ok(tensor(vec![ids.len(), d], out))
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

pub fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let sh = x.shape();
    shape_checks::permutation(sh, perm)?;
    let xd = data(x)?;
    let in_strides = strides(sh);
    let out_shape: Vec<usize> = perm.iter().map(|&p| sh[p]).collect();
    let src_strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let n = xd.len();
    let mut out = Vec::with_capacity(n);
    if n > 0 {
        // Iterate the output in order; the last output dim is copied as a strided run.
        let last = *out_shape.last().unwrap_or(&1);
        let last_stride = *src_strides.last().unwrap_or(&1);
        let outer = n / last.max(1);
        let mut idx = vec![0usize; out_shape.len().saturating_sub(1)];
        for _ in 0..outer {
            let base: usize = idx.iter().zip(&src_strides).map(|(i, s)| i * s).sum();
            out.extend((0..last).map(|j| xd[base + j * last_stride]));
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < out_shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
    Ok(tensor(out_shape, out))
}

pub fn slice(x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
    let sh = x.shape();
    let (outer, inner, shape) = shape_checks::slice(sh, dim, start, len)?;
    let xd = data(x)?;
    let mut out = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        let base = (o * sh[dim] + start) * inner;
        out.extend_from_slice(&xd[base..base + len * inner]);
    }
    Ok(tensor(shape, out))
}

pub fn index_select(x: &Tensor, indices: &[usize]) -> Result<Tensor> {
    let (inner, shape) = shape_checks::index_select(x.shape(), indices)?;
    Ok(match floats(x, "index_select")? {
        Weight::F16(xd) => {
            Tensor::from_storage(shape, Arc::new(CpuHalfStorage(select_rows(xd, inner, indices, half::f16::NAN))))
        }
        xd => tensor(shape, select_rows(&xd.rows_f32(SimdLevel::Portable, 0..x.numel(), 1), inner, indices, f32::NAN)),
    })
}

/// Rows `indices` of `x` (rows of `inner` values), in order.
fn select_rows<T: Copy + Send + Sync>(x: &[T], inner: usize, indices: &[usize], poison: T) -> Vec<T> {
    // SAFETY: each row is one copy of `inner` values (`copy_from_slice` checks the lengths).
    unsafe { copied_rows(indices.len(), inner, poison, |r, row| copy_into(row, &x[indices[r] * inner..][..inner])) }
}

pub fn gather_append(cache: &Tensor, sources: &[usize], new: &Tensor) -> Result<Tensor> {
    let (old_run, new_run, shape) = shape_checks::gather_append(cache.shape(), sources, new.shape())?;
    let (cd, nd) = (data(cache)?, data(new)?);
    // SAFETY: each row is a copy of `old_run` values and one of `new_run` after it.
    let out = unsafe {
        copied_rows(sources.len(), old_run + new_run, f32::NAN, |r, row| {
            let (old, added) = row.split_at_mut(old_run);
            copy_into(old, &cd[sources[r] * old_run..][..old_run]);
            copy_into(added, &nd[r * new_run..][..new_run]);
        })
    };
    Ok(tensor(shape, out))
}

pub fn concat(xs: &[&Tensor], dim: usize) -> Result<Tensor> {
    let (outer, inner, shape) = shape_checks::concat(xs, dim)?;
    let total = shape[dim];
    let parts: Vec<(&[f32], usize)> =
        xs.iter().map(|x| Ok((data(x)?, x.shape()[dim] * inner))).collect::<Result<_>>()?;
    // SAFETY: the parts' runs add up to the row (`shape_checks::concat`), each copied in turn.
    let out = unsafe {
        copied_rows(outer, total * inner, f32::NAN, |o, mut row| {
            for &(d, run) in &parts {
                let (here, rest) = row.split_at_mut(run);
                copy_into(here, &d[o * run..][..run]);
                row = rest;
            }
            debug_assert!(row.is_empty(), "concat: the parts fill the row");
        })
    };
    Ok(tensor(shape, out))
}

/// Copies of at least this many values are split by rows over the threads: the decoder's
/// self-attention caches (`gather_append`, 2.7 MB a layer's keys at 35 beams and 50 tokens), the
/// beams' cross-attention rows (`index_select`) and the BiLSTMs' directions (`concat`) were
/// `memcpy`s on the calling thread while the other cores waited (3.9 % of the batched
/// decoder's samples).
const PARALLEL_COPY_MIN: usize = 1 << 16;

/// `rows` rows of `row_len` values, row `r` written whole by `fill(r, row)`; a row per task
/// on every thread when the output holds at least [`PARALLEL_COPY_MIN`] values. With debug
/// assertions the buffer holds `poison` before `fill` runs.
///
/// # Safety
/// `fill` must write every element of the row it is given.
unsafe fn copied_rows<T: Copy + Send + Sync>(
    rows: usize,
    row_len: usize,
    poison: T,
    fill: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let len = rows * row_len;
    let run = |out: &mut [std::mem::MaybeUninit<T>]| {
        if row_len == 0 {
            return;
        }
        if len >= PARALLEL_COPY_MIN {
            out.par_chunks_mut(row_len).enumerate().for_each(|(r, row)| fill(r, row));
        } else {
            out.chunks_mut(row_len).enumerate().for_each(|(r, row)| fill(r, row));
        }
    };
    // SAFETY: the rows cover the buffer, and the caller's `fill` writes each whole.
    unsafe { super::written_poisoned(len, poison, run) }
}

/// `src` into `out`, of the same length.
fn copy_into<T: Copy>(out: &mut [std::mem::MaybeUninit<T>], src: &[T]) {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and any `T` is an initialised `MaybeUninit<T>`.
    let src = unsafe { std::slice::from_raw_parts(src.as_ptr().cast::<std::mem::MaybeUninit<T>>(), src.len()) };
    out.copy_from_slice(src);
}

/// The source position of output position `j` (from `-before`) of a run of `len` values
/// padded by reflection (`F.pad(mode="reflect")`: the edge is not repeated).
pub fn reflect_index(j: isize, len: usize) -> usize {
    let last = len as isize - 1;
    let r = if j < 0 {
        -j
    } else if j > last {
        2 * last - j
    } else {
        j
    };
    r as usize
}

/// `x` padded along `dim`: every run along `dim` gets `before` and `after` values.
pub fn pad(x: &Tensor, dim: usize, before: usize, after: usize, padding: Padding) -> Result<Tensor> {
    let (outer, len, inner, shape) = shape_checks::pad(x.shape(), dim, before, after, padding)?;
    let xd = data(x)?;
    let out_len = len + before + after;
    let mut out = Vec::with_capacity(outer * out_len * inner);
    for o in 0..outer {
        let src = &xd[o * len * inner..(o + 1) * len * inner];
        for j in 0..out_len as isize {
            let at = j - before as isize;
            match padding {
                Padding::Constant(v) if at < 0 || at >= len as isize => out.extend(std::iter::repeat_n(v, inner)),
                Padding::Constant(_) => out.extend_from_slice(&src[at as usize * inner..][..inner]),
                Padding::Reflect => out.extend_from_slice(&src[reflect_index(at, len) * inner..][..inner]),
            }
        }
    }
    Ok(tensor(shape, out))
}

pub fn reduce(level: SimdLevel, x: &Tensor, op: Reduce) -> Result<Tensor> {
    let (rows, d) = x.rows_cols();
    let xd = data(x)?;
    let mut out = vec![0.0f32; rows];
    // Rows per parallel task: about REDUCE_CHUNK elements.
    let rows_per_task = REDUCE_CHUNK.div_ceil(d.max(1));
    out.par_chunks_mut(rows_per_task).enumerate().for_each(|(task, o)| {
        for (i, o) in o.iter_mut().enumerate() {
            let r = &xd[(task * rows_per_task + i) * d..][..d];
            *o = match op {
                Reduce::Max => r.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                Reduce::Sum | Reduce::Mean => {
                    let mut sum = 0.0f64;
                    sum_f64(level, r, &mut sum);
                    if op == Reduce::Mean {
                        (sum / d as f64) as f32
                    } else {
                        sum as f32
                    }
                }
                Reduce::Std => {
                    let mut m = [0.0f64; 2];
                    moments(level, r, &mut m);
                    m[1].sqrt() as f32
                }
            };
        }
    });
    let shape = x.shape()[..x.rank() - 1].to_vec();
    Ok(tensor(shape, out))
}

/// Elements per parallel task of [`reduce`].
const REDUCE_CHUNK: usize = 1 << 14;

pub fn argmax(x: &Tensor) -> Result<Vec<u32>> {
    let (_, d) = x.rows_cols();
    // First index of the maximum, as torch.argmax does; NaN never wins.
    Ok(data(x)?.chunks_exact(d).map(crate::backend::token_choice::argmax).collect())
}

impl LayoutOps for CpuBackend {
    fn embedding(&self, ids: &[u32], table: &Tensor) -> Result<Tensor> {
        embedding(self.simd, ids, table)
    }

    fn permute(&self, x: &Tensor, perm: &[usize]) -> Result<Tensor> {
        permute(x, perm)
    }

    fn slice(&self, x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        slice(x, dim, start, len)
    }

    fn index_select(&self, x: &Tensor, indices: &[usize]) -> Result<Tensor> {
        index_select(x, indices)
    }

    fn concat(&self, xs: &[&Tensor], dim: usize) -> Result<Tensor> {
        concat(xs, dim)
    }

    fn gather_append(&self, cache: &Tensor, sources: &[usize], new: &Tensor) -> Result<Tensor> {
        gather_append(cache, sources, new)
    }

    fn pad(&self, x: &Tensor, dim: usize, before: usize, after: usize, padding: Padding) -> Result<Tensor> {
        pad(x, dim, before, after, padding)
    }

    fn reduce(&self, x: &Tensor, op: Reduce) -> Result<Tensor> {
        reduce(self.simd, x, op)
    }

    fn argmax(&self, x: &Tensor) -> Result<Vec<u32>> {
        argmax(x)
    }
}
