//! A direct convolution on AVX-512 (and, in f32, on AVX2) for convolutions with stride 1 along
//! time (the last axis; strided ones over one input channel through their polyphase form,
//! below): CAM++'s FCM front end (32 channels, 3×3, frequency stride 1 or 2) and, as height-1
//! planes, the `nn.Conv1d`s of SincNet (k 5), CAM++'s D-TDNN (dilated k 3) and ECAPA's (k 3, 5):
//! no im2col matrix. Each register tile holds [`CO_BLOCK`] output channels × [`TIME_BLOCK`]
//! consecutive output frames of one output row (on AVX-512, 24 accumulators; AVX2 computes the
//! same tile in sub-tiles of 8); for every input channel,
//! kernel row and kernel column it loads the input row shifted by the column and broadcasts each
//! channel's weight, so every input value loaded feeds [`CO_BLOCK`] multiply-adds and the GEMM's
//! packing of both operands disappears. With a bf16 weight ([`conv2d_bf16`]) the input is laid
//! out once as bf16 pairs of channels and each step multiplies two channels. A strided
//! `nn.Conv1d` over one input channel (SincNet's filter bank, wav2vec2's first conv) runs on the
//! same tiles through its polyphase form ([`conv1d_polyphase`]). Other convolutions keep im2col +
//! GEMM ([`super::conv::conv2d`], [`super::conv::conv1d`]).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::bf16;
use super::shared_out::SharedOut;
use super::simd::SimdLevel;
use crate::backend::shape_checks::Conv2dDims;
use crate::backend::{Conv1dParams, Conv2dParams};

/// Output channels of one register tile.
pub const CO_BLOCK: usize = 8;
/// 16-float vectors of output frames in one register tile.
pub const TIME_VECS: usize = 3;
/// Output frames of one register tile.
pub const TIME_BLOCK: usize = 16 * TIME_VECS;
/// The widest kernel (along time) the direct path computes for a convolution as it is:
/// SincNet's second and third convs are 5 wide. (The sinc filter bank, 251 taps at stride 10,
/// runs as its polyphase form: 10 rows of 26 taps, [`conv1d_polyphase`].)
pub const MAX_KERNEL_W: usize = 7;

/// Whether the direct path computes this convolution: one group, stride 1 along time and a
/// kernel 2 to [`MAX_KERNEL_W`] wide there (any padding and dilation along time; any kernel
/// height, frequency stride, padding and dilation; any number of output channels, the last
/// block computed on zero weights where it is short). A kernel 1 wide stays a GEMM: with
/// hundreds of input channels its packed blocks reuse cache better than the direct tiles' input
/// rows (CAM++'s pointwise 512 → 128: 97 vs 80 GFLOP/s).
pub fn applies(d: &Conv2dDims, p: &Conv2dParams) -> bool {
    tiles_compute(d, p) && (2..=MAX_KERNEL_W).contains(&d.kw)
}

/// Whether the tiles can compute this convolution at all (what [`drive`] asserts): one group,
/// stride 1 along time, a kernel at least 1 wide, some output channels.
fn tiles_compute(d: &Conv2dDims, p: &Conv2dParams) -> bool {
    p.groups == 1 && d.kw >= 1 && p.stride.1 == 1 && p.dilation.1 >= 1 && d.c_out > 0
}

/// Whether [`conv1d_polyphase`] computes `nn.Conv1d` of `c_in` input channels into `c_out` in
/// `groups` groups with `p`: one input channel, one group, some output channels, stride 2 or
/// more, no padding, no dilation.
pub fn polyphase_applies(c_in: usize, c_out: usize, p: &Conv1dParams) -> bool {
    c_in == 1 && c_out > 0 && p.groups == 1 && p.stride >= 2 && p.padding == 0 && p.dilation == 1
}

/// `nn.Conv1d` of one input channel with stride `s` ≥ 2, no padding and no dilation
/// (SincNet's filter bank: 80 filters of 251 taps, stride 10; wav2vec2's first conv: 512 of 10,
/// stride 5), `x[B, 1, T]` and `w[C_out, 1, K]` (and `bias`) into `out[B, C_out, T_out]`, on
/// the direct tiles and without im2col: the signal read as its phases, a plane of
/// `rows = min(s, K)` rows (`phase[p][j] = x[s·j + p]`; phases from K on meet no tap), and each
/// kernel as `rows` rows of `⌈K / s⌉` taps (tap `s·q + p` at row `p`, column `q`, zero past
/// `K`), so that `out[t] = Σ_q Σ_p w[s·q + p] · phase[p][t + q]` is a stride-1 convolution of
/// the plane whose output has one row, its taps summed in their order (the tile kernel with
/// its columns outermost).
///
/// # Safety
/// `level` must have been detected on this CPU and be AVX2 or AVX-512 ([`tile_f32`]), and
/// [`polyphase_applies`] must hold for the convolution.
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv1d_polyphase(
    level: SimdLevel,
    batch: usize,
    t_in: usize,
    stride: usize,
    kernel: usize,
    c_out: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    assert!(stride >= 2 && kernel >= 1 && t_in >= kernel && c_out > 0, "conv1d_polyphase: shape");
    assert_eq!(x.len(), batch * t_in, "conv1d_polyphase: input size");
    assert_eq!(w.len(), c_out * kernel, "conv1d_polyphase: weight size");
    let t_out = (t_in - kernel) / stride + 1;
    let (rows, taps) = (stride.min(kernel), kernel.div_ceil(stride));
    // Each phase as long as the output frames read it, t_out + taps − 1, and zero past the last
    // sample a real tap reads (s·(t_out − 1) + K − 1): the zero taps past K then meet zeros, not
    // samples that nn.Conv1d never reads (an infinity there would make a NaN).
    let len = t_out + taps - 1;
    let read = stride * (t_out - 1) + kernel;
    let mut phases = vec![0.0f32; batch * rows * len];
    phases.par_chunks_mut(len).enumerate().for_each(|(row, dst)| {
        let (b, phase) = (row / rows, row % rows);
        let signal = &x[b * t_in..][..read];
        for (j, d) in dst.iter_mut().enumerate() {
            if let Some(&v) = signal.get(stride * j + phase) {
                *d = v;
            }
        }
    });
    let d = Conv2dDims {
        batch,
        c_in: 1,
        h_in: rows,
        w_in: len,
        c_out,
        cg_in: 1,
        kh: rows,
        kw: taps,
        h_out: 1,
        w_out: t_out,
    };
    let p = Conv2dParams { stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1 };
    // Kernel row r, column q holds tap s·q + r.
    let packed = pack_weights(&d, 1, |co, _, cell| {
        let k = stride * (cell % taps) + cell / taps;
        if k < kernel {
            w[co * kernel + k]
        } else {
            0.0
        }
    });
    drive(&d, &p, &phases, 1, &packed, bias, out, tile_f32::<true>(level));
}

/// The convolution of `x[B, C_in, H, W]` with `w[C_out, C_in, KH, KW]` (and `bias`) into `out`
/// (`[B, C_out, H_out, W_out]`).
///
/// # Safety
/// `level` must have been detected on this CPU and be AVX2 or AVX-512 ([`tile_f32`]), and
/// [`applies`] must hold for `d` and `p`.
pub unsafe fn conv2d(
    level: SimdLevel,
    d: &Conv2dDims,
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    let Conv2dDims { c_in, c_out, kh, kw, .. } = *d;
    assert_eq!(w.len(), c_out * c_in * kh * kw, "conv2d_direct: weight size");
    // Weights as [co block][ci][kh][kw][CO_BLOCK]: one tile step's weights side by side, zero
    // for the channels a short last block lacks.
    let packed = pack_weights(d, c_in, |co, ci, tap| w[(co * c_in + ci) * kh * kw + tap]);
    drive(d, p, x, c_in, &packed, bias, out, tile_f32::<false>(level));
}

/// [`conv2d`] with bf16 products (f32 sums): `w` holds bf16 values (as f32), the input is
/// rounded to bf16 as it is laid out in pairs of input channels (`[B, ⌈C_in / 2⌉, H, W]`, the
/// even channel in the low half; for an odd C_in the last pair's high half and its weights are
/// zero), and each tile step multiplies two channels at once (`vdpbf16ps`).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 BF16, and [`applies`] must hold for `d` and `p`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv2d_bf16(
    level: SimdLevel,
    d: &Conv2dDims,
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    let Conv2dDims { batch, c_in, h_in, w_in, c_out, kh, kw, .. } = *d;
    assert_eq!(w.len(), c_out * c_in * kh * kw, "conv2d_direct: weight size");
    assert_eq!(x.len(), batch * c_in * h_in * w_in, "conv2d_direct: input size");
    let pairs = c_in.div_ceil(2);
    let plane = h_in * w_in;
    let mut xp = vec![0u32; batch * pairs * plane];
    if plane > 0 {
        xp.par_chunks_mut(plane).enumerate().for_each(|(index, dst)| {
            let (b, j) = (index / pairs, index % pairs);
            let even = &x[(b * c_in + 2 * j) * plane..][..plane];
            if 2 * j + 1 < c_in {
                bf16::round_two_rows(level, even, &x[(b * c_in + 2 * j + 1) * plane..][..plane], dst);
            } else {
                for (o, &v) in dst.iter_mut().zip(even) {
                    *o = bf16::to_bf16(v) as u32;
                }
            }
        });
    }
    let value = |co: usize, ci: usize, tap: usize| if ci < c_in { w[(co * c_in + ci) * kh * kw + tap] } else { 0.0 };
    let packed = pack_weights(d, pairs, |co, j, tap| {
        bf16::to_bf16(value(co, 2 * j, tap)) as u32 | (bf16::to_bf16(value(co, 2 * j + 1, tap)) as u32) << 16
    });
    drive(d, p, &xp, pairs, &packed, bias, out, avx512::tile_bf16);
}

/// Whether `level` has an f32 tile kernel (AVX-512, or AVX2 with FMA; this module is built on
/// x86_64 only).
pub fn kernel_available(level: SimdLevel) -> bool {
    level >= SimdLevel::Avx2
}

/// The f32 tile kernel of `level`: AVX-512's, or AVX2's, which sums every output in the same
/// order (the same bits).
fn tile_f32<const COLUMNS_OUTER: bool>(level: SimdLevel) -> TileFn<f32> {
    assert!(kernel_available(level), "conv2d_direct: no tile kernel at {level:?}");
    if level == SimdLevel::Avx2 {
        return avx2::tile::<COLUMNS_OUTER>;
    }
    avx512::tile::<COLUMNS_OUTER>
}

/// The weights as `[co block][source channel][kh][kw][CO_BLOCK]`, `at(co, channel, tap)` each
/// (zero for the channels a short last block lacks).
fn pack_weights<T: Copy + Default>(d: &Conv2dDims, channels: usize, at: impl Fn(usize, usize, usize) -> T) -> Vec<T> {
    let (c_out, taps) = (d.c_out, d.kh * d.kw);
    let co_blocks = c_out.div_ceil(CO_BLOCK);
    let mut packed = vec![T::default(); co_blocks * CO_BLOCK * channels * taps];
    for co in 0..c_out {
        for ci in 0..channels {
            for tap in 0..taps {
                packed[(((co / CO_BLOCK) * channels + ci) * taps + tap) * CO_BLOCK + co % CO_BLOCK] = at(co, ci, tap);
            }
        }
    }
    packed
}

/// A tile kernel over source rows of `T` (f32 values, or bf16 pairs of channels).
type TileFn<T> =
    unsafe fn(&[T], &Rows, &Kernel, &[T], &[(usize, usize)], &[f32; CO_BLOCK], &mut [[f32; TIME_BLOCK]; CO_BLOCK]);

/// The tasks and tiles of a direct convolution whose source `x[B, channels, H, W]` and packed
/// weights hold values of `T`.
///
/// # Safety
/// As the tile kernel's; [`tiles_compute`] must hold.
#[allow(clippy::too_many_arguments)]
unsafe fn drive<T: Copy + Default + Send + Sync>(
    d: &Conv2dDims,
    p: &Conv2dParams,
    x: &[T],
    channels: usize,
    packed: &[T],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
    tile_fn: TileFn<T>,
) {
    let Conv2dDims { batch, h_in, w_in, c_out, kh, kw, h_out, w_out, .. } = *d;
    assert!(tiles_compute(d, p), "conv2d_direct: the convolution does not fit the direct path");
    assert_eq!(x.len(), batch * channels * h_in * w_in, "conv2d_direct: input size");
    assert_eq!(out.len(), batch * c_out * h_out * w_out, "conv2d_direct: output size");
    if out.is_empty() {
        return;
    }
    let (pad, dil) = (p.padding.1, p.dilation.1);
    assert_eq!(w_out + dil * (kw - 1), w_in + 2 * pad, "conv2d_direct: output width");
    // A tile of output frames t0..t0 + 48 reads input frames t0 − pad .. t0 − pad + `seg` of
    // each row it uses (output frame t's kernel column c is input frame t − pad + c·dil). Tiles
    // whose reach lies inside the rows read the input in place; the others (the padded edges,
    // the ragged last tile) read a copy of just that reach, zero outside the input.
    let blocks = w_out.div_ceil(TIME_BLOCK);
    let seg = TIME_BLOCK + dil * (kw - 1);
    let co_blocks = c_out.div_ceil(CO_BLOCK);
    assert_eq!(packed.len(), co_blocks * CO_BLOCK * channels * kh * kw, "conv2d_direct: packed weights");
    let mut padded_bias = vec![0.0f32; co_blocks * CO_BLOCK];
    if let Some(bias) = bias {
        padded_bias[..c_out].copy_from_slice(bias);
    }
    let (kernel, in_place_rows) = (Kernel { kh, kw, dil }, Rows { channel: h_in * w_in, row: w_in });
    // One task per (sample, output row, channel block): up to CO_BLOCK output lines of W frames.
    let plane = h_out * w_out;
    // Every value is written once below (each task's lines, every tile's frames), and only
    // through raw pointers: the output starts uninitialised.
    let shared = SharedOut::uninit(out);
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
        // The edge tiles' copy: [channel][kernel row][seg], so kernel row r is its own row r.
        let copied_rows: Vec<(usize, usize)> = rows.iter().map(|&(r, _)| (r, r)).collect();
        let copy_layout = Rows { channel: kh * seg, row: seg };
        let mut copy = Vec::new();
        let sample = &x[b * channels * h_in * w_in..][..channels * h_in * w_in];
        let weights = &packed[cb * channels * kh * kw * CO_BLOCK..][..channels * kh * kw * CO_BLOCK];
        let tile_bias: [f32; CO_BLOCK] = std::array::from_fn(|c| padded_bias[cb * CO_BLOCK + c]);
        let lines = CO_BLOCK.min(c_out - cb * CO_BLOCK);
        let mut tile = [[0.0f32; TIME_BLOCK]; CO_BLOCK];
        for block in 0..blocks {
            let t0 = block * TIME_BLOCK;
            let in_place = t0 >= pad && t0 - pad + seg <= w_in;
            // SAFETY (both calls): the tile kernel's CPU features are the caller's promise;
            // `tile` checks that every row it reads lies inside the slice it gets.
            if in_place {
                unsafe { tile_fn(&sample[t0 - pad..], &in_place_rows, &kernel, weights, &rows, &tile_bias, &mut tile) };
            } else {
                copy.clear();
                copy.resize(channels * kh * seg, T::default());
                for ci in 0..channels {
                    for &(r, ih) in &rows {
                        let src = &sample[(ci * h_in + ih) * w_in..][..w_in];
                        let dst = &mut copy[(ci * kh + r) * seg..][..seg];
                        for (j, d) in dst.iter_mut().enumerate() {
                            let f = (t0 + j) as isize - pad as isize;
                            if f >= 0 && (f as usize) < w_in {
                                *d = src[f as usize];
                            }
                        }
                    }
                }
                unsafe { tile_fn(&copy, &copy_layout, &kernel, weights, &copied_rows, &tile_bias, &mut tile) };
            }
            let width = TIME_BLOCK.min(w_out - t0);
            for (c, line) in tile.iter().take(lines).enumerate() {
                let co = cb * CO_BLOCK + c;
                let dst = shared.pointer((b * c_out + co) * plane + oh * w_out + t0, width);
                // SAFETY: `pointer` checked the bounds; task (b, oh, cb) alone writes these
                // output lines, and `line` holds at least `width` values.
                unsafe { std::ptr::copy_nonoverlapping(line.as_ptr(), dst, width) };
            }
        }
    });
}

/// Where the rows a tile reads lie: row (ci, ih) starts at `ci·channel + ih·row` of the
/// slice the tile gets (whose start is the tile's first input frame).
pub struct Rows {
    pub channel: usize,
    pub row: usize,
}

/// The kernel's height, width and dilation along time.
pub struct Kernel {
    pub kh: usize,
    pub kw: usize,
    pub dil: usize,
}

/// The source channels (or channel pairs) of a tile's packed `weights` (`weights_len`
/// values), after checking that every row the tile reads, `TIME_BLOCK + dil·(kw − 1)` values
/// from its start, lies inside the `src_len` values it gets. (The tiles keep their
/// accumulators' set-up and stores inline: moved into helpers, the direct convs of
/// benches/ops.rs ran 1.4–2.4× slower.)
fn checked_channels(
    src_len: usize,
    weights_len: usize,
    layout: &Rows,
    kernel: &Kernel,
    rows: &[(usize, usize)],
) -> usize {
    let Kernel { kh, kw, dil } = *kernel;
    let channels = weights_len / (kh * kw * CO_BLOCK);
    assert_eq!(weights_len, channels * kh * kw * CO_BLOCK, "conv2d_direct: packed weights");
    let reach = TIME_BLOCK + dil * (kw - 1);
    if channels > 0 {
        for &(r, ih) in rows {
            assert!(
                r < kh && (channels - 1) * layout.channel + ih * layout.row + reach <= src_len,
                "conv2d_direct: tile reach"
            );
        }
    }
    channels
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{checked_channels, Kernel, Rows, CO_BLOCK, TIME_BLOCK, TIME_VECS};

    /// One register tile: `tile[c][t] = bias[c] + Σ_ci Σ_(r, ih) Σ_kw wᵀ · x(ci, ih)[t + kw·dil]`,
    /// `x(ci, ih)` the row of `src` that `layout` places there. For each input channel the
    /// kernel's rows are the outer loop and its columns the inner one, or, with `COLUMNS_OUTER`,
    /// the other way round: for a polyphase plane ([`super::conv1d_polyphase`]: row `p`, column
    /// `q` hold tap `s·q + p`) every output then sums its taps in their order, as a plain
    /// convolution does. (Summed phase by phase, a band-pass filter's per-phase partial sums grow
    /// large and cancel: segmentation-3.0's log-probabilities moved 1.4e-4 from pyannote's,
    /// against 3.4e-5 in tap order.)
    ///
    /// # Safety
    /// AVX-512F. (The reach of every row read is checked against `src`; `weights` must hold
    /// `C_in · kh · kw · CO_BLOCK` values and every kernel row in `rows` be below `kh`.)
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)]
    pub unsafe fn tile<const COLUMNS_OUTER: bool>(
        src: &[f32],
        layout: &Rows,
        kernel: &Kernel,
        weights: &[f32],
        rows: &[(usize, usize)],
        bias: &[f32; CO_BLOCK],
        tile: &mut [[f32; TIME_BLOCK]; CO_BLOCK],
    ) {
        let Kernel { kh, kw, dil } = *kernel;
        let c_in = checked_channels(src.len(), weights.len(), layout, kernel, rows);
        let mut acc = [[_mm512_setzero_ps(); TIME_VECS]; CO_BLOCK];
        for c in 0..CO_BLOCK {
            let b = _mm512_set1_ps(bias[c]);
            for v in 0..TIME_VECS {
                acc[c][v] = b;
            }
        }
        let (xs, ws) = (src.as_ptr(), weights.as_ptr());
        // Input channel ci, kernel row r (input row ih), kernel column k: the row's frames
        // shifted by the column, times each output channel's weight.
        macro_rules! step {
            ($ci:expr, $r:expr, $ih:expr, $k:expr) => {{
                let row = xs.add($ci * layout.channel + $ih * layout.row);
                let mut xv = [_mm512_setzero_ps(); TIME_VECS];
                for v in 0..TIME_VECS {
                    xv[v] = _mm512_loadu_ps(row.add($k * dil + 16 * v));
                }
                let wk = ws.add((($ci * kh + $r) * kw + $k) * CO_BLOCK);
                for c in 0..CO_BLOCK {
                    let wv = _mm512_set1_ps(*wk.add(c));
                    for v in 0..TIME_VECS {
                        acc[c][v] = _mm512_fmadd_ps(wv, xv[v], acc[c][v]);
                    }
                }
            }};
        }
        for ci in 0..c_in {
            if COLUMNS_OUTER {
                for k in 0..kw {
                    for &(r, ih) in rows {
                        step!(ci, r, ih, k);
                    }
                }
            } else {
                for &(r, ih) in rows {
                    for k in 0..kw {
                        step!(ci, r, ih, k);
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

    /// [`tile`] over bf16 pairs of input channels: each step multiplies the pair's two values of
    /// a frame by the pair's two weights and adds both products (`vdpbf16ps`).
    ///
    /// # Safety
    /// AVX-512F and AVX-512 BF16. (The reach of every row read is checked against `src`; `weights` must hold
    /// `pairs · kh · kw · CO_BLOCK` channel pairs and every kernel row in `rows` be below `kh`.)
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::needless_range_loop)]
    pub unsafe fn tile_bf16(
        src: &[u32],
        layout: &Rows,
        kernel: &Kernel,
        weights: &[u32],
        rows: &[(usize, usize)],
        bias: &[f32; CO_BLOCK],
        tile: &mut [[f32; TIME_BLOCK]; CO_BLOCK],
    ) {
        let Kernel { kh, kw, dil } = *kernel;
        let c_in = checked_channels(src.len(), weights.len(), layout, kernel, rows);
        let mut acc = [[_mm512_setzero_ps(); TIME_VECS]; CO_BLOCK];
        for c in 0..CO_BLOCK {
            let b = _mm512_set1_ps(bias[c]);
            for v in 0..TIME_VECS {
                acc[c][v] = b;
            }
        }
        let (xs, ws) = (src.as_ptr(), weights.as_ptr());
        for ci in 0..c_in {
            for &(r, ih) in rows {
                let row = xs.add(ci * layout.channel + ih * layout.row);
                let wr = ws.add(((ci * kh + r) * kw) * CO_BLOCK);
                for k in 0..kw {
                    let mut xv = [_mm512_setzero_si512(); TIME_VECS];
                    for v in 0..TIME_VECS {
                        xv[v] = _mm512_loadu_si512(row.add(k * dil + 16 * v) as *const __m512i);
                    }
                    let wk = wr.add(k * CO_BLOCK);
                    for c in 0..CO_BLOCK {
                        let wv = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*wk.add(c) as i32));
                        for v in 0..TIME_VECS {
                            let xb = std::mem::transmute::<__m512i, __m512bh>(xv[v]);
                            acc[c][v] = _mm512_dpbf16_ps(acc[c][v], wv, xb);
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

/// The f32 tile on AVX2 (with FMA): the AVX-512 tile's `CO_BLOCK` channels × `TIME_BLOCK` frames
/// computed as sub-tiles of [`avx2::SUB_CHANNELS`] channels × 16 frames (8 accumulators, two
/// input vectors and a broadcast weight; sub-tiles of 24 frames, 12 accumulators, filled the 16
/// registers and ran 1.4–2× slower than im2col + GEMM), each sweeping every input channel, kernel
/// row and column in the AVX-512 tile's order from the bias: the same bits.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{checked_channels, Kernel, Rows, CO_BLOCK, TIME_BLOCK};

    /// Output channels of one sub-tile.
    pub const SUB_CHANNELS: usize = 4;
    /// 8-float vectors of output frames in one sub-tile.
    const SUB_VECS: usize = 2;
    /// Output frames of one sub-tile.
    const SUB_FRAMES: usize = 8 * SUB_VECS;
    const _: () = assert!(CO_BLOCK.is_multiple_of(SUB_CHANNELS) && TIME_BLOCK.is_multiple_of(SUB_FRAMES));

    /// The AVX-512 `tile`'s output on AVX2.
    ///
    /// # Safety
    /// AVX2 and FMA. (As the AVX-512 tile: the reach of every row read is checked against
    /// `src`; `weights` must hold `C_in · kh · kw · CO_BLOCK` values and every kernel row in
    /// `rows` be below `kh`.)
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile<const COLUMNS_OUTER: bool>(
        src: &[f32],
        layout: &Rows,
        kernel: &Kernel,
        weights: &[f32],
        rows: &[(usize, usize)],
        bias: &[f32; CO_BLOCK],
        tile: &mut [[f32; TIME_BLOCK]; CO_BLOCK],
    ) {
        let c_in = checked_channels(src.len(), weights.len(), layout, kernel, rows);
        for c0 in (0..CO_BLOCK).step_by(SUB_CHANNELS) {
            for t0 in (0..TIME_BLOCK).step_by(SUB_FRAMES) {
                sub_tile::<COLUMNS_OUTER>(src, layout, kernel, weights, rows, c_in, bias, tile, c0, t0);
            }
        }
    }

    /// Channels `c0..c0 + SUB_CHANNELS`, frames `t0..t0 + SUB_FRAMES` of the tile.
    ///
    /// # Safety
    /// As [`tile`], whose check of the rows' reach covers frames `t0 + …` (below `TIME_BLOCK`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    unsafe fn sub_tile<const COLUMNS_OUTER: bool>(
        src: &[f32],
        layout: &Rows,
        kernel: &Kernel,
        weights: &[f32],
        rows: &[(usize, usize)],
        c_in: usize,
        bias: &[f32; CO_BLOCK],
        tile: &mut [[f32; TIME_BLOCK]; CO_BLOCK],
        c0: usize,
        t0: usize,
    ) {
        let Kernel { kh, kw, dil } = *kernel;
        let mut acc = [[_mm256_setzero_ps(); SUB_VECS]; SUB_CHANNELS];
        for c in 0..SUB_CHANNELS {
            let b = _mm256_set1_ps(bias[c0 + c]);
            for v in 0..SUB_VECS {
                acc[c][v] = b;
            }
        }
        let (xs, ws) = (src.as_ptr(), weights.as_ptr());
        macro_rules! step {
            ($ci:expr, $r:expr, $ih:expr, $k:expr) => {{
                let row = xs.add($ci * layout.channel + $ih * layout.row + $k * dil + t0);
                let mut xv = [_mm256_setzero_ps(); SUB_VECS];
                for v in 0..SUB_VECS {
                    xv[v] = _mm256_loadu_ps(row.add(8 * v));
                }
                let wk = ws.add((($ci * kh + $r) * kw + $k) * CO_BLOCK + c0);
                for c in 0..SUB_CHANNELS {
                    let wv = _mm256_broadcast_ss(&*wk.add(c));
                    for v in 0..SUB_VECS {
                        acc[c][v] = _mm256_fmadd_ps(wv, xv[v], acc[c][v]);
                    }
                }
            }};
        }
        for ci in 0..c_in {
            if COLUMNS_OUTER {
                for k in 0..kw {
                    for &(r, ih) in rows {
                        step!(ci, r, ih, k);
                    }
                }
            } else {
                for &(r, ih) in rows {
                    for k in 0..kw {
                        step!(ci, r, ih, k);
                    }
                }
            }
        }
        for c in 0..SUB_CHANNELS {
            for v in 0..SUB_VECS {
                _mm256_storeu_ps(tile[c0 + c].as_mut_ptr().add(t0 + 8 * v), acc[c][v]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The polyphase form sums each output's taps in their order, one fused multiply-add after
    /// another from the bias, exactly as a scalar loop over the taps does: the same bits, for a
    /// filter bank's shape and for a stride past the kernel (phases that meet no tap).
    #[test]
    fn polyphase_sums_the_taps_in_their_order() {
        let best = SimdLevel::detect();
        assert!(
            best == SimdLevel::Avx512 || std::env::var_os("CI").is_none(),
            "CI's CPUs have AVX-512; this one does not"
        );
        for level in [SimdLevel::Avx2, SimdLevel::Avx512].into_iter().filter(|&l| l <= best) {
            polyphase_in_tap_order(level);
        }
    }

    fn polyphase_in_tap_order(level: SimdLevel) {
        let mut seed = 5u64;
        let mut value = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for &(batch, t_in, stride, kernel, c_out) in &[(2, 3001, 10, 251, 9), (1, 101, 5, 3, 8), (1, 64, 4, 8, 3)] {
            let x: Vec<f32> = (0..batch * t_in).map(|_| value()).collect();
            let w: Vec<f32> = (0..c_out * kernel).map(|_| value()).collect();
            let bias: Vec<f32> = (0..c_out).map(|_| value()).collect();
            let t_out = (t_in - kernel) / stride + 1;
            // SAFETY: the level was detected (the caller's filter); one input channel, stride 2
            // or more, no padding; the drive writes every output value.
            let out = unsafe {
                crate::backend::cpu::written(batch * c_out * t_out, |out| {
                    conv1d_polyphase(level, batch, t_in, stride, kernel, c_out, &x, &w, Some(&bias), out)
                })
            };
            for b in 0..batch {
                for co in 0..c_out {
                    for t in 0..t_out {
                        let want = (0..kernel)
                            .fold(bias[co], |acc, k| w[co * kernel + k].mul_add(x[b * t_in + stride * t + k], acc));
                        let got = out[(b * c_out + co) * t_out + t];
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{level:?} s{stride} k{kernel} [{b}, {co}, {t}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// The AVX2 tile computes the AVX-512 tile's outputs bit for bit: channel counts that leave
    /// a short last block, widths that leave a ragged last tile (copied reach), padding and
    /// dilation along time, kernels 2 to 7 wide, kernel rows cut by the input's edge.
    #[test]
    fn the_avx2_tile_gives_the_avx512_bits() {
        if SimdLevel::detect() < SimdLevel::Avx512 {
            assert!(std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512; this one does not");
            return;
        }
        let mut seed = 11u64;
        let mut value = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        // (batch, c_in, h_in, w_in, c_out, kh, kw, stride h, padding (h, w), dilation w)
        let cases = [
            (1, 3, 1, 100, 5, 1, 5, 1, (0, 0), 1),
            (2, 7, 1, 49, 9, 1, 3, 1, (0, 2), 2),
            (1, 4, 6, 61, 8, 3, 3, 2, (1, 1), 1),
            (1, 2, 5, 130, 17, 3, 7, 1, (1, 3), 1),
            (1, 1, 1, 9, 3, 1, 2, 1, (0, 0), 1),
            // dilation on the in-place path (CAM++'s k3 d2), kernels 4 and 6 wide
            (1, 4, 1, 120, 8, 1, 3, 1, (0, 0), 2),
            (1, 3, 1, 150, 6, 1, 4, 1, (0, 1), 1),
            (1, 2, 1, 200, 8, 1, 6, 1, (0, 0), 1),
        ];
        for &(batch, c_in, h_in, w_in, c_out, kh, kw, sh, (ph, pw), dw) in &cases {
            let w_out = w_in + 2 * pw - dw * (kw - 1);
            let h_out = (h_in + 2 * ph - kh) / sh + 1;
            let d = Conv2dDims { batch, c_in, h_in, w_in, c_out, cg_in: c_in, kh, kw, h_out, w_out };
            let p = Conv2dParams { stride: (sh, 1), padding: (ph, pw), dilation: (1, dw), groups: 1 };
            assert!(applies(&d, &p));
            let x: Vec<f32> = (0..batch * c_in * h_in * w_in).map(|_| value()).collect();
            let w: Vec<f32> = (0..c_out * c_in * kh * kw).map(|_| value()).collect();
            let bias: Vec<f32> = (0..c_out).map(|_| value()).collect();
            let run = |level: SimdLevel| {
                // SAFETY: both levels were detected (AVX-512 implies AVX2 and FMA); `applies`
                // holds; the drive writes every output value.
                unsafe {
                    crate::backend::cpu::written(batch * c_out * h_out * w_out, |out| {
                        conv2d(level, &d, &p, &x, &w, Some(&bias), out)
                    })
                }
            };
            let (a, b) = (run(SimdLevel::Avx2), run(SimdLevel::Avx512));
            for (i, (g, e)) in a.iter().zip(&b).enumerate() {
                assert_eq!(g.to_bits(), e.to_bits(), "{d:?} [{i}]: {g} vs {e}");
            }
        }
    }
}
