//! `nn.Conv1d` and `nn.Conv2d` (im2col + GEMM, any stride, padding, dilation and groups; on
//! AVX-512 and AVX2 the stride-1, one-group ones with kernels 2 to 7 wide along time run on the
//! direct kernel of [`super::conv2d_direct`], in f32 or, with a bf16 weight (AVX-512 BF16), its
//! bf16 form, and so do
//! strided f32 `nn.Conv1d`s over one input channel, in their polyphase form; other
//! convolutions with a bf16 weight run on [`super::conv_bf16`]) and `nn.MaxPool1d`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::{sgemm, MatRef};
use super::simd::{multiversion, SimdLevel};
use super::{data, tensor, weight, written, CpuBackend, Weight};
use crate::backend::kernels::ConvOps;
use crate::backend::shape_checks::{self, Conv2dDims};
use crate::backend::{Conv1dParams, Conv2dParams, Tensor};
use crate::error::Result;

pub fn conv1d(level: SimdLevel, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor> {
    let shape_checks::ConvDims { batch, c_in, t_in, c_out, cg_in, kernel, t_out } = shape_checks::conv1d(x, w, b, p)?;
    let g = p.groups;
    let cg_out = c_out / g;
    let xd = data(x)?;
    let bias = b.map(data).transpose()?;
    let (wd, bf16_weight) = conv_weight("conv1d", w, c_out, cg_in * kernel)?;
    if t_out == 0 || batch == 0 {
        return Ok(tensor(vec![batch, c_out, t_out], Vec::new()));
    }
    #[cfg(target_arch = "x86_64")]
    if g == 1 && p.stride == 1 {
        // A plane of height 1 for the direct kernel.
        let dims =
            Conv2dDims { batch, c_in, h_in: 1, w_in: t_in, c_out, cg_in, kh: 1, kw: kernel, h_out: 1, w_out: t_out };
        let p2 = Conv2dParams { stride: (1, 1), padding: (0, p.padding), dilation: (1, p.dilation), groups: 1 };
        if direct_applies(level, &dims, &p2, bf16_weight) {
            return Ok(tensor(vec![batch, c_out, t_out], direct(level, &dims, &p2, xd, wd, bf16_weight, bias)));
        }
    }
    #[cfg(target_arch = "x86_64")]
    if super::conv2d_direct::kernel_available(level)
        && bf16_weight.is_none()
        && super::conv2d_direct::polyphase_applies(c_in, c_out, &p)
    {
        // SAFETY: the level (detected on this CPU) has a tile kernel and the path applies; its
        // drive writes every output value.
        let out = unsafe {
            written(batch * c_out * t_out, |out| {
                super::conv2d_direct::conv1d_polyphase(level, batch, t_in, p.stride, kernel, c_out, xd, wd, bias, out)
            })
        };
        return Ok(tensor(vec![batch, c_out, t_out], out));
    }
    let mut out = vec![0.0f32; batch * c_out * t_out];
    if let Some(wm) = bf16_weight {
        let dims = shape_checks::ConvDims { batch, c_in, t_in, c_out, cg_in, kernel, t_out };
        super::conv_bf16::conv1d(level, &dims, p, xd, wm, bias, &mut out);
        return Ok(tensor(vec![batch, c_out, t_out], out));
    }
    let rows = cg_in * kernel; // im2col rows per group
                               // One task per (batch, group): build its im2col block, then one GEMM.
    let tasks = batch * g;
    // One input channel per group, no padding or dilation (depthwise convs; a waveform front
    // end, SincNet or wav2vec2's first conv, where the polyphase form above does not run): the
    // im2col matrix is the signal itself seen with row stride 1 and column stride `stride`
    // (element (k, t) = x[t·stride + k]), so GEMM reads it in place.
    let strided_view = cg_in == 1 && p.padding == 0 && p.dilation == 1;
    // A pointwise conv (kernel 1, stride 1, no padding: CAM++'s and ECAPA's 1×1 layers): the
    // im2col matrix is the group's input channels themselves, read in place.
    let pointwise = kernel == 1 && p.stride == 1 && p.padding == 0;
    let run = |task: usize, o: &mut [f32]| {
        let (bi, gi) = (task / g, task % g);
        let wg = &wd[gi * cg_out * rows..(gi + 1) * cg_out * rows];
        if let Some(bd) = bias {
            fill_rows(o, t_out, &bd[gi * cg_out..]);
        }
        // The group's input channels.
        let src = &xd[(bi * c_in + gi * cg_in) * t_in..][..cg_in * t_in];
        let col: Vec<f32>;
        let columns = if strided_view {
            MatRef::transposed(src, p.stride)
        } else if pointwise {
            MatRef::row_major(src, t_in)
        } else {
            col = im2col_1d(src, cg_in, t_in, kernel, p, t_out);
            MatRef::row_major(&col, t_out)
        };
        sgemm(level, cg_out, t_out, rows, MatRef::row_major(wg, rows), columns, o, t_out, bias.is_some(), tasks == 1);
    };
    if tasks > 1 {
        out.par_chunks_mut(cg_out * t_out).enumerate().for_each(|(task, o)| run(task, o));
    } else {
        run(0, &mut out);
    }
    Ok(tensor(vec![batch, c_out, t_out], out))
}

/// A convolution's weight: f32 (and no bf16 matrix), or (no f32 values and) a bf16 matrix
/// checked to be the conv's `[c_out, rows]`; any other weight type is the error [`data`] names.
/// Checked even when the output is empty.
fn conv_weight<'w>(
    op: &'static str,
    w: &'w Tensor,
    c_out: usize,
    rows: usize,
) -> Result<(&'w [f32], Option<&'w super::bf16::Bf16Matrix>)> {
    match weight(w)? {
        Weight::Bf16(wm) => {
            super::conv_bf16::check_matrix(op, wm, c_out, rows)?;
            Ok((&[], Some(wm)))
        }
        _ => Ok((data(w)?, None)),
    }
}

/// Whether the direct kernel ([`super::conv2d_direct`]) applies on this CPU: f32 (AVX2 or
/// AVX-512), or its bf16 form for a bf16 weight (which needs AVX-512 BF16).
#[cfg(target_arch = "x86_64")]
fn direct_applies(
    level: SimdLevel,
    dims: &Conv2dDims,
    p: &Conv2dParams,
    bf16_weight: Option<&super::bf16::Bf16Matrix>,
) -> bool {
    super::conv2d_direct::kernel_available(level)
        && super::conv2d_direct::applies(dims, p)
        && bf16_weight.is_none_or(|_| super::bf16::kernel_available(level))
}

/// The convolution on the direct kernel, where [`direct_applies`]: an output it alone writes.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn direct(
    level: SimdLevel,
    dims: &Conv2dDims,
    p: &Conv2dParams,
    xd: &[f32],
    wd: &[f32],
    bf16_weight: Option<&super::bf16::Bf16Matrix>,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert!(direct_applies(level, dims, p, bf16_weight), "conv: the direct kernel does not apply");
    let len = dims.batch * dims.c_out * dims.h_out * dims.w_out;
    let run = |out: &mut [MaybeUninit<f32>]| match bf16_weight {
        // SAFETY: the level (detected on this CPU) has a tile kernel and the path applies.
        None => unsafe { super::conv2d_direct::conv2d(level, dims, p, xd, wd, bias, out) },
        Some(wm) => {
            let values = wm.dequantized_rows(0..dims.c_out);
            // SAFETY: as above, and AVX-512 BF16 was detected (`direct_applies`).
            unsafe { super::conv2d_direct::conv2d_bf16(level, dims, p, xd, &values, bias, out) }
        }
    };
    // SAFETY: the direct kernel's tasks write every output line, every frame of it.
    unsafe { written(len, run) }
}

/// Each `n`-wide row `co` of `o` set to `values[co]` (a group's biases, before the products are
/// added).
pub(crate) fn fill_rows(o: &mut [f32], n: usize, values: &[f32]) {
    for (row, &v) in o.chunks_exact_mut(n).zip(values) {
        row.fill(v);
    }
}

/// The im2col matrix of one group's input channels `src[cg_in, t_in]`: `col[ci·kernel + kk, t]
/// = src[ci, t·stride + kk·dilation − padding]`, 0 where that falls outside the input.
pub(crate) fn im2col_1d(
    src: &[f32],
    cg_in: usize,
    t_in: usize,
    kernel: usize,
    p: Conv1dParams,
    t_out: usize,
) -> Vec<f32> {
    let mut col = vec![0.0f32; cg_in * kernel * t_out];
    for ci in 0..cg_in {
        // No input frames but padding: the columns stay zeros.
        let src = &src[ci * t_in..][..t_in];
        for kk in 0..kernel {
            let dst = &mut col[(ci * kernel + kk) * t_out..][..t_out];
            let shift = (kk * p.dilation) as isize - p.padding as isize;
            for (t, d) in dst.iter_mut().enumerate() {
                let s = (t * p.stride) as isize + shift;
                *d = if s >= 0 && (s as usize) < t_in { src[s as usize] } else { 0.0 };
            }
        }
    }
    col
}

/// Floats of one im2col tile of [`conv2d`]: 512 KiB, so a tile stays in the core's L2 (1 MiB on
/// Zen 4) between being written and being read by the GEMM.
pub const CONV2D_TILE_FLOATS: usize = 128 * 1024;
/// The fewest output positions in a tile (the GEMM's columns), whatever the rows.
pub const CONV2D_MIN_TILE_COLUMNS: usize = 64;

/// `nn.Conv2d`: per (sample, group), the im2col matrix `cols[(ci·KH + kh)·KW + kw, oh·W_out +
/// ow] = x[b, ci, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]` (0 outside the input), then a GEMM
/// with the group's weights `[C_out / groups, C_in / groups · KH · KW]`. The output positions
/// are cut into tiles of [`CONV2D_TILE_FLOATS`] im2col floats: each tile's columns are built and
/// multiplied while they are in cache, and tiles of all (sample, group) pairs run in parallel
/// (a whole CAM++ FCM plane's im2col is 69 MB, written once and read once from memory).
pub fn conv2d(level: SimdLevel, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor> {
    let dims = shape_checks::conv2d(x, w, b, p)?;
    let Conv2dDims { batch, c_out, cg_in, kh, kw, h_out, w_out, .. } = dims;
    let xd = data(x)?;
    let bias = b.map(data).transpose()?;
    let (wd, bf16_weight) = conv_weight("conv2d", w, c_out, cg_in * kh * kw)?;
    let plane = h_out * w_out;
    if plane == 0 || batch == 0 {
        return Ok(tensor(vec![batch, c_out, h_out, w_out], Vec::new()));
    }
    #[cfg(target_arch = "x86_64")]
    if direct_applies(level, &dims, &p, bf16_weight) {
        return Ok(tensor(vec![batch, c_out, h_out, w_out], direct(level, &dims, &p, xd, wd, bf16_weight, bias)));
    }
    let out = vec![0.0f32; batch * c_out * plane];
    conv2d_tiles(level, dims, p, xd, wd, bf16_weight, bias, out)
}

/// [`conv2d`] through im2col tiles and a GEMM (f32 or bf16).
#[allow(clippy::too_many_arguments)]
fn conv2d_tiles(
    level: SimdLevel,
    dims: Conv2dDims,
    p: Conv2dParams,
    xd: &[f32],
    wd: &[f32],
    bf16_weight: Option<&super::bf16::Bf16Matrix>,
    bias: Option<&[f32]>,
    mut out: Vec<f32>,
) -> Result<Tensor> {
    let Conv2dDims { batch, c_in, h_in, w_in, c_out, cg_in, kh, kw, h_out, w_out } = dims;
    let g = p.groups;
    let cg_out = c_out / g;
    let rows = cg_in * kh * kw;
    let plane = h_out * w_out;
    let tile = (CONV2D_TILE_FLOATS / rows.max(1)).max(CONV2D_MIN_TILE_COLUMNS).min(plane);
    let tiles_per_plane = plane.div_ceil(tile);
    // One job per (sample, group, tile): its block of the output, `[cg_out, columns]`.
    let job = |index: usize| -> Vec<f32> {
        let (task, t) = (index / tiles_per_plane, index % tiles_per_plane);
        let (bi, gi) = (task / g, task % g);
        let (p0, p1) = (t * tile, ((t + 1) * tile).min(plane));
        let n = p1 - p0;
        let mut col = vec![0.0f32; rows * n];
        for ci in 0..cg_in {
            let src = &xd[(bi * c_in + gi * cg_in + ci) * h_in * w_in..][..h_in * w_in];
            for a in 0..kh {
                for c in 0..kw {
                    let dst = &mut col[((ci * kh + a) * kw + c) * n..][..n];
                    // The tile's positions, a line of the output (one oh) at a time.
                    let mut pos = p0;
                    while pos < p1 {
                        let (oh, ow0) = (pos / w_out, pos % w_out);
                        let ow1 = w_out.min(ow0 + (p1 - pos));
                        let line = &mut dst[pos - p0..pos - p0 + (ow1 - ow0)];
                        let ih = (oh * p.stride.0 + a * p.dilation.0) as isize - p.padding.0 as isize;
                        if ih < 0 || ih as usize >= h_in {
                            line.fill(0.0);
                        } else if p.stride.1 == 1 {
                            // Along a line the input is contiguous: copy its part inside the
                            // row, zeros where the padding is.
                            let src_row = &src[ih as usize * w_in..][..w_in];
                            let shift = (c * p.dilation.1) as isize - p.padding.1 as isize;
                            let first = (-shift - ow0 as isize).clamp(0, line.len() as isize) as usize;
                            let last = (w_in as isize - shift - ow0 as isize).clamp(first as isize, line.len() as isize)
                                as usize;
                            line[..first].fill(0.0);
                            if last > first {
                                let from = ((ow0 + first) as isize + shift) as usize;
                                line[first..last].copy_from_slice(&src_row[from..from + (last - first)]);
                            }
                            line[last..].fill(0.0);
                        } else {
                            let src_row = &src[ih as usize * w_in..][..w_in];
                            for (ow, d) in (ow0..ow1).zip(line.iter_mut()) {
                                let iw = (ow * p.stride.1 + c * p.dilation.1) as isize - p.padding.1 as isize;
                                *d = if iw >= 0 && (iw as usize) < w_in { src_row[iw as usize] } else { 0.0 };
                            }
                        }
                        pos += ow1 - ow0;
                    }
                }
            }
        }
        let mut o = vec![0.0f32; cg_out * n];
        if let Some(wm) = bf16_weight {
            super::conv_bf16::group_product(level, wm, gi, cg_out, &col, n, n, bias, &mut o, false);
            return o;
        }
        if let Some(bd) = bias {
            fill_rows(&mut o, n, &bd[gi * cg_out..]);
        }
        let wg = &wd[gi * cg_out * rows..(gi + 1) * cg_out * rows];
        sgemm(
            level,
            cg_out,
            n,
            rows,
            MatRef::row_major(wg, rows),
            MatRef::row_major(&col, n),
            &mut o,
            n,
            bias.is_some(),
            false,
        );
        o
    };
    let jobs = batch * g * tiles_per_plane;
    let blocks: Vec<Vec<f32>> = (0..jobs).into_par_iter().map(job).collect();
    for (index, block) in blocks.into_iter().enumerate() {
        let (task, t) = (index / tiles_per_plane, index % tiles_per_plane);
        let (bi, gi) = (task / g, task % g);
        let p0 = t * tile;
        let n = block.len() / cg_out;
        for (co, row) in block.chunks_exact(n).enumerate() {
            let at = (bi * c_out + gi * cg_out + co) * plane + p0;
            out[at..at + n].copy_from_slice(row);
        }
    }
    Ok(tensor(vec![batch, c_out, h_out, w_out], out))
}

pub fn max_pool1d(level: SimdLevel, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (b, c, t, t_out) = shape_checks::max_pool1d(x, kernel, stride)?;
    let xd = data(x)?;
    // SAFETY: `pool_row` writes each of its row's `t_out` windows; the rows cover the output.
    let out = unsafe {
        written(b * c * t_out, |out| {
            if t_out > 0 {
                out.par_chunks_mut(t_out).enumerate().for_each(|(row, o)| {
                    pool_row(level, &xd[row * t..(row + 1) * t], kernel, stride, o);
                });
            }
        })
    };
    Ok(tensor(vec![b, c, t_out], out))
}

multiversion! {
    /// One row's windows: `out[i] = max(src[i·stride..i·stride + kernel])`. SincNet's pools
    /// (kernel 3, stride 3) have a loop of their own, which the compiler vectorises.
    fn pool_row(src: &[f32], kernel: usize, stride: usize, out: &mut [MaybeUninit<f32>]) {
        if kernel == 3 && stride == 3 {
            for (v, w) in out.iter_mut().zip(src.chunks_exact(3)) {
                v.write(f32::NEG_INFINITY.max(w[0]).max(w[1]).max(w[2]));
            }
            return;
        }
        for (i, v) in out.iter_mut().enumerate() {
            v.write(src[i * stride..i * stride + kernel].iter().copied().fold(f32::NEG_INFINITY, f32::max));
        }
    }
}

/// See [`ConvOps::windows_abs_max_pool`]: one row `(w, c)` a task.
pub fn windows_abs_max_pool(
    level: SimdLevel,
    x: &Tensor,
    hop: usize,
    len: usize,
    scale: &Tensor,
    shift: &Tensor,
    pool: usize,
) -> Result<Tensor> {
    let (c, t, w, pooled) = shape_checks::windows_abs_max_pool(x, hop, len, scale, shift, pool)?;
    let (xd, sd, hd) = (data(x)?, data(scale)?, data(shift)?);
    // SAFETY: `abs_pool_row` writes each of its row's `pooled` windows (its source holds
    // exactly that many); the rows cover the output.
    let out = unsafe {
        written(w * c * pooled, |out| {
            if pooled > 0 {
                out.par_chunks_mut(pooled).enumerate().for_each(|(row, o)| {
                    let (wi, ci) = (row / c, row % c);
                    let src = &xd[ci * t + wi * hop..][..pooled * pool];
                    abs_pool_row(level, src, sd[wi], hd[row], pool, o);
                });
            }
        })
    };
    Ok(tensor(vec![w, c, pooled], out))
}

multiversion! {
    /// One window row: `out[j] = max_{i < pool} |src[j·pool + i] · a + b|` (the product rounded
    /// before the sum, as an affine op then `abs` and `max_pool1d` would round). SincNet's pool
    /// of 3 has a loop of its own, which the compiler vectorises.
    fn abs_pool_row(src: &[f32], a: f32, b: f32, pool: usize, out: &mut [MaybeUninit<f32>]) {
        let mag = |v: f32| (v * a + b).abs();
        if pool == 3 {
            for (o, s) in out.iter_mut().zip(src.chunks_exact(3)) {
                o.write(f32::NEG_INFINITY.max(mag(s[0])).max(mag(s[1])).max(mag(s[2])));
            }
            return;
        }
        for (o, s) in out.iter_mut().zip(src.chunks_exact(pool)) {
            o.write(s.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(mag(v))));
        }
    }
}

impl ConvOps for CpuBackend {
    fn conv1d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor> {
        conv1d(self.simd, x, w, b, p)
    }

    fn conv2d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor> {
        conv2d(self.simd, x, w, b, p)
    }

    fn max_pool1d(&self, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
        max_pool1d(self.simd, x, kernel, stride)
    }

    fn windows_abs_max_pool(
        &self,
        x: &Tensor,
        hop: usize,
        len: usize,
        scale: &Tensor,
        shift: &Tensor,
        pool: usize,
    ) -> Result<Tensor> {
        windows_abs_max_pool(self.simd, x, hop, len, scale, shift, pool)
    }
}
