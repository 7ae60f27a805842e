//! Statistics pooling over time (pyannote's `StatsPool`), the reference of kernels/pooling.cu.
//! Sums are accumulated in f64.

use rayon::prelude::*;

use super::{data, tensor, CpuBackend};
use crate::backend::kernels::PoolingOps;
use crate::backend::{shape_checks, Tensor};
use crate::error::Result;

/// pyannote `StatsPool._pool`'s guards against empty weights: `v1 = Σw + 1e-8` and the
/// denominator `v1 − v2 / v1 + 1e-8`.
pub const STATS_EPS: f64 = 1e-8;

/// Mean and standard deviation of `x[B, C, T]` over time, `[B, 2C]` (see
/// [`PoolingOps::stats_pool`]).
pub fn stats_pool(x: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
    let (b, c, t) = shape_checks::stats_pool(x, weights)?;
    let xd = data(x)?;
    let wd = weights.map(data).transpose()?;
    let mut out = vec![0.0f32; b * 2 * c];
    out.par_chunks_mut(2 * c).enumerate().for_each(|(bi, o)| {
        let w = wd.map(|w| &w[bi * t..(bi + 1) * t]);
        for ci in 0..c {
            let row = &xd[(bi * c + ci) * t..][..t];
            let (mean, std) = match w {
                // torch: x.mean(-1) and x.std(-1) (unbiased; NaN for one frame).
                None => {
                    let n = t as f64;
                    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
                    let ss = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>();
                    (mean, (ss / (n - 1.0)).sqrt())
                }
                Some(w) => {
                    let v1 = w.iter().map(|&v| v as f64).sum::<f64>() + STATS_EPS;
                    let mean = row.iter().zip(w).map(|(&x, &w)| x as f64 * w as f64).sum::<f64>() / v1;
                    let v2 = w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
                    let ss = row.iter().zip(w).map(|(&x, &w)| (x as f64 - mean).powi(2) * w as f64).sum::<f64>();
                    (mean, (ss / (v1 - v2 / v1 + STATS_EPS)).sqrt())
                }
            };
            o[ci] = mean as f32;
            o[c + ci] = std as f32;
        }
    });
    Ok(tensor(vec![b, 2 * c], out))
}

impl PoolingOps for CpuBackend {
    fn stats_pool(&self, x: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
        stats_pool(x, weights)
    }
}
