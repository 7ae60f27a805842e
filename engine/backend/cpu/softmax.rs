//! Softmax and log-softmax over the last dimension.
//!
//! Reductions keep `LANES` partial results (a max, a sum per lane) so the compiler can vectorise
//! them: a single running `sum += e` is a serial chain that f32 rules forbid reordering.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::bf16;
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
///
/// Two passes: the exponentials alone are all f32, so they vectorise a whole register wide; a
/// loop that also widened each to f64 would be vectorised at f64's width, half that.
#[inline(always)]
fn exp_shifted(x: &mut [f32], max: f32, scale: f32) -> f64 {
    x.iter_mut().for_each(|v| *v = shifted_exp(*v, max, scale));
    sum_in_lanes(x)
}

/// Exponentials [`sum_exp_shifted`] computes at a time before adding them (on the stack).
const SUM_BLOCK: usize = 16 * LANES;

/// `Σ e^{(x − max)·scale}` as [`exp_shifted`] sums it (the same lanes, the same order, so the
/// same f64), without writing the exponentials into `x`: they go through a block on the stack.
#[inline(always)]
fn sum_exp_shifted(x: &[f32], max: f32, scale: f32) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut block = [0.0f32; SUM_BLOCK];
    let whole = x.len() - x.len() % LANES;
    for src in x[..whole].chunks(SUM_BLOCK) {
        let e = &mut block[..src.len()];
        e.iter_mut().zip(src).for_each(|(e, &v)| *e = shifted_exp(v, max, scale));
        add_lanes(&mut lanes, e);
    }
    let mut sum: f64 = lanes.iter().sum();
    for &v in &x[whole..] {
        sum += shifted_exp(v, max, scale) as f64;
    }
    sum
}

/// `Σ x` in f64: `LANES` partial sums over the whole chunks, added in order, then the tail.
#[inline(always)]
fn sum_in_lanes(x: &[f32]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let whole = x.len() - x.len() % LANES;
    add_lanes(&mut lanes, &x[..whole]);
    let mut sum: f64 = lanes.iter().sum();
    for &v in &x[whole..] {
        sum += v as f64;
    }
    sum
}

/// `lanes[l] += x[i]` for each `i ≡ l (mod LANES)`, in order (`x` holds whole chunks).
#[inline(always)]
fn add_lanes(lanes: &mut [f64; LANES], x: &[f32]) {
    for c in x.chunks_exact(LANES) {
        for l in 0..LANES {
            lanes[l] += c[l] as f64;
        }
    }
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
    /// The bf16 pairs of [`softmax_row_scaled`]`(x)` as [`bf16::rows_into_pairs`] lays out one
    /// row (`x.len().div_ceil(2)` pairs, an odd row's last pair holding 0 in its high half):
    /// the same bits as the two calls, without writing the probabilities back (attention's
    /// `P` on the bf16 path). `x` is left holding the unnormalised exponentials (an all −∞ row
    /// as it was).
    pub(crate) fn softmax_row_scaled_into_pairs(x: &mut [f32], scale: f32, pairs: &mut [u32]) {
        assert_eq!(pairs.len(), x.len().div_ceil(2), "softmax_row_scaled_into_pairs: pairs for {} values", x.len());
        let max = row_max(x);
        if max == f32::NEG_INFINITY {
            pairs.fill(0);
            return;
        }
        let inv = (1.0 / exp_shifted(x, max, scale)) as f32;
        let even = x.len() & !1;
        for (p, two) in pairs.iter_mut().zip(x[..even].chunks_exact(2)) {
            *p = bf16::to_bf16(two[0] * inv) as u32 | (bf16::to_bf16(two[1] * inv) as u32) << 16;
        }
        if even < x.len() {
            pairs[even / 2] = bf16::to_bf16(x[even] * inv) as u32;
        }
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

    /// The fused softmax and bf16 rounding give the bits of softmax, then rounding, for every
    /// SIMD level: odd and even lengths, masked entries, an all −∞ row.
    #[test]
    fn softmax_into_pairs_is_softmax_then_rounding() {
        for level in [SimdLevel::Portable, SimdLevel::detect()] {
            for len in [0, 1, 2, 15, 16, 17, 33, 1500] {
                for masked in [false, true] {
                    let mut row: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.0).collect();
                    if masked {
                        row.iter_mut().step_by(3).for_each(|v| *v = f32::NEG_INFINITY);
                    }
                    let mut want = row.clone();
                    softmax_row_scaled(level, &mut want, 0.125);
                    let want_pairs = bf16::rows_to_pairs(level, &want, usize::from(len > 0), len);
                    let mut got = row.clone();
                    let mut pairs = vec![7u32; len.div_ceil(2)];
                    softmax_row_scaled_into_pairs(level, &mut got, 0.125, &mut pairs);
                    assert_eq!(pairs, want_pairs, "{level:?} length {len} masked {masked}");
                }
            }
        }
    }
}
