//! A direct `nn.Conv2d` for the 3-wide, stride-1, padding-1 convolutions along time that CAM++'s
//! FCM front end is made of (32 channels, 3×3, frequency stride 1 or 2), on AVX-512: no im2col
//! matrix. Each register tile holds [`CO_BLOCK`] output channels × [`TIME_VECS`]·16 consecutive
//! output frames of one output row (24 accumulators); for every input channel, kernel row and
//! kernel column it loads the input row shifted by the column and broadcasts each channel's
//! weight, so every input value loaded feeds [`CO_BLOCK`] multiply-adds and the GEMM's packing
//! of both operands disappears. Other convolutions keep im2col + GEMM ([`super::conv::conv2d`]).

use rayon::prelude::*;

use super::shared_out::SharedOut;
use crate::backend::shape_checks::Conv2dDims;
use crate::backend::Conv2dParams;

/// Output channels of one register tile.
pub const CO_BLOCK: usize = 8;
/// 16-float vectors of output frames in one register tile.
pub const TIME_VECS: usize = 3;
/// Output frames of one register tile.
pub const TIME_BLOCK: usize = 16 * TIME_VECS;
/// Kernel width (along time) the direct path computes.
const KERNEL_W: usize = 3;

/// Whether the direct path computes this convolution: one group, a kernel 3 wide along time
/// with stride 1, padding 1 and no dilation there, and whole blocks of [`CO_BLOCK`] output
/// channels (any kernel height, frequency stride, padding and dilation).
pub fn applies(d: &Conv2dDims, p: &Conv2dParams) -> bool {
    p.groups == 1
        && d.kw == KERNEL_W
        && p.stride.1 == 1
        && p.padding.1 == 1
        && p.dilation.1 == 1
        && d.c_out.is_multiple_of(CO_BLOCK)
        && d.c_out > 0
        && d.w_out == d.w_in
}

/// The convolution of `x[B, C_in, H, W]` with `w[C_out, C_in, KH, 3]` (and `bias`) into `out`
/// (`[B, C_out, H_out, W]`), which must be zeros.
///
/// # Safety
/// The CPU must have AVX-512F, and [`applies`] must hold for `d` and `p`.
pub unsafe fn conv2d(d: &Conv2dDims, p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let Conv2dDims { batch, c_in, h_in, w_in, c_out, kh, h_out, w_out, .. } = *d;
    assert!(applies(d, p), "conv2d_direct: the convolution does not fit the direct path");
    assert_eq!(x.len(), batch * c_in * h_in * w_in, "conv2d_direct: input size");
    assert_eq!(w.len(), c_out * c_in * kh * KERNEL_W, "conv2d_direct: weight size");
    assert_eq!(out.len(), batch * c_out * h_out * w_out, "conv2d_direct: output size");
    if out.is_empty() {
        return;
    }
    // Each input row padded: one zero before (padding 1), zeros after up to whole tiles plus the
    // kernel's reach, so every tile's loads stay inside its row.
    let blocks = w_out.div_ceil(TIME_BLOCK);
    let row_len = blocks * TIME_BLOCK + KERNEL_W - 1;
    let mut padded = vec![0.0f32; batch * c_in * h_in * row_len];
    padded.par_chunks_mut(row_len).zip(x.par_chunks(w_in.max(1))).for_each(|(dst, src)| {
        dst[1..1 + w_in].copy_from_slice(src);
    });
    // Weights as [co block][ci][kh][kw][CO_BLOCK]: one tile step's weights side by side.
    let co_blocks = c_out / CO_BLOCK;
    let mut packed = vec![0.0f32; w.len()];
    for co in 0..c_out {
        for ci in 0..c_in {
            for r in 0..kh {
                for c in 0..KERNEL_W {
                    let at = ((((co / CO_BLOCK) * c_in + ci) * kh + r) * KERNEL_W + c) * CO_BLOCK + co % CO_BLOCK;
                    packed[at] = w[((co * c_in + ci) * kh + r) * KERNEL_W + c];
                }
            }
        }
    }
    let zeros = vec![0.0f32; c_out];
    let bias = bias.unwrap_or(&zeros);
    // One task per (sample, output row, channel block): CO_BLOCK output lines of W frames.
    let plane = h_out * w_out;
    let shared = SharedOut::new(out);
    (0..batch * h_out * co_blocks).into_par_iter().for_each(|task| {
        let (b, rest) = (task / (h_out * co_blocks), task % (h_out * co_blocks));
        let (oh, cb) = (rest / co_blocks, rest % co_blocks);
        // The input rows this output row reads: (kernel row, input row) inside the input.
        let rows: Vec<(usize, usize)> = (0..kh)
            .filter_map(|r| {
                let ih = (oh * p.stride.0 + r * p.dilation.0) as isize - p.padding.0 as isize;
                (ih >= 0 && (ih as usize) < h_in).then_some((r, ih as usize))
            })
            .collect();
        let sample = &padded[b * c_in * h_in * row_len..][..c_in * h_in * row_len];
        let weights = &packed[cb * c_in * kh * KERNEL_W * CO_BLOCK..][..c_in * kh * KERNEL_W * CO_BLOCK];
        let tile_bias: [f32; CO_BLOCK] = std::array::from_fn(|c| bias[cb * CO_BLOCK + c]);
        let mut tile = [[0.0f32; TIME_BLOCK]; CO_BLOCK];
        for block in 0..blocks {
            let t0 = block * TIME_BLOCK;
            // SAFETY: AVX-512F is the caller's promise; every row read holds `row_len` values
            // and the tile reads `t0 + TIME_BLOCK + 2 ≤ row_len` of them.
            unsafe { avx512::tile(sample, h_in, row_len, weights, kh, &rows, t0, &tile_bias, &mut tile) };
            let width = TIME_BLOCK.min(w_out - t0);
            for (c, line) in tile.iter().enumerate() {
                let co = cb * CO_BLOCK + c;
                // SAFETY: task (b, oh, cb) alone writes these CO_BLOCK lines of the output.
                let dst = unsafe { shared.segment((b * c_out + co) * plane + oh * w_out + t0, width) };
                dst.copy_from_slice(&line[..width]);
            }
        }
    });
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{CO_BLOCK, KERNEL_W, TIME_BLOCK, TIME_VECS};

    /// One register tile: `tile[c][t] = bias[c] + Σ_ci Σ_(r, ih) Σ_kw wᵀ · row(ci, ih)[t0 + t + kw]`
    /// (the padded row's index `t + kw` is the input frame `t + kw − 1`).
    ///
    /// # Safety
    /// AVX-512F; `sample` holds `C_in · h_in` rows of `row_len` values with
    /// `t0 + TIME_BLOCK + 2 ≤ row_len`, `weights` `C_in · kh · 3 · CO_BLOCK` values and every
    /// row in `rows` is below `h_in` with its kernel row below `kh`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    pub unsafe fn tile(
        sample: &[f32],
        h_in: usize,
        row_len: usize,
        weights: &[f32],
        kh: usize,
        rows: &[(usize, usize)],
        t0: usize,
        bias: &[f32; CO_BLOCK],
        tile: &mut [[f32; TIME_BLOCK]; CO_BLOCK],
    ) {
        let c_in = weights.len() / (kh * KERNEL_W * CO_BLOCK);
        debug_assert!(t0 + TIME_BLOCK + KERNEL_W - 1 <= row_len && sample.len() >= c_in * h_in * row_len);
        let mut acc = [[_mm512_setzero_ps(); TIME_VECS]; CO_BLOCK];
        for c in 0..CO_BLOCK {
            let b = _mm512_set1_ps(bias[c]);
            for v in 0..TIME_VECS {
                acc[c][v] = b;
            }
        }
        let (xs, ws) = (sample.as_ptr(), weights.as_ptr());
        for ci in 0..c_in {
            for &(r, ih) in rows {
                let row = xs.add((ci * h_in + ih) * row_len + t0);
                let wr = ws.add(((ci * kh + r) * KERNEL_W) * CO_BLOCK);
                for k in 0..KERNEL_W {
                    let mut xv = [_mm512_setzero_ps(); TIME_VECS];
                    for v in 0..TIME_VECS {
                        xv[v] = _mm512_loadu_ps(row.add(k + 16 * v));
                    }
                    let wk = wr.add(k * CO_BLOCK);
                    for c in 0..CO_BLOCK {
                        let wv = _mm512_set1_ps(*wk.add(c));
                        for v in 0..TIME_VECS {
                            acc[c][v] = _mm512_fmadd_ps(wv, xv[v], acc[c][v]);
                        }
                    }
                }
            }
        }
        for c in 0..CO_BLOCK {
            for v in 0..TIME_VECS {
                _mm512_storeu_ps(tile[c].as_mut_ptr().add(16 * v), acc[c][v]);
            }
        }
    }
}
