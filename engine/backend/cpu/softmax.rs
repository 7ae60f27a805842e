//! Softmax and log-softmax over the last dimension.
//!
//! Reductions keep `LANES` partial results (a max, a sum per lane) so the compiler can vectorise
//! them: a single running `sum += e` is a serial chain that f32 rules forbid reordering.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::math;
use super::simd::{multiversion, SimdLevel};
use super::{data, tensor};
use crate::backend::Tensor;
use crate::error::Result;

/// Partial results per reduction: one AVX-512 register of f32.
const LANES: usize = 16;

/// Max of a row (−∞ for an empty row; NaN entries are skipped).
#[inline(always)]
fn row_max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            lanes[l] = if c[l] > lanes[l] { c[l] } else { lanes[l] };
        }
    }
    lanes.iter().chain(tail).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `e^{(v − max)·scale}`, exactly 0 for a masked (−∞) `v` (exp clamps far below its range, so
/// it would not give 0 itself).
#[inline(always)]
fn shifted_exp(v: f32, max: f32, scale: f32) -> f32 {
    if v == f32::NEG_INFINITY {
        0.0
    } else {
        math::exp((v - max) * scale)
    }
}

/// `x ← e^{(x − max)·scale}` (−∞ entries become exactly 0); returns the sum, accumulated in f64.
#[inline(always)]
fn exp_shifted(x: &mut [f32], max: f32, scale: f32) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            let e = shifted_exp(c[l], max, scale);
            c[l] = e;
            lanes[l] += e as f64;
        }
    }
    let mut sum: f64 = lanes.iter().sum();
    for v in chunks.into_remainder() {
        let e = shifted_exp(*v, max, scale);
        *v = e;
        sum += e as f64;
    }
    sum
}

/// `Σ e^{(x − max)·scale}` as [`exp_shifted`] sums it (the same lanes, the same order, so the
/// same f64), without writing the exponentials anywhere.
#[inline(always)]
fn sum_exp_shifted(x: &[f32], max: f32, scale: f32) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            lanes[l] += shifted_exp(c[l], max, scale) as f64;
        }
    }
    let mut sum: f64 = lanes.iter().sum();
    for &v in tail {
        sum += shifted_exp(v, max, scale) as f64;
    }
    sum
}

multiversion! {
    /// In place: `x ← softmax(scale · x)` for `scale > 0`. `-inf` entries get 0; an all −∞ row
    /// becomes all 0.
    pub(crate) fn softmax_row_scaled(x: &mut [f32], scale: f32) {
        let max = row_max(x);
        if max == f32::NEG_INFINITY {
            x.fill(0.0);
            return;
        }
        let inv = (1.0 / exp_shifted(x, max, scale)) as f32;
        x.iter_mut().for_each(|o| *o *= inv);
    }
}

multiversion! {
    /// `ln Σ e^{x}` of a row; −∞ for an empty or all −∞ row.
    pub(crate) fn logsumexp_row(x: &[f32], out: &mut f32) {
        let max = row_max(x);
        if max == f32::NEG_INFINITY {
            *out = f32::NEG_INFINITY;
            return;
        }
        *out = max + sum_exp_shifted(x, max, 1.0).ln() as f32;
    }
}

multiversion! {
    /// Max of a row (−∞ for an empty row; NaN entries are skipped).
    pub(crate) fn max_row(x: &[f32], out: &mut f32) {
        *out = row_max(x);
    }
}

/// The SIMD level host-side helpers use (the CPU's best, capped by `SCRIBE_SIMD`).
fn host_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(SimdLevel::from_env)
}

/// `torch.logsumexp` of one row on the host: max + ln Σ e^{x − max} (sum in f64).
pub fn logsumexp(x: &[f32]) -> f32 {
    let mut out = 0.0;
    logsumexp_row(host_level(), x, &mut out);
    out
}

/// The max of one row on the host, NaN entries skipped (−∞ for an empty or all-NaN row).
pub fn max(x: &[f32]) -> f32 {
    let mut out = 0.0;
    max_row(host_level(), x, &mut out);
    out
}

pub fn softmax(level: SimdLevel, x: &Tensor, log: bool) -> Result<Tensor> {
    let (rows, d) = x.rows_cols();
    let xd = data(x)?;
    let mut out = xd.to_vec();
    if d > 0 {
        out.par_chunks_mut(d).for_each(|o| {
            if log {
                let mut lse = 0.0;
                logsumexp_row(level, o, &mut lse);
                o.iter_mut().for_each(|v| *v -= lse);
            } else {
                softmax_row_scaled(level, o, 1.0)
            }
        });
    }
    debug_assert_eq!(out.len(), rows * d);
    Ok(tensor(x.shape().to_vec(), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_alone_is_the_sum_the_exponentials_are_written_with() {
        for len in [0, 1, 15, 16, 17, 100, 51_864] {
            let mut row: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.0).collect();
            if len > 3 {
                row[2] = f32::NEG_INFINITY;
            }
            let max = row_max(&row);
            let alone = sum_exp_shifted(&row, max, 0.7);
            let written = exp_shifted(&mut row.clone(), max, 0.7);
            assert_eq!(alone.to_bits(), written.to_bits(), "length {len}");
        }
    }
}
