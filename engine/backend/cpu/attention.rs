//! Multi-head scaled dot-product attention on packed heads (`[B, T, H·Dh]`), one task per
//! (batch, head): scores = Q·Kᵀ/√Dh, masked softmax, then · V, written straight into the
//! packed output.

use rayon::prelude::*;

use super::gemm::{sgemm, MatRef};
use super::simd::SimdLevel;
use super::softmax::softmax_row;
use super::{data, tensor};
use crate::backend::Tensor;
use crate::error::{Error, Result};

pub fn attention(level: SimdLevel, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
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
    let dh = d / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    // Query rows share key/value rows in contiguous groups (beams of one audio share its
    // cross-attention keys and values).
    let group = b / bk;
    let (qd, kd, vd) = (data(q)?, data(k)?, data(v)?);
    let mut out = vec![0.0f32; b * tq * d];
    if tq == 0 || tk == 0 {
        return Ok(tensor(vec![b, tq, d], out));
    }
    // Per-head outputs are computed into scratch and scattered, so tasks never share memory.
    let per_head: Vec<Vec<f32>> = (0..b * heads)
        .into_par_iter()
        .map(|task| {
            let (bi, h) = (task / heads, task % heads);
            let qh = &qd[bi * tq * d + h * dh..];
            let kh = &kd[bi / group * tk * d + h * dh..];
            let vh = &vd[bi / group * tk * d + h * dh..];
            let mut scores = vec![0.0f32; tq * tk];
            // scores[i, j] = q_i · k_j
            sgemm(
                level,
                tq,
                tk,
                dh,
                MatRef { data: qh, rs: d, cs: 1 },
                MatRef { data: kh, rs: 1, cs: d },
                &mut scores,
                tk,
                false,
                false,
            );
            // Only used when causal, where tq ≤ tk was checked; non-causal allows tq > tk.
            let offset = tk.saturating_sub(tq);
            let mut row = vec![0.0f32; tk];
            for (i, s) in scores.chunks_exact_mut(tk).enumerate() {
                let visible = if causal { i + offset + 1 } else { tk };
                for x in s.iter_mut() {
                    *x *= scale;
                }
                s[visible..].fill(f32::NEG_INFINITY);
                softmax_row(level, s, &mut row);
                s.copy_from_slice(&row);
            }
            let mut o = vec![0.0f32; tq * dh];
            sgemm(
                level,
                tq,
                dh,
                tk,
                MatRef::row_major(&scores, tk),
                MatRef { data: vh, rs: d, cs: 1 },
                &mut o,
                dh,
                false,
                false,
            );
            o
        })
        .collect();
    for (task, o) in per_head.iter().enumerate() {
        let (bi, h) = (task / heads, task % heads);
        for i in 0..tq {
            out[(bi * tq + i) * d + h * dh..][..dh].copy_from_slice(&o[i * dh..(i + 1) * dh]);
        }
    }
    Ok(tensor(vec![b, tq, d], out))
}
