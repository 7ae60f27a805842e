//! bfloat16 products for `nn.Linear`, the LSTMs' recurrences (`segmentation_compute_type`
//! bfloat16) and convolutions (`conv_bf16`): the weight is rounded to bf16 once, each input row when it is multiplied, and the
//! products are summed in f32, as PyTorch's CPU autocast to bfloat16 does for its GEMMs.
//!
//! On CPUs with AVX-512 BF16 the sums run on `vdpbf16ps`, which multiplies two pairs of bf16 a
//! lane and adds both products to an f32 lane: twice the multiply-adds of an f32 FMA per
//! instruction. The weight `w[n, k]` is stored as `wᵀ` in panels of [`PANEL`] output columns,
//! each `k / 2` rows of 48 pairs (`panels[p][k / 2][column]`, the pair's even k in the low half),
//! so one register holds 16 columns × 2 k; an input row's consecutive bf16 values are the pairs
//! it broadcasts. A register tile of [`TILE_ROWS`] rows × one panel keeps its 24 accumulators
//! in registers for the whole of k, as the f32 GEMM (`gemm_avx512`) does.
//!
//! Elsewhere a portable loop computes the same products in f32 (the reference of the kernel's
//! test). The hardware adds the two products of a lane one after the other with denormals
//! flushed, in its own order, so the two agree to f32 rounding, not bit for bit.

use rayon::prelude::*;

use super::gemm::worth_threads;
#[cfg(target_arch = "x86_64")]
use super::shared_out::SharedOut;
use super::simd::multiversion;
use super::SimdLevel;

/// Output columns of one panel: three registers of 16 pairs.
pub const PANEL: usize = 48;
/// Rows of one register tile (8 × 3 = 24 accumulators).
pub const TILE_ROWS: usize = 8;
/// Rows swept against one panel before the next (their bf16 values stay in L1/L2).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const ROW_BLOCK: usize = 64;

/// Whether this CPU has `vdpbf16ps` on 512-bit registers.
pub fn bf16_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether products run on the `vdpbf16ps` kernel at `level` on this CPU.
pub fn kernel_available(level: SimdLevel) -> bool {
    level >= SimdLevel::Avx512 && bf16_available()
}

/// `v` rounded to bfloat16 (to nearest, ties to even), as `vcvtne2ps2bf16` rounds: NaN stays a
/// (quiet) NaN and subnormal inputs become zeros of their sign.
#[inline(always)]
pub fn to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    let nan = bits & 0x7fff_ffff > 0x7f80_0000;
    let subnormal = bits & 0x7f80_0000 == 0;
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16;
    let out = if nan {
        (bits >> 16) | 0x0040
    } else if subnormal {
        (bits >> 16) & 0x8000
    } else {
        rounded
    };
    out as u16
}

/// The f32 of a bf16 value (exact).
#[inline(always)]
pub fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// A `[n, k]` weight in bf16, packed for the kernel: panels of [`PANEL`] output channels, in
/// each the channels' values for two consecutive k (`panels[panel][k / 2][column]`, even k in
/// the low 16 bits), k padded to even and the last panel's missing channels filled with zeros.
pub struct Bf16Matrix {
    n: usize,
    k: usize,
    pairs: usize,
    panels: Vec<u32>,
    /// The same values as rows of pairs (`[n, pairs]`, [`rows_to_pairs`]'s layout), built the
    /// first time a convolution uses the weight as the broadcast operand.
    row_pairs: std::sync::OnceLock<Vec<u32>>,
}

impl Bf16Matrix {
    /// Round a row-major `[n, k]` weight.
    pub fn from_f32(level: SimdLevel, w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "Bf16Matrix::from_f32: {} values for [{n}, {k}]", w.len());
        Self::from_rows(level, w, k, n, k)
    }

    /// The packed form of the `[n, k]` matrix whose rows are stored `ld` apart in `src`
    /// (`w[j, kk] = src[j·ld + kk]`: one head's keys in a `[T, H·Dh]` tensor). Each row is
    /// rounded into pairs at once ([`rows_into_pairs`]), then spread over its panel.
    pub fn from_rows(level: SimdLevel, src: &[f32], ld: usize, n: usize, k: usize) -> Self {
        assert!(
            k == 0 || n == 0 || src.len() >= (n - 1) * ld + k,
            "Bf16Matrix::from_rows: {} values for {n} rows of {k}, {ld} apart",
            src.len()
        );
        let pairs = k.div_ceil(2);
        let mut panels = vec![0u32; n.div_ceil(PANEL) * PANEL * pairs];
        let mut row_pairs = vec![0u32; pairs];
        for row in 0..n {
            rows_into_pairs(level, &src[row * ld..row * ld + k], k, &mut row_pairs);
            let first = Self::index(pairs, row, 0);
            for (pair, &v) in row_pairs.iter().enumerate() {
                panels[first + pair * PANEL] = v;
            }
        }
        Bf16Matrix { n, k, pairs, panels, row_pairs: Default::default() }
    }

    /// The packed form of the `[n, k]` matrix whose transpose `src[k, n]` is stored row-major
    /// with rows `ld` apart (a convolution's im2col columns, or a 1×1 conv's input channels):
    /// `w[j, kk] = src[kk·ld + j]`. Each panel row reads two source rows in order.
    pub fn from_columns(level: SimdLevel, src: &[f32], ld: usize, k: usize, n: usize) -> Self {
        assert!(
            k == 0 || n == 0 || src.len() >= (k - 1) * ld + n,
            "Bf16Matrix::from_columns: {} values for {k} rows of {n}, {ld} apart",
            src.len()
        );
        let pairs = k.div_ceil(2);
        let mut panels = vec![0u32; n.div_ceil(PANEL) * PANEL * pairs];
        for p in 0..n.div_ceil(PANEL) {
            let (col, width) = (p * PANEL, PANEL.min(n - p * PANEL));
            for pair in 0..pairs {
                let dst = &mut panels[Self::index(pairs, col, pair)..][..width];
                let even = &src[2 * pair * ld + col..][..width];
                if 2 * pair + 1 < k {
                    round_two_rows(level, even, &src[(2 * pair + 1) * ld + col..][..width], dst);
                } else {
                    for (d, &v) in dst.iter_mut().zip(even) {
                        *d = to_bf16(v) as u32;
                    }
                }
            }
        }
        Bf16Matrix { n, k, pairs, panels, row_pairs: Default::default() }
    }

    /// The values as `[n, k.div_ceil(2)]` rows of pairs ([`rows_to_pairs`]'s layout: the
    /// operand [`gemm`] broadcasts), built once.
    pub fn row_pairs(&self) -> &[u32] {
        self.row_pairs.get_or_init(|| {
            let mut out = vec![0u32; self.n * self.pairs];
            for (row, dst) in out.chunks_exact_mut(self.pairs.max(1)).enumerate().take(self.n) {
                for (pair, d) in dst.iter_mut().enumerate() {
                    *d = self.panels[Self::index(self.pairs, row, pair)];
                }
            }
            out
        })
    }

    /// Pairs a row holds (`k` rounded up to even, halved).
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn cols(&self) -> usize {
        self.k
    }

    /// Where the pair `w[row, 2·pair..2·pair + 2]` is packed.
    fn index(pairs: usize, row: usize, pair: usize) -> usize {
        (row / PANEL) * PANEL * pairs + pair * PANEL + row % PANEL
    }

    /// `w[row, col]` as the products use it.
    fn value(&self, row: usize, col: usize) -> f32 {
        from_bf16((self.panels[Self::index(self.pairs, row, col / 2)] >> (16 * (col % 2))) as u16)
    }

    /// Rows `rows` as f32 (the values the products use).
    pub fn dequantized_rows(&self, rows: std::ops::Range<usize>) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * self.k);
        for r in rows {
            out.extend((0..self.k).map(|c| self.value(r, c)));
        }
        out
    }

    /// Panel `p`: `pairs` rows of [`PANEL`] pairs.
    fn panel(&self, p: usize) -> &[u32] {
        &self.panels[p * PANEL * self.pairs..(p + 1) * PANEL * self.pairs]
    }
}

/// Row-major `x[m, k]` rounded to bf16, each row padded to whole pairs: `[m, k.div_ceil(2)]`
/// pairs, the even k in the low 16 bits (the operand [`gemm`] broadcasts).
pub fn rows_to_pairs(level: SimdLevel, x: &[f32], m: usize, k: usize) -> Vec<u32> {
    let pairs = k.div_ceil(2);
    let mut out = vec![0u32; m * pairs];
    rows_into_pairs(level, x, k, &mut out);
    out
}

/// [`rows_to_pairs`] into `out` (`x.len() / k` rows of `k.div_ceil(2)` pairs).
pub fn rows_into_pairs(level: SimdLevel, x: &[f32], k: usize, out: &mut [u32]) {
    let pairs = k.div_ceil(2);
    if k == 0 {
        return;
    }
    assert!(
        x.len().is_multiple_of(k) && out.len() >= x.len() / k * pairs,
        "rows_into_pairs: {} values, {k} a row",
        x.len()
    );
    for (row, dst) in x.chunks_exact(k).zip(out.chunks_exact_mut(pairs)) {
        round_pairs(level, &row[..k & !1], &mut dst[..k / 2]);
        if k % 2 == 1 {
            dst[pairs - 1] = to_bf16(row[k - 1]) as u32;
        }
    }
}

multiversion! {
    /// `pairs[i] = bf16(even[i]) | bf16(odd[i]) << 16` (vectorised).
    pub(crate) fn round_two_rows(even: &[f32], odd: &[f32], pairs: &mut [u32]) {
        for (p, (&a, &b)) in pairs.iter_mut().zip(even.iter().zip(odd)) {
            *p = to_bf16(a) as u32 | (to_bf16(b) as u32) << 16;
        }
    }
}

multiversion! {
    /// `pairs[i] = bf16(x[2i]) | bf16(x[2i + 1]) << 16` (vectorised).
    fn round_pairs(x: &[f32], pairs: &mut [u32]) {
        for (p, two) in pairs.iter_mut().zip(x.chunks_exact(2)) {
            *p = to_bf16(two[0]) as u32 | (to_bf16(two[1]) as u32) << 16;
        }
    }
}

/// `c[m, n] = (accumulate ? c : 0) + bias + a · wᵀ` with `a` the bf16 pairs of `m` rows
/// ([`rows_to_pairs`]), `bias` `[n]` (or none) and `c` row-major `[m, n]`; split among the
/// threads when `parallel` and the product is large enough (the f32 GEMMs' rule,
/// [`worth_threads`]). Runs on `vdpbf16ps` where
/// [`kernel_available`], else on the portable loop.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    level: SimdLevel,
    m: usize,
    a: &[u32],
    w: &Bf16Matrix,
    c: &mut [f32],
    bias: Option<&[f32]>,
    accumulate: bool,
    parallel: bool,
) {
    check_operands(m, a, w, bias);
    let n = w.n;
    assert!(c.len() >= m * n, "bf16 gemm: C holds {} values, [{m}, {n}] needs {}", c.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if kernel_available(level) {
        // SAFETY: AVX-512 BF16 was detected; `c` holds the `m · n` values the rows address.
        unsafe { rows_in_tasks(m, a, w, &SharedOut::new(&mut c[..m * n]), bias, accumulate, parallel) };
        return;
    }
    let pairs = w.pairs;
    let run = |first: usize, c_rows: &mut [f32]| {
        let rows = c_rows.len() / n;
        portable_rows(rows, &a[first * pairs..(first + rows) * pairs], w, c_rows, bias, accumulate)
    };
    match row_tasks(m, n, w.k, parallel) {
        Some(per_task) => {
            c[..m * n].par_chunks_mut(per_task * n).enumerate().for_each(|(t, c_rows)| run(t * per_task, c_rows))
        }
        None => run(0, &mut c[..m * n]),
    }
}

/// [`gemm`] into a new `[m, n]` output, `c = bias + a · wᵀ`. Where the `vdpbf16ps` kernel runs,
/// its stores are the output's only writes: no fill with zeros first, which ran on one thread
/// before the product (the encoder's and the LSTMs' input projections write 5–64 MB a call;
/// about 2 % of a batched run's CPU samples, the other core idle meanwhile).
pub fn gemm_new(
    level: SimdLevel,
    m: usize,
    a: &[u32],
    w: &Bf16Matrix,
    bias: Option<&[f32]>,
    parallel: bool,
) -> Vec<f32> {
    check_operands(m, a, w, bias);
    let len = m * w.n;
    #[cfg(target_arch = "x86_64")]
    if kernel_available(level) && len > 0 {
        // SAFETY: AVX-512 BF16 was detected; the output holds the `m · n` values the rows
        // address, and without `accumulate` the kernel only writes them: each row's tiles store,
        // under their panels' masks, all `n` columns (`avx512::gemm_rows`).
        return unsafe {
            super::written(len, |out| rows_in_tasks(m, a, w, &SharedOut::uninit(out), bias, false, parallel))
        };
    }
    let mut c = vec![0.0f32; len];
    gemm(level, m, a, w, &mut c, bias, false, parallel);
    c
}

fn check_operands(m: usize, a: &[u32], w: &Bf16Matrix, bias: Option<&[f32]>) {
    let (n, pairs) = (w.n, w.pairs);
    assert!(a.len() >= m * pairs, "bf16 gemm: A holds {} pairs, {m} rows need {}", a.len(), m * pairs);
    assert!(
        bias.is_none_or(|b| b.len() == n),
        "bf16 gemm: a bias of {} values for {n} columns",
        bias.map_or(0, |b| b.len())
    );
}

/// Rows per task where a product of `m` rows is split among the threads (None: one task).
fn row_tasks(m: usize, n: usize, k: usize, parallel: bool) -> Option<usize> {
    let threads = rayon::current_num_threads();
    let row_tiles = m.div_ceil(TILE_ROWS);
    (threads > 1 && row_tiles > 1 && worth_threads(parallel, m, n, k)).then(|| row_tiles.div_ceil(threads) * TILE_ROWS)
}

/// The `vdpbf16ps` kernel over `m` rows, in tasks of whole rows where [`row_tasks`] splits them.
///
/// # Safety
/// AVX-512F and BF16; `c` holds `m · w.n` values (initialised where `accumulate`), which no one
/// else accesses meanwhile; the operands passed [`check_operands`].
#[cfg(target_arch = "x86_64")]
unsafe fn rows_in_tasks(
    m: usize,
    a: &[u32],
    w: &Bf16Matrix,
    c: &SharedOut<'_>,
    bias: Option<&[f32]>,
    accumulate: bool,
    parallel: bool,
) {
    let (n, pairs) = (w.n, w.pairs);
    // SAFETY (each call): rows `first..end` of `a` and of `c` lie inside them (`pointer`
    // checks it for `c`), and tasks address disjoint rows.
    let run = |first: usize, end: usize| unsafe {
        let rows = c.pointer(first * n, (end - first) * n);
        avx512::gemm_rows(end - first, &a[first * pairs..end * pairs], w, rows, bias, accumulate)
    };
    match row_tasks(m, n, w.k, parallel) {
        Some(per_task) => (0..m.div_ceil(per_task)).into_par_iter().for_each(|t| {
            let first = t * per_task;
            run(first, (first + per_task).min(m))
        }),
        None => run(0, m),
    }
}

/// The products in f32, in order of k: the reference of the `vdpbf16ps` kernel.
fn portable_rows(m: usize, a: &[u32], w: &Bf16Matrix, c: &mut [f32], bias: Option<&[f32]>, accumulate: bool) {
    let (n, pairs) = (w.n, w.pairs);
    for (r, c_row) in c.chunks_exact_mut(n).take(m).enumerate() {
        let a_row = &a[r * pairs..(r + 1) * pairs];
        for (col, out) in c_row.iter_mut().enumerate() {
            let panel = w.panel(col / PANEL);
            let mut sum = if accumulate { *out } else { 0.0 } + bias.map_or(0.0, |b| b[col]);
            for (p, &x) in a_row.iter().enumerate() {
                let y = panel[p * PANEL + col % PANEL];
                sum += from_bf16(x as u16) * from_bf16(y as u16)
                    + from_bf16((x >> 16) as u16) * from_bf16((y >> 16) as u16);
            }
            *out = sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Bf16Matrix, PANEL, ROW_BLOCK, TILE_ROWS};

    /// Every row of `c[m, w.n]` against every panel. Without `accumulate` every value of `c` is
    /// written (each row's tiles store all `w.n` columns under their panels' masks) and none is
    /// read, so `c` may start uninitialised ([`super::gemm_new`]).
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 BF16; `a` holds `m` rows of `w.pairs` pairs and `c`
    /// addresses `m` rows of `w.n` values (initialised where `accumulate`), `bias` (if any)
    /// `w.n` values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn gemm_rows(m: usize, a: &[u32], w: &Bf16Matrix, c: *mut f32, bias: Option<&[f32]>, accumulate: bool) {
        let (n, pairs) = (w.n, w.pairs);
        assert!(a.len() >= m * pairs, "bf16 gemm: operand sizes");
        assert!(bias.is_none_or(|b| b.len() == n), "bf16 gemm: bias size");
        for r_block in (0..m).step_by(ROW_BLOCK) {
            let r_end = (r_block + ROW_BLOCK).min(m);
            for p in 0..n.div_ceil(PANEL) {
                let panel = w.panel(p);
                let (col, width) = (p * PANEL, PANEL.min(n - p * PANEL));
                let masks = [mask(width, 0), mask(width, 1), mask(width, 2)];
                // The panel's bias (zero beyond its valid columns, which are not addressed).
                let mut init = [_mm512_setzero_ps(); 3];
                if let Some(b) = bias {
                    for v in 0..3 {
                        if masks[v] != 0 {
                            init[v] = _mm512_maskz_loadu_ps(masks[v], b.as_ptr().add(col + 16 * v));
                        }
                    }
                }
                // A panel narrower than 33 columns (the last one: attention's `P·V` of 64 columns
                // is a panel of 48 and one of 16) multiplies only its registers that hold columns.
                let vectors = width.div_ceil(16);
                for r0 in (r_block..r_end).step_by(TILE_ROWS) {
                    let (ap, cp) = (a.as_ptr().add(r0 * pairs), c.add(r0 * n + col));
                    let pp = panel.as_ptr();
                    macro_rules! rows {
                        ($v:literal) => {{
                            let (m, i) = (first::<$v, _>(masks), first::<$v, _>(init));
                            match (r_end - r0).min(TILE_ROWS) {
                                1 => tile::<1, $v>(ap, pairs, pp, cp, n, m, i, accumulate),
                                2 => tile::<2, $v>(ap, pairs, pp, cp, n, m, i, accumulate),
                                3 => tile::<3, $v>(ap, pairs, pp, cp, n, m, i, accumulate),
                                4 => tile::<4, $v>(ap, pairs, pp, cp, n, m, i, accumulate),
                                5 => tile::<5, $v>(ap, pairs, pp, cp, n, m, i, accumulate),
                                6 => tile::<6, $v>(ap, pairs, pp, cp, n, m, i, accumulate),
                                7 => tile::<7, $v>(ap, pairs, pp, cp, n, m, i, accumulate),
                                _ => tile::<8, $v>(ap, pairs, pp, cp, n, m, i, accumulate),
                            }
                        }};
                    }
                    match vectors {
                        1 => rows!(1),
                        2 => rows!(2),
                        _ => rows!(3),
                    }
                }
            }
        }
    }

    /// The first `V` of a panel's three registers' values.
    #[inline(always)]
    fn first<const V: usize, T: Copy>(all: [T; 3]) -> [T; V] {
        std::array::from_fn(|v| all[v])
    }

    /// Lanes of vector `v` (of three) inside a panel `width` columns wide.
    fn mask(width: usize, v: usize) -> __mmask16 {
        let lanes = width.saturating_sub(16 * v).min(16);
        ((1u32 << lanes) - 1) as __mmask16
    }

    /// `R` rows × the first `V` registers of one panel: `c[r, ..] = (accumulate ? c[r, ..] : 0) +
    /// init + Σ_p a[r, p] · panel[p, ..]` over the pairs, each row's registers stored under
    /// `masks` (the panel's valid columns; the registers past `V` hold none).
    ///
    /// # Safety
    /// AVX-512F and BF16; `a` holds `R` rows of `pairs` pairs `pairs` apart, `panel` `pairs` × 48
    /// pairs, `c` `R` rows `ldc` apart with the columns the masks select.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const V: usize>(
        a: *const u32,
        pairs: usize,
        panel: *const u32,
        c: *mut f32,
        ldc: usize,
        masks: [__mmask16; V],
        init: [__m512; V],
        accumulate: bool,
    ) {
        let mut acc = [init; R];
        // Vectors wholly past the panel's valid columns (mask 0) are not even addressed: their
        // pointer could lie beyond the end of C.
        if accumulate {
            for r in 0..R {
                for v in 0..V {
                    if masks[v] != 0 {
                        acc[r][v] = _mm512_add_ps(acc[r][v], _mm512_maskz_loadu_ps(masks[v], c.add(r * ldc + 16 * v)));
                    }
                }
            }
        }
        for p in 0..pairs {
            let b = panel.add(p * PANEL) as *const __m512i;
            let bv: [__m512bh; V] =
                std::array::from_fn(|v| std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(b.add(v))));
            for r in 0..R {
                let x = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*a.add(r * pairs + p) as i32));
                for v in 0..V {
                    acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x, bv[v]);
                }
            }
        }
        for r in 0..R {
            for v in 0..V {
                if masks[v] != 0 {
                    _mm512_mask_storeu_ps(c.add(r * ldc + 16 * v), masks[v], acc[r][v]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    #[test]
    fn rounding_is_to_nearest_even_with_nan_and_subnormals_as_the_hardware() {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        assert_eq!(from_bf16(to_bf16(1.0 + 2f32.powi(-8))), 1.0);
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 * 2f32.powi(-8))), 1.0 + 2f32.powi(-6));
        assert_eq!(from_bf16(to_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-20))), 1.0 + 2f32.powi(-7));
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY);
        assert_eq!(to_bf16(-1e-40), 0x8000);
        assert_eq!(to_bf16(1e-40), 0);
    }

    /// [`to_bf16`] rounds as the CPU's own conversion (`vcvtne2ps2bf16`), where it has one.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn rounding_is_the_hardware_conversion() {
        if !bf16_available() {
            assert!(std::env::var_os("CI").is_none(), "CI's CPUs have AVX-512 BF16; this one does not");
            return;
        }
        #[target_feature(enable = "avx512f,avx512bf16")]
        unsafe fn hardware(v: &[f32; 32]) -> [u16; 32] {
            use std::arch::x86_64::*;
            let lo = _mm512_loadu_ps(v.as_ptr());
            let hi = _mm512_loadu_ps(v.as_ptr().add(16));
            std::mem::transmute::<__m512bh, [u16; 32]>(_mm512_cvtne2ps_pbh(hi, lo))
        }
        let mut r = rng(3);
        let edges =
            [0.0, -0.0, 1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8), f32::MAX, f32::MIN_POSITIVE, 1e-40, -1e-40];
        let mut values: Vec<f32> = edges.to_vec();
        values.extend([f32::INFINITY, f32::NEG_INFINITY, -3.0e38, 65504.0]);
        values.extend((0..32 * 64).map(|i| r() * 10f32.powi(i % 12 - 6)));
        values.extend((0..32 * 8).map(|i| f32::from_bits(0x3f80_0000 + 0x8000 * (i % 2) + 0x10000 * (i / 2))));
        for chunk in values.chunks(32) {
            let mut v = [0.0f32; 32];
            v[..chunk.len()].copy_from_slice(chunk);
            // SAFETY: AVX-512 BF16 was detected.
            let got = unsafe { hardware(&v) };
            for (i, (&x, &h)) in v.iter().zip(&got).enumerate() {
                assert_eq!(to_bf16(x), h, "{x:e} ({:#x}) [{i}]", x.to_bits());
            }
        }
    }

    #[test]
    fn pairs_of_rows_hold_each_rounded_value_in_order() {
        let mut r = rng(1);
        for k in [1usize, 2, 7, 60, 64, 129] {
            let x: Vec<f32> = (0..3 * k).map(|_| r() * 10.0).collect();
            for level in [SimdLevel::Portable, SimdLevel::detect()] {
                let pairs = rows_to_pairs(level, &x, 3, k);
                let half = k.div_ceil(2);
                for row in 0..3 {
                    for kk in 0..2 * half {
                        let bits = (pairs[row * half + kk / 2] >> (16 * (kk % 2))) as u16;
                        let want = if kk < k { to_bf16(x[row * k + kk]) } else { 0 };
                        assert_eq!(bits, want, "{level:?} k {k} row {row} [{kk}]");
                    }
                }
            }
        }
    }

    /// The kernel (where this CPU has it) and the portable loop against an f64 product of the
    /// rounded operands, over shapes that fill no whole tile, panel or row block, with last
    /// panels of one, two and three registers (attention's `P·V` is 64 columns: 48 + 16).
    #[test]
    fn products_match_an_f64_reference_of_the_rounded_values() {
        let mut r = rng(7);
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (3, 20, 5),
            (8, 48, 2),
            (9, 49, 60),
            (9, 80, 31),
            (64, 64, 750),
            (17, 95, 128),
            (70, 130, 33),
            (130, 512, 256),
        ] {
            let x: Vec<f32> = (0..m * k).map(|_| r()).collect();
            let wv: Vec<f32> = (0..n * k).map(|_| r()).collect();
            let w = Bf16Matrix::from_f32(SimdLevel::detect(), &wv, n, k);
            assert_eq!(
                w.dequantized_rows(0..n).iter().map(|&v| to_bf16(v)).collect::<Vec<_>>(),
                wv.iter().map(|&v| to_bf16(v)).collect::<Vec<_>>()
            );
            let a = rows_to_pairs(SimdLevel::detect(), &x, m, k);
            let mut want = vec![0.0f64; m * n];
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] = 0.5
                        + (0..k)
                            .map(|kk| {
                                from_bf16(to_bf16(x[i * k + kk])) as f64 * from_bf16(to_bf16(wv[j * k + kk])) as f64
                            })
                            .sum::<f64>();
                }
            }
            for level in [SimdLevel::Portable, SimdLevel::detect()] {
                for parallel in [false, true] {
                    let mut c = vec![0.25f32; m * n];
                    gemm(level, m, &a, &w, &mut c, Some(&vec![0.25; n]), true, parallel);
                    for (i, (&g, &e)) in c.iter().zip(&want).enumerate() {
                        assert!(
                            (g as f64 - e).abs() <= 1e-5 * (1.0 + k as f64),
                            "{level:?} {m}x{n}x{k} [{i}]: {g} vs {e}"
                        );
                    }
                    let mut fresh = vec![f32::NAN; m * n];
                    gemm(level, m, &a, &w, &mut fresh, None, false, parallel);
                    for (i, (&g, &e)) in fresh.iter().zip(&want).enumerate() {
                        assert!((g as f64 - (e - 0.5)).abs() <= 1e-5 * (1.0 + k as f64), "{level:?} fresh [{i}]");
                    }
                    // A bias of its own per column, into C that is not read.
                    let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
                    let mut biased = vec![f32::NAN; m * n];
                    gemm(level, m, &a, &w, &mut biased, Some(&bias), false, parallel);
                    for (i, (&g, &e)) in biased.iter().zip(&want).enumerate() {
                        let e = e - 0.5 + bias[i % n] as f64;
                        assert!((g as f64 - e).abs() <= 1e-5 * (1.0 + k as f64), "{level:?} biased [{i}]: {g} vs {e}");
                    }
                    // Into a new output that only the kernel writes: the same bits. A freed
                    // buffer of NaNs of that size is likely the memory reused, so a value left
                    // unwritten would show.
                    drop(std::hint::black_box(vec![f32::NAN; m * n]));
                    let new = gemm_new(level, m, &a, &w, Some(&bias), parallel);
                    assert_eq!(new.len(), m * n);
                    for (i, (g, b)) in new.iter().zip(&biased).enumerate() {
                        assert_eq!(g.to_bits(), b.to_bits(), "{level:?} {m}x{n}x{k} gemm_new [{i}]: {g} vs {b}");
                    }
                }
            }
        }
    }

    /// Packing from the transposed layout and reading the rows back as pairs agree with
    /// packing the row-major matrix, for shapes with a partial panel and an odd k.
    #[test]
    fn columns_and_row_pairs_are_the_same_matrix() {
        let mut r = rng(11);
        for &(n, k, ld) in &[(1usize, 1usize, 1usize), (5, 3, 9), (48, 2, 48), (49, 7, 60), (100, 33, 131), (40, 5, 1)]
        {
            let src: Vec<f32> = (0..(k - 1) * ld + n).map(|_| r() * 4.0).collect();
            let rows: Vec<f32> = (0..n).flat_map(|j| (0..k).map(|kk| src[kk * ld + j]).collect::<Vec<_>>()).collect();
            let want = Bf16Matrix::from_f32(SimdLevel::Portable, &rows, n, k);
            assert_eq!(Bf16Matrix::from_f32(SimdLevel::detect(), &rows, n, k).panels, want.panels, "n {n} k {k}");
            for level in [SimdLevel::Portable, SimdLevel::detect()] {
                let got = Bf16Matrix::from_columns(level, &src, ld, k, n);
                assert_eq!(got.panels, want.panels, "{level:?} n {n} k {k} ld {ld}");
            }
            assert_eq!(want.row_pairs(), rows_to_pairs(SimdLevel::Portable, &rows, n, k), "n {n} k {k}");
        }
    }

    #[test]
    #[should_panic(expected = "bf16 gemm: A holds")]
    fn short_operands_are_refused() {
        let w = Bf16Matrix::from_f32(SimdLevel::detect(), &[1.0; 12], 3, 4);
        let mut c = vec![0.0; 6];
        gemm(SimdLevel::detect(), 2, &[0; 3], &w, &mut c, None, false, false);
    }

    #[test]
    #[should_panic(expected = "bf16 gemm: a bias of 2 values")]
    fn a_new_output_refuses_a_short_bias() {
        let w = Bf16Matrix::from_f32(SimdLevel::detect(), &[1.0; 12], 3, 4);
        gemm_new(SimdLevel::detect(), 2, &[0; 4], &w, Some(&[0.0; 2]), false);
    }
}
