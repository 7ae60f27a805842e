//! `nn.Linear` and batched matmul on top of [`super::gemm::sgemm`].

use rayon::prelude::*;

use super::bf16;
use super::gemm::{sgemm, sgemm_weights, MatRef};
use super::int8::{linear_int8, Int8Kernel};
use super::panels::PANEL_MAX_ROWS;
use super::simd::SimdLevel;
use super::skinny::{skinny_nt, Threads, SKINNY_BATCH_MAX_ROWS};
use super::CpuBackend;
use super::{data, tensor, weight, Weight};
use crate::backend::kernels::LinearOps;
use crate::backend::{shape_checks, Tensor};
use crate::error::Result;

pub fn linear(level: SimdLevel, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let (m, n, k) = (x.rows_cols().0, w.dim(0), w.dim(1));
    let bias = b.map(data).transpose()?;
    let out = linear_rows(level, data(x)?, m, k, weight(w)?, n, bias);
    Ok(tensor(shape_checks::linear_output(x, n), out))
}

/// `x[m, k] · wᵀ + bias` for a weight of `n` rows of `k`, on slices (the LSTM's groups of
/// sequences read their rows in place): `[m, n]` row-major.
pub(crate) fn linear_rows(
    level: SimdLevel,
    xd: &[f32],
    m: usize,
    k: usize,
    wd: Weight<'_>,
    n: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    // Every size: the input rows are rounded to bf16 once, then one pass per panel; the bias is
    // added in registers (the output is written once: not filled with zeros or the bias first).
    if let Weight::Bf16(wb) = wd {
        if bf16::kernel_available(level) {
            debug_assert_eq!(wb.rows(), n, "linear: a bf16 weight of {} rows for {n} outputs", wb.rows());
            let pairs = bf16::rows_to_pairs(level, xd, m, k);
            return bf16::gemm_new(level, m, &pairs, wb, bias, true);
        }
    }
    // Every output written once, the bias added in registers.
    // (A reshaped view of the panels, or more rows, take the GEMM below on the weight's values.)
    if let Weight::Panels(wp) = wd {
        if m <= PANEL_MAX_ROWS && (wp.rows(), wp.cols()) == (n, k) {
            return wp.product(level, m, xd, bias);
        }
    }
    let mut out = vec![0.0f32; m * n];
    if n == 0 {
        return out;
    }
    let accumulate = match bias {
        Some(bd) => {
            for row in out.chunks_exact_mut(n) {
                row.copy_from_slice(bd);
            }
            true
        }
        None => false,
    };
    match wd {
        // `out` holds the bias or zeros, which the skinny product adds to.
        Weight::F32(wd) if (1..=SKINNY_BATCH_MAX_ROWS).contains(&m) => {
            skinny_nt(level, Threads::Pool, m, n, k, xd, wd, k, &mut out)
        }
        Weight::F16(wd) if (1..=SKINNY_BATCH_MAX_ROWS).contains(&m) => {
            skinny_nt(level, Threads::Pool, m, n, k, xd, wd, k, &mut out)
        }
        // Every size: the int8 kernels are both the GEMM and the skinny product.
        Weight::I8(wq) => linear_int8(level, Int8Kernel::for_level(level), m, xd, wq, &mut out),
        _ => {
            let wd = wd.rows_f32(level, 0..n, k);
            let (x, w) = (MatRef::row_major(xd, k), MatRef::transposed(&wd, k));
            sgemm_weights(level, m, n, k, x, w, &mut out, n, accumulate, true)
        }
    }
    out
}

pub fn matmul(level: SimdLevel, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
    let (ba, m, n, k) = shape_checks::matmul(a, b, transpose_b)?;
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

impl LinearOps for CpuBackend {
    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        linear(self.simd, x, w, b)
    }

    fn matmul(&self, a: &Tensor, b: &Tensor, transpose_b: bool) -> Result<Tensor> {
        matmul(self.simd, a, b, transpose_b)
    }
}
