//! Statistics pooling over time (pyannote's `StatsPool`), the reference of kernels/pooling.cu.
//! Sums are accumulated in f64.

use rayon::prelude::*;

use super::norm::{moments, MOMENT_LANES};
use super::simd::{multiversion, SimdLevel};
use super::{data, tensor, CpuBackend};
use crate::backend::kernels::PoolingOps;
use crate::backend::{shape_checks, Tensor};
use crate::error::Result;

/// pyannote `StatsPool._pool`'s guards against empty weights: `v1 = Σw + 1e-8` and the
/// denominator `v1 − v2 / v1 + 1e-8`.
pub const STATS_EPS: f64 = 1e-8;

/// Mean and standard deviation of `x[B, C, T]` over time, `[B, 2C]` (see
/// [`PoolingOps::stats_pool`]).
pub fn stats_pool(level: SimdLevel, x: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
    let (b, c, t) = shape_checks::stats_pool(x, weights)?;
    let xd = data(x)?;
    let wd = weights.map(data).transpose()?;
    let mut out = vec![0.0f32; b * 2 * c];
    out.par_chunks_mut(2 * c).enumerate().for_each(|(bi, o)| {
        let w = wd.map(|w| &w[bi * t..(bi + 1) * t]);
        // The weights' sums, once per row of weights.
        let (v1, v2) = w.map_or((0.0, 0.0), |w| {
            (w.iter().map(|&v| v as f64).sum::<f64>() + STATS_EPS, w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>())
        });
        for ci in 0..c {
            let row = &xd[(bi * c + ci) * t..][..t];
            let (mean, std) = match w {
                // torch: x.mean(-1) and x.std(-1) (unbiased; NaN for one frame).
                None => {
                    let n = t as f64;
                    let mut m = [0.0f64; 2];
                    moments(level, row, &mut m);
                    (m[0], (m[1] * n / (n - 1.0)).sqrt())
                }
                Some(w) => {
                    let mut m = [0.0f64; 2];
                    weighted_moments(level, row, w, v1, &mut m);
                    (m[0], (m[1] / (v1 - v2 / v1 + STATS_EPS)).sqrt())
                }
            };
            o[ci] = mean as f32;
            o[c + ci] = std as f32;
        }
    });
    Ok(tensor(vec![b, 2 * c], out))
}

multiversion! {
    /// `[Σ x·w / v1, Σ (x − mean)²·w]` of one row, summed in f64 across [`MOMENT_LANES`] lanes
    /// so the loops vectorise.
    fn weighted_moments(x: &[f32], w: &[f32], v1: f64, out: &mut [f64; 2]) {
        let (xs, ws) = (x.chunks_exact(MOMENT_LANES), w.chunks_exact(MOMENT_LANES));
        let tail = xs.remainder().iter().zip(ws.remainder());
        let mut lanes = [0.0f64; MOMENT_LANES];
        for (xc, wc) in xs.clone().zip(ws.clone()) {
            for ((l, &x), &w) in lanes.iter_mut().zip(xc).zip(wc) {
                *l += x as f64 * w as f64;
            }
        }
        let mean = (lanes.iter().sum::<f64>() + tail.clone().map(|(&x, &w)| x as f64 * w as f64).sum::<f64>()) / v1;
        let mut sq = [0.0f64; MOMENT_LANES];
        for (xc, wc) in xs.zip(ws) {
            for ((l, &x), &w) in sq.iter_mut().zip(xc).zip(wc) {
                let d = x as f64 - mean;
                *l += d * d * w as f64;
            }
        }
        let tail_sq = tail.map(|(&x, &w)| (x as f64 - mean).powi(2) * w as f64).sum::<f64>();
        *out = [mean, sq.iter().sum::<f64>() + tail_sq];
    }
}

impl PoolingOps for CpuBackend {
    fn stats_pool(&self, x: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
        stats_pool(self.simd, x, weights)
    }
}
