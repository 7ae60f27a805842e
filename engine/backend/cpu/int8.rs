//! int8 products for `nn.Linear` (`compute_type=int8`). The weight is quantised once,
//! symmetrically per output channel (`scale[n] = max|w[n, :]| / 127`), as CTranslate2 does. Each
//! input row is quantised when it is multiplied, per block of [`ACTIVATION_GROUP`] values with a
//! scale of its own (as llama.cpp's Q8 blocks): one scale per whole row, CTranslate2's choice,
//! lets the few outlier features of Whisper's activations flatten the rest of the row, which cost
//! tiny.en 1.6 WER points on the benchmark's long file where per-channel weights alone cost none.
//! Each block's products are summed exactly in i32, scaled into an f32 sum, and the sum scaled by
//! the channel's weight scale.
//!
//! On CPUs with AVX-512 VNNI the sums run on `vpdpbusd`, which multiplies unsigned by signed
//! bytes, four pairs a lane: the weight is stored as `q + 128` (unsigned) and each block's sum
//! starts at `-128 · Σ q_x` (the block's correction, known once the input is quantised).
//! Elsewhere a portable kernel computes the same integers and the same f32 operations in the same
//! order, so both give bit-identical results (the test of the VNNI kernel).

use rayon::prelude::*;

use super::shared_out::SharedOut;
use super::simd::{multiversion, SimdLevel};

/// The largest quantised magnitude (symmetric: -127..=127, as CTranslate2).
pub const INT8_MAX: f32 = 127.0;
/// Input values that share one scale: a block of each row.
pub const ACTIVATION_GROUP: usize = 64;
/// Added to each signed weight value to make it the unsigned operand of `vpdpbusd`.
const WEIGHT_OFFSET: i32 = 128;
/// Products one `vpdpbusd` lane sums: k is stored in groups of four.
const K_GROUP: usize = 4;
/// Groups of four k in one activation block.
const QUADS_PER_BLOCK: usize = ACTIVATION_GROUP / K_GROUP;
/// Output columns of one packed panel: two AVX-512 registers of sums.
pub const PANEL_COLS: usize = 32;
/// Input rows of one register tile: 4 registers a row (i32 block sums and f32 sums, two of
/// each), 24 of the 32.
const TILE_ROWS: usize = 6;
/// Rows of one parallel task.
const TASK_ROWS: usize = 60;
/// Output columns of one parallel task (whole panels).
const TASK_COLS: usize = 8 * PANEL_COLS;
/// Below this many multiply-adds the product runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// Whether this CPU has `vpdpbusd` on 512-bit registers.
pub fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `[n, k]` weight quantised per output channel and packed for the kernels: panels of
/// [`PANEL_COLS`] output channels, in each the channels' values for four consecutive k
/// (`packed[panel][k / 4][column][k % 4]`), stored unsigned (`q + 128`), k padded to a multiple
/// of 4 and the last panel's missing channels filled with (unsigned) zeros.
pub struct Int8Matrix {
    n: usize,
    k: usize,
    k_padded: usize,
    packed: Vec<u8>,
    scales: Vec<f32>,
}

impl Int8Matrix {
    /// Quantise a row-major `[n, k]` weight.
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "Int8Matrix::quantize: {} values for [{n}, {k}]", w.len());
        let k_padded = k.div_ceil(K_GROUP) * K_GROUP;
        let panels = n.div_ceil(PANEL_COLS);
        let mut packed = vec![WEIGHT_OFFSET as u8; panels * PANEL_COLS * k_padded];
        let mut scales = vec![0.0f32; n];
        for (col, row) in w.chunks_exact(k.max(1)).take(n).enumerate() {
            let (inverse, scale) = row_scale(row);
            for (p, &v) in row.iter().enumerate() {
                packed[Self::index(k_padded, col, p)] = (quantize_value(v, inverse) as i32 + WEIGHT_OFFSET) as u8;
            }
            scales[col] = scale;
        }
        Int8Matrix { n, k, k_padded, packed, scales }
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn cols(&self) -> usize {
        self.k
    }

    /// Where `w[row, col]` is packed.
    fn index(k_padded: usize, row: usize, col: usize) -> usize {
        (row / PANEL_COLS) * PANEL_COLS * k_padded
            + (col / K_GROUP) * PANEL_COLS * K_GROUP
            + (row % PANEL_COLS) * K_GROUP
            + col % K_GROUP
    }

    /// The quantised value of `w[row, col]`.
    fn q(&self, row: usize, col: usize) -> i32 {
        self.packed[Self::index(self.k_padded, row, col)] as i32 - WEIGHT_OFFSET
    }

    /// Rows `rows` as f32 (`q · scale`, the values the products use).
    pub fn dequantized_rows(&self, rows: std::ops::Range<usize>) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * self.k);
        for r in rows {
            out.extend((0..self.k).map(|c| self.q(r, c) as f32 * self.scales[r]));
        }
        out
    }

    /// Panel `p`: `k_padded / 4` groups of `PANEL_COLS × 4` values.
    fn panel(&self, p: usize) -> &[u8] {
        let len = PANEL_COLS * self.k_padded;
        &self.packed[p * len..(p + 1) * len]
    }
}

/// `(127 / max|v|, max|v| / 127)`: the factor that quantises `values` and the scale that
/// restores them; both 0 where the factor is not finite (all zeros, or values so small that
/// `127 / max` overflows), which quantises the values to zeros. A NaN among the values is
/// skipped by `max` and quantises to 0 (where the f32 product would give NaN).
#[inline(always)]
fn row_scale(values: &[f32]) -> (f32, f32) {
    let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let inverse = INT8_MAX / amax;
    if inverse.is_finite() {
        (inverse, amax / INT8_MAX)
    } else {
        (0.0, 0.0)
    }
}

/// `round(v · inverse)`, ties to even (CTranslate2's `nearbyint`), clamped to ±127.
#[inline(always)]
fn quantize_value(v: f32, inverse: f32) -> i8 {
    (v * inverse).round_ties_even().clamp(-INT8_MAX, INT8_MAX) as i8
}

/// Input rows quantised per block of [`ACTIVATION_GROUP`]: `k_padded` signed values a row
/// (padding zero), and per row and block its scale and its correction `-128 · Σ q`.
struct QuantizedRows {
    data: Vec<i8>,
    scales: Vec<f32>,
    corrections: Vec<i32>,
    k_padded: usize,
    blocks: usize,
}

multiversion! {
    /// One input row: its values written into `out` (padding zero), and each block's scale and
    /// correction.
    fn quantize_row(x: &[f32], out: &mut [i8], scales: &mut [f32], corrections: &mut [i32]) {
        for (((xs, qs), scale), correction) in
            x.chunks(ACTIVATION_GROUP).zip(out.chunks_mut(ACTIVATION_GROUP)).zip(scales.iter_mut()).zip(corrections.iter_mut())
        {
            let (inverse, s) = row_scale(xs);
            let mut sum = 0i32;
            for (q, &v) in qs.iter_mut().zip(xs) {
                *q = quantize_value(v, inverse);
                sum += *q as i32;
            }
            *scale = s;
            *correction = -WEIGHT_OFFSET * sum;
        }
        out[x.len()..].fill(0);
    }
}

/// One input row, where its values go, and its blocks' scales and corrections.
type RowParts<'a> = (((&'a [f32], &'a mut [i8]), &'a mut [f32]), &'a mut [i32]);

fn quantize_rows(level: SimdLevel, x: &[f32], m: usize, k: usize, k_padded: usize) -> QuantizedRows {
    let blocks = k_padded.div_ceil(ACTIVATION_GROUP).max(1);
    let mut data = vec![0i8; m * k_padded];
    let mut scales = vec![0.0f32; m * blocks];
    let mut corrections = vec![0i32; m * blocks];
    let one = |(((row, out), scale), correction): RowParts<'_>| quantize_row(level, row, out, scale, correction);
    let rows = x.chunks_exact(k.max(1)).take(m);
    let k_padded_or_1 = k_padded.max(1);
    if m * k >= PARALLEL_MIN_MACS {
        let rows: Vec<&[f32]> = rows.collect();
        rows.into_par_iter()
            .zip(data.par_chunks_mut(k_padded_or_1))
            .zip(scales.par_chunks_mut(blocks))
            .zip(corrections.par_chunks_mut(blocks))
            .for_each(one);
    } else {
        rows.zip(data.chunks_mut(k_padded_or_1))
            .zip(scales.chunks_mut(blocks))
            .zip(corrections.chunks_mut(blocks))
            .for_each(one);
    }
    QuantizedRows { data, scales, corrections, k_padded, blocks }
}

/// One tile's operands: `rows` input rows (`a_rs` apart, their blocks' scales and corrections
/// `blocks` apart) against one panel of `quads` groups of four k.
#[derive(Clone, Copy)]
struct Tile<'a> {
    a: &'a [i8],
    a_rs: usize,
    scales: &'a [f32],
    corrections: &'a [i32],
    blocks: usize,
    rows: usize,
    panel: &'a [u8],
    quads: usize,
}

/// f32 sums of one tile: `TILE_ROWS` rows × one panel (`Σ_blocks scale · block sum`).
type TileSums = [[f32; PANEL_COLS]; TILE_ROWS];

/// The reference kernel: for each row and column, each block's i32 sum starts at the block's
/// correction, adds `Σ (q_w + 128) · q_x` over the block, and is added to the f32 sum as
/// `fma(sum as f32, block scale, f32 sum)`.
fn tile_portable(t: Tile<'_>, sums: &mut TileSums) {
    for (r, out) in sums.iter_mut().enumerate().take(t.rows) {
        out.fill(0.0);
        let row = &t.a[r * t.a_rs..r * t.a_rs + t.quads * K_GROUP];
        for (b, quads) in row.chunks(ACTIVATION_GROUP).enumerate() {
            let (scale, correction) = (t.scales[r * t.blocks + b], t.corrections[r * t.blocks + b]);
            let mut block = [correction; PANEL_COLS];
            for (g, quad) in quads.chunks_exact(K_GROUP).enumerate() {
                let q = b * QUADS_PER_BLOCK + g;
                let w = &t.panel[q * PANEL_COLS * K_GROUP..(q + 1) * PANEL_COLS * K_GROUP];
                for (c, wc) in w.chunks_exact(K_GROUP).enumerate() {
                    block[c] += (0..K_GROUP).map(|j| wc[j] as i32 * quad[j] as i32).sum::<i32>();
                }
            }
            for (o, &s) in out.iter_mut().zip(&block) {
                *o = (s as f32).mul_add(scale, *o);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{Tile, TileSums, K_GROUP, PANEL_COLS, QUADS_PER_BLOCK, TILE_ROWS};

    /// [`super::tile_portable`] for `R` rows on `vpdpbusd`: per row two registers of 16 block
    /// sums and two of f32 sums, four k a step.
    ///
    /// # Safety
    /// The CPU must have AVX-512F/BW/VNNI; `t` must hold `R` rows of `quads · 4` values and their
    /// blocks' scales and corrections, and its panel `quads` groups (checked by the caller).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::needless_range_loop)]
    unsafe fn tile<const R: usize>(t: Tile<'_>, sums: &mut TileSums) {
        let mut f_lo = [_mm512_setzero_ps(); R];
        let mut f_hi = [_mm512_setzero_ps(); R];
        let (a, w) = (t.a.as_ptr(), t.panel.as_ptr());
        let mut block = 0;
        let mut q0 = 0;
        while q0 < t.quads {
            let q1 = (q0 + QUADS_PER_BLOCK).min(t.quads);
            let mut lo = [_mm512_setzero_si512(); R];
            let mut hi = [_mm512_setzero_si512(); R];
            for r in 0..R {
                lo[r] = _mm512_set1_epi32(*t.corrections.get_unchecked(r * t.blocks + block));
                hi[r] = lo[r];
            }
            for q in q0..q1 {
                let wq = w.add(q * PANEL_COLS * K_GROUP);
                let w_lo = _mm512_loadu_si512(wq as *const __m512i);
                let w_hi = _mm512_loadu_si512(wq.add(PANEL_COLS * K_GROUP / 2) as *const __m512i);
                for r in 0..R {
                    let x = _mm512_set1_epi32((a.add(r * t.a_rs + q * K_GROUP) as *const i32).read_unaligned());
                    lo[r] = _mm512_dpbusd_epi32(lo[r], w_lo, x);
                    hi[r] = _mm512_dpbusd_epi32(hi[r], w_hi, x);
                }
            }
            for r in 0..R {
                let scale = _mm512_set1_ps(*t.scales.get_unchecked(r * t.blocks + block));
                f_lo[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo[r]), scale, f_lo[r]);
                f_hi[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi[r]), scale, f_hi[r]);
            }
            q0 = q1;
            block += 1;
        }
        for r in 0..R {
            _mm512_storeu_ps(sums[r].as_mut_ptr(), f_lo[r]);
            _mm512_storeu_ps(sums[r][PANEL_COLS / 2..].as_mut_ptr(), f_hi[r]);
        }
    }

    /// Dispatch `t.rows` (1..=TILE_ROWS) to its constant.
    ///
    /// # Safety
    /// As [`tile`], with `R = t.rows`.
    pub unsafe fn tile_rows(t: Tile<'_>, sums: &mut TileSums) {
        debug_assert!(t.rows <= TILE_ROWS);
        // The row counts listed are those of 1..=TILE_ROWS.
        const _: () = assert!(TILE_ROWS == 6);
        crate::backend::cpu::simd::for_rows!(t.rows, [1 2 3 4 5 6], tile(t, sums))
    }
}

/// Which kernel sums the tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Kernel {
    Portable,
    Vnni,
}

impl Int8Kernel {
    /// VNNI where the CPU has it and `level` allows AVX-512.
    pub fn for_level(level: SimdLevel) -> Self {
        if level >= SimdLevel::Avx512 && vnni_available() {
            Int8Kernel::Vnni
        } else {
            Int8Kernel::Portable
        }
    }
}

/// `out[m, n] += x[m, k] · wᵀ` with `w` quantised (see the module): `out` holds the bias or zeros.
pub fn linear_int8(level: SimdLevel, kernel: Int8Kernel, m: usize, x: &[f32], w: &Int8Matrix, out: &mut [f32]) {
    let (n, k) = (w.n, w.k);
    assert_eq!(x.len(), m * k, "linear_int8: {} input values for [{m}, {k}]", x.len());
    assert_eq!(out.len(), m * n, "linear_int8: {} output values for [{m}, {n}]", out.len());
    if m == 0 || n == 0 {
        return;
    }
    let a = quantize_rows(level, x, m, k, w.k_padded);
    let row_tasks = m.div_ceil(TASK_ROWS);
    let col_tasks = n.div_ceil(TASK_COLS);
    let shared = SharedOut::new(out);
    let task = |t: usize| {
        let (rt, ct) = (t / col_tasks, t % col_tasks);
        let rows = rt * TASK_ROWS..((rt + 1) * TASK_ROWS).min(m);
        let cols = ct * TASK_COLS..((ct + 1) * TASK_COLS).min(n);
        // SAFETY: task t alone writes rows × cols.
        unsafe { run_task(kernel, &a, w, rows, cols, n, &shared) }
    };
    if m * n * k >= PARALLEL_MIN_MACS && row_tasks * col_tasks > 1 {
        (0..row_tasks * col_tasks).into_par_iter().for_each(task);
    } else {
        (0..row_tasks * col_tasks).for_each(task);
    }
}

/// One task's rectangle, panel by panel, tile by tile.
///
/// # Safety
/// No other task may write `rows × cols` of `out`.
unsafe fn run_task(
    kernel: Int8Kernel,
    a: &QuantizedRows,
    w: &Int8Matrix,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    n: usize,
    out: &SharedOut<'_>,
) {
    let quads = a.k_padded / K_GROUP;
    let mut sums: TileSums = [[0.0; PANEL_COLS]; TILE_ROWS];
    for p in cols.start / PANEL_COLS..cols.end.div_ceil(PANEL_COLS) {
        let panel = w.panel(p);
        let c0 = p * PANEL_COLS;
        let width = PANEL_COLS.min(cols.end - c0);
        for r0 in rows.clone().step_by(TILE_ROWS) {
            let tile_rows = TILE_ROWS.min(rows.end - r0);
            let tile = Tile {
                a: &a.data[r0 * a.k_padded..(r0 + tile_rows) * a.k_padded],
                a_rs: a.k_padded,
                scales: &a.scales[r0 * a.blocks..(r0 + tile_rows) * a.blocks],
                corrections: &a.corrections[r0 * a.blocks..(r0 + tile_rows) * a.blocks],
                blocks: a.blocks,
                rows: tile_rows,
                panel,
                quads,
            };
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Vnni` is only chosen on a CPU with VNNI; the tile's slices hold
                // `tile_rows` rows of `quads · 4` values and their blocks, the panel `quads`
                // groups (sliced above: the slicing panics rather than read out of bounds).
                Int8Kernel::Vnni => vnni::tile_rows(tile, &mut sums),
                _ => tile_portable(tile, &mut sums),
            }
            for (r, sum_row) in sums.iter().enumerate().take(tile_rows) {
                // SAFETY: inside this task's rectangle.
                let dst = out.segment((r0 + r) * n + c0, width);
                for ((d, &s), &ws) in dst.iter_mut().zip(&sum_row[..width]).zip(&w.scales[c0..c0 + width]) {
                    *d += s * ws;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..count)
            .map(|_| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                (s >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn quantisation_is_symmetric_per_output_channel() {
        let w = [0.5, -1.0, 0.25, 0.0, 2.0, 0.0, -0.5, 1.0];
        let q = Int8Matrix::quantize(&w, 2, 4);
        assert_eq!(q.scales, [1.0 / INT8_MAX, 2.0 / INT8_MAX]);
        // 0.5 · 127 = 63.5 rounds to even (64); -1.0 is the row's extreme.
        assert_eq!((0..4).map(|c| q.q(0, c)).collect::<Vec<_>>(), [64, -127, 32, 0]);
        assert_eq!((0..4).map(|c| q.q(1, c)).collect::<Vec<_>>(), [127, 0, -32, 64]);
    }

    #[test]
    fn each_block_of_an_input_row_has_its_own_scale() {
        // An outlier in the first block leaves the second block's precision alone.
        let mut x = vec![0.01f32; 2 * ACTIVATION_GROUP];
        x[0] = 100.0;
        let mut out = vec![0i8; x.len()];
        let (mut scales, mut corrections) = ([0.0f32; 2], [0i32; 2]);
        quantize_row(SimdLevel::Portable, &x, &mut out, &mut scales, &mut corrections);
        assert_eq!(scales, [100.0 / INT8_MAX, 0.01 / INT8_MAX]);
        assert_eq!((out[0], out[1], out[ACTIVATION_GROUP]), (127, 0, 127));
        let sums: Vec<i32> = out.chunks(ACTIVATION_GROUP).map(|b| b.iter().map(|&q| q as i32).sum()).collect();
        assert_eq!(corrections, [-128 * sums[0], -128 * sums[1]]);
    }

    #[test]
    fn a_zero_row_quantises_to_zeros() {
        let q = Int8Matrix::quantize(&[0.0; 6], 2, 3);
        assert_eq!(q.dequantized_rows(0..2), vec![0.0; 6]);
        let mut out = vec![1.5f32; 2];
        linear_int8(SimdLevel::Portable, Int8Kernel::Portable, 1, &[0.0, 0.0, 0.0], &q, &mut out);
        assert_eq!(out, [1.5, 1.5]);
    }

    #[test]
    fn vnni_equals_the_portable_kernel_bit_for_bit() {
        if !vnni_available() {
            // The machines CI runs on have VNNI: there, a CPU without it is a failure, not a skip.
            assert!(std::env::var_os("CI").is_none(), "no AVX-512 VNNI on this CPU: the VNNI kernel cannot run");
            eprintln!("no AVX-512 VNNI on this CPU: the VNNI kernel cannot run here");
            return;
        }
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 33, 5),
            (8, 32, 4),
            (9, 65, 131),
            (70, 300, 384),
            (5, 1000, 64),
            (13, 40, 1536),
            (7, 7, 67),
        ] {
            let (x, w) = (values(m * k, 7), values(n * k, 11));
            let q = Int8Matrix::quantize(&w, n, k);
            let mut portable = values(m * n, 3);
            let mut vnni = portable.clone();
            linear_int8(SimdLevel::Portable, Int8Kernel::Portable, m, &x, &q, &mut portable);
            linear_int8(SimdLevel::Avx512, Int8Kernel::Vnni, m, &x, &q, &mut vnni);
            assert_eq!(portable, vnni, "{m}x{n}x{k}");
        }
    }
}
