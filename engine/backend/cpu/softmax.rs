//! Softmax and log-softmax over the last dimension.

use rayon::prelude::*;

use super::math;
use super::simd::{multiversion, SimdLevel};
use super::{data, tensor};
use crate::backend::Tensor;
use crate::error::Result;

multiversion! {
    /// Softmax of `x` into `out` (in place allowed via copies by the caller). `-inf` entries get 0.
    pub(crate) fn softmax_row(x: &[f32], out: &mut [f32]) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            out.fill(0.0);
            return;
        }
        let mut sum = 0.0f32;
        for (o, &v) in out.iter_mut().zip(x) {
            // exp clamps far below its range; a masked (−∞) entry must be exactly 0.
            let e = if v == f32::NEG_INFINITY { 0.0 } else { math::exp(v - max) };
            *o = e;
            sum += e;
        }
        let inv = 1.0 / sum;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

multiversion! {
    fn log_softmax_row(x: &[f32], out: &mut [f32]) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = x.iter().map(|&v| math::exp(v - max)).sum();
        let lse = max + sum.ln();
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v - lse;
        }
    }
}

pub fn softmax(level: SimdLevel, x: &Tensor, log: bool) -> Result<Tensor> {
    let (rows, d) = x.rows_cols();
    let xd = data(x)?;
    let mut out = vec![0.0f32; rows * d];
    if d > 0 {
        out.par_chunks_mut(d).zip(xd.par_chunks(d)).for_each(|(o, r)| {
            if log {
                log_softmax_row(level, r, o)
            } else {
                softmax_row(level, r, o)
            }
        });
    }
    Ok(tensor(x.shape().to_vec(), out))
}
