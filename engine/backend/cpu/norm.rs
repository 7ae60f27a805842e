//! Layer, group/instance and batch normalisation. Group/instance statistics (over up to
//! C·T elements) are accumulated in f64; layer-norm rows are short (d_model) and use f32.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::simd::{multiversion, SimdLevel};
use super::CpuBackend;
use super::{data, tensor, written};
use crate::backend::kernels::NormOps;
use crate::backend::{shape_checks, Tensor};
use crate::error::{Error, Result};

multiversion! {
    /// Normalise one row in place of `out`: `(x − μ)/√(σ² + eps)·γ + β`.
    fn layer_norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [MaybeUninit<f32>]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
            o.write((v - mean) * inv * g + b);
        }
    }
}

/// An error unless each stored length is the one its shape says (the output is sized from the
/// shapes and written by zipping with these slices, so a short one would leave part unwritten).
fn stored_lengths(op: &'static str, lengths: &[(usize, usize)]) -> Result<()> {
    match lengths.iter().find(|(got, want)| got != want) {
        Some((got, want)) => Err(Error::shape(op, format!("{got} values stored where the shape holds {want}"))),
        None => Ok(()),
    }
}

pub fn layer_norm(level: SimdLevel, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
    let (rows, d) = shape_checks::layer_norm(x, gamma, beta)?;
    let (g, b) = (data(gamma)?, data(beta)?);
    let xd = data(x)?;
    stored_lengths("layer_norm", &[(xd.len(), rows * d), (g.len(), d), (b.len(), d)])?;
    // SAFETY: `layer_norm_row` writes every element of its row; the rows cover the output.
    let out = unsafe {
        written(rows * d, |out| {
            if d > 0 {
                out.par_chunks_mut(d)
                    .zip(xd.par_chunks(d))
                    .with_min_len(16)
                    .for_each(|(o, r)| layer_norm_row(level, r, g, b, eps, o));
            }
        })
    };
    Ok(tensor(x.shape().to_vec(), out))
}

/// `nn.GroupNorm` on `[B, C, T]`; with `groups == C` it is `nn.InstanceNorm1d`.
pub fn group_norm(
    level: SimdLevel,
    x: &Tensor,
    groups: usize,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f32,
) -> Result<Tensor> {
    let (b, c, t) = shape_checks::group_norm(x, groups, gamma, beta)?;
    let g = gamma.map(data).transpose()?;
    let bt = beta.map(data).transpose()?;
    let xd = data(x)?;
    stored_lengths(
        "group_norm",
        &[(xd.len(), b * c * t), (g.map_or(c, <[f32]>::len), c), (bt.map_or(c, <[f32]>::len), c)],
    )?;
    let per = c / groups * t;
    // SAFETY: each group's chunk is written channel by channel by `center_scale_shift`; the
    // groups cover the output (nothing to write when `per` is 0).
    let out = unsafe {
        written(b * c * t, |out| {
            if per > 0 {
                out.par_chunks_mut(per).zip(xd.par_chunks(per)).enumerate().for_each(|(i, (o, r))| {
                    let mut stats = [0.0f64; 2];
                    moments(level, r, &mut stats);
                    let [mean, var] = stats;
                    let inv = 1.0 / (var + eps as f64).sqrt();
                    let first_channel = (i % groups) * (c / groups);
                    for (j, (o, r)) in o.chunks_mut(t.max(1)).zip(r.chunks(t.max(1))).enumerate() {
                        let ch = first_channel + j;
                        let gain = g.map_or(1.0, |g| g[ch] as f64);
                        let (scale, shift) = ((inv * gain) as f32, bt.map_or(0.0, |b| b[ch]));
                        // The mean as an f32 and its rounding error: a channel whose mean is large
                        // against its spread keeps the f64 mean's precision.
                        let center = mean as f32;
                        center_scale_shift(level, r, [center, (mean - center as f64) as f32], scale, shift, o);
                    }
                });
            }
        })
    };
    Ok(tensor(x.shape().to_vec(), out))
}

/// Lanes of the f64 partial sums in [`moments`] (one AVX-512 register).
pub(super) const MOMENT_LANES: usize = 8;

/// `Σ r` in f64 across [`MOMENT_LANES`] lanes (inlined into each caller's SIMD level).
#[inline(always)]
fn lane_sum(r: &[f32]) -> f64 {
    let chunks = r.chunks_exact(MOMENT_LANES);
    let tail = chunks.remainder();
    let mut lanes = [0.0f64; MOMENT_LANES];
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v as f64;
        }
    }
    lanes.iter().sum::<f64>() + tail.iter().map(|&v| v as f64).sum::<f64>()
}

multiversion! {
    /// `Σ r` in f64 across [`MOMENT_LANES`] lanes so the loop vectorises.
    pub(super) fn sum_f64(r: &[f32], out: &mut f64) {
        *out = lane_sum(r);
    }
}

multiversion! {
    /// `[mean, variance]` of `r` (population variance), summed in f64 across
    /// [`MOMENT_LANES`] lanes so the loops vectorise.
    pub(super) fn moments(r: &[f32], out: &mut [f64; 2]) {
        let n = r.len() as f64;
        let chunks = r.chunks_exact(MOMENT_LANES);
        let tail = chunks.remainder();
        let mean = lane_sum(r) / n;
        let mut sq = [0.0f64; MOMENT_LANES];
        for c in chunks {
            for (l, &v) in sq.iter_mut().zip(c) {
                let d = v as f64 - mean;
                *l += d * d;
            }
        }
        let tail_sq = tail.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>();
        *out = [mean, (sq.iter().sum::<f64>() + tail_sq) / n];
    }
}

multiversion! {
    /// `out = max(x·scale + shift, 0)` (NaN stays NaN, as `torch.relu`).
    fn scale_shift_relu(x: &[f32], scale: f32, shift: f32, out: &mut [MaybeUninit<f32>]) {
        for (o, &v) in out.iter_mut().zip(x) {
            let y = v * scale + shift;
            o.write(if y < 0.0 { 0.0 } else { y });
        }
    }
}

multiversion! {
    /// `out = (x − center)·scale + shift`, the center given as an f32 and the part of it the
    /// f32 leaves out (`center[0] + center[1]`).
    fn center_scale_shift(x: &[f32], center: [f32; 2], scale: f32, shift: f32, out: &mut [MaybeUninit<f32>]) {
        let [hi, lo] = center;
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(((v - hi) - lo) * scale + shift);
        }
    }
}

/// Inference-mode `nn.BatchNorm{1,2}d` on `[B, C, ...]`: each channel's values (the `t`
/// elements per sample and channel) scaled and shifted by its running statistics, then clamped
/// at 0 when `relu`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    level: SimdLevel,
    x: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    relu: bool,
) -> Result<Tensor> {
    let (c, t) = shape_checks::batch_norm(x, [mean, var, gamma, beta])?;
    let b = x.dim(0);
    let (m, v, g, bt) = (data(mean)?, data(var)?, data(gamma)?, data(beta)?);
    stored_lengths("batch_norm", &[(m.len(), c), (v.len(), c), (g.len(), c), (bt.len(), c)])?;
    let scale: Vec<f32> = (0..c).map(|i| g[i] / (v[i] + eps).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|i| bt[i] - m[i] * scale[i]).collect();
    let xd = data(x)?;
    stored_lengths("batch_norm", &[(xd.len(), b * c * t)])?;
    // SAFETY: both kernels write every element of their row; the rows cover the output.
    let out = unsafe {
        written(b * c * t, |out| {
            out.par_chunks_mut(t.max(1)).zip(xd.par_chunks(t.max(1))).enumerate().with_min_len(8).for_each(
                |(row, (o, r))| {
                    let ch = row % c;
                    if relu {
                        scale_shift_relu(level, r, scale[ch], shift[ch], o);
                    } else {
                        center_scale_shift(level, r, [0.0, 0.0], scale[ch], shift[ch], o);
                    }
                },
            )
        })
    };
    Ok(tensor(x.shape().to_vec(), out))
}

impl NormOps for CpuBackend {
    fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        layer_norm(self.simd, x, gamma, beta, eps)
    }

    fn group_norm(
        &self,
        x: &Tensor,
        groups: usize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        group_norm(self.simd, x, groups, gamma, beta, eps)
    }

    fn batch_norm(
        &self,
        x: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        relu: bool,
    ) -> Result<Tensor> {
        batch_norm(self.simd, x, mean, var, gamma, beta, eps, relu)
    }
}
