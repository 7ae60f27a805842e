//! `nn.Linear` and batched matmul on top of [`super::gemm::sgemm`].

use rayon::prelude::*;

use super::gemm::{sgemm, MatRef};
use super::simd::SimdLevel;
use super::skinny::{skinny_nt, SKINNY_BATCH_MAX_ROWS};
use super::{data, tensor, weight, Weight};
use crate::backend::Tensor;
use crate::error::{Error, Result};

pub fn linear(level: SimdLevel, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    if x.rank() == 0 {
        return Err(Error::shape("linear", "input must have rank ≥ 1, got a scalar"));
    }
    let (m, k) = x.rows_cols();
    let (n, wk) = match w.shape() {
        [n, wk] => (*n, *wk),
        s => return Err(Error::shape("linear", format!("weight must be [N, K], got {s:?}"))),
    };
    if wk != k {
        return Err(Error::shape("linear", format!("input {:?} vs weight {:?}", x.shape(), w.shape())));
    }
    let (xd, wd) = (data(x)?, weight(w)?);
    let mut out = vec![0.0f32; m * n];
    let accumulate = match b {
        Some(b) => {
            let bd = data(b)?;
            if bd.len() != n {
                return Err(Error::shape("linear", format!("bias {:?} for {n} outputs", b.shape())));
            }
            for row in out.chunks_exact_mut(n) {
                row.copy_from_slice(bd);
            }
            true
        }
        None => false,
    };
    match wd {
        // `out` holds the bias or zeros, which the skinny product adds to.
        Weight::F32(wd) if (1..=SKINNY_BATCH_MAX_ROWS).contains(&m) => skinny_nt(level, m, n, k, xd, wd, k, &mut out),
        Weight::F16(wd) if (1..=SKINNY_BATCH_MAX_ROWS).contains(&m) => skinny_nt(level, m, n, k, xd, wd, k, &mut out),
        _ => {
            let wd = wd.rows_f32(level, 0..n, k);
            sgemm(level, m, n, k, MatRef::row_major(xd, k), MatRef::transposed(&wd, k), &mut out, n, accumulate, true)
        }
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rows_cols implies rank ≥ 1") = n;
    Ok(tensor(shape, out))
}

pub fn matmul(level: SimdLevel, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
    let (ba, m, k) = a.dims3("matmul")?;
    let (bb, r, c) = b.dims3("matmul")?;
    let (kb, n) = if transpose_b { (c, r) } else { (r, c) };
    if ba != bb || kb != k {
        return Err(Error::shape("matmul", format!("{:?} · {:?} (transpose_b={transpose_b})", a.shape(), b.shape())));
    }
    let (ad, bd) = (data(a)?, data(b)?);
    let mut out = vec![0.0f32; ba * m * n];
    let one = |(i, o): (usize, &mut [f32])| {
        let am = MatRef::row_major(&ad[i * m * k..(i + 1) * m * k], k);
        let bs = &bd[i * k * n..(i + 1) * k * n];
        let bm = if transpose_b { MatRef::transposed(bs, k) } else { MatRef::row_major(bs, n) };
        sgemm(level, m, n, k, am, bm, o, n, false, ba == 1);
    };
    if m * n == 0 {
        return Ok(tensor(vec![ba, m, n], out));
    }
    if ba > 1 {
        out.par_chunks_mut(m * n).enumerate().for_each(one);
    } else {
        out.chunks_mut(m * n).enumerate().for_each(one);
    }
    Ok(tensor(vec![ba, m, n], out))
}
