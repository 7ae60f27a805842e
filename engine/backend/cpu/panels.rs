//! Column panels: a linear weight `w[N, K]` laid out for products with a few rows, as a
//! decoder step's beams against Whisper's 51 864-token vocabulary.
//!
//! The skinny kernel ([`super::skinny`]) dots each weight row with every input row in 16
//! lane-wise partial sums, so every 7 input rows widen each f16 weight chunk again
//! (`vcvtph2ps`, the kernel's hot spot) and every dot product ends in a reduction across lanes.
//! Here 16 weight rows (output columns) are interleaved along `K` into a panel: one load
//! widens the 16 columns' values at `k`, and each input row's `x[r, k]`, broadcast, multiplies
//! all 16 at once into that row's accumulator of 16 outputs. A group of up to
//! [`GROUP_MAX_ROWS`] input rows shares each widened chunk, and the accumulators are the
//! outputs themselves: no reduction, one store. On the logits `[35, 384] × [51864, 384]` (f16)
//! 10.2 ms became 6.8 ms on a Zen 4 (benches/README.md).
//!
//! On AVX2 (with F16C) a panel is two registers of 8 and a group at most
//! [`AVX2_GROUP_MAX_ROWS`] rows: there the skinny kernel widened f16 in software, and the
//! logits `[35, 384] × [51864, 384]` went 28.9 → 6.7 ms.
//!
//! Each output is `Σ_k x[r, k] · w[j, k]` summed in order of `k` by fused multiply-adds, then
//! the bias added: every SIMD level computes the same bits ([`reference_product`]).

use rayon::prelude::*;

use super::shared_out::SharedOut;
use super::simd::SimdLevel;
use super::skinny::Elem;

/// Output columns in a panel: one AVX-512 register of f32, two AVX2 registers.
pub const PANEL_WIDTH: usize = 16;
/// Input rows that share each widened weight chunk: one accumulator register each, and the
/// chunk and the broadcast value fit the 32 registers beside them. 35 rows (7 chunks × 5
/// beams) run as groups of 12, 12 and 11; groups of up to 12, 20 or 24 were no faster on a Zen 4.
pub const GROUP_MAX_ROWS: usize = 16;
/// [`GROUP_MAX_ROWS`] for the AVX2 kernel, whose 16 registers hold two accumulators of 8 a row,
/// the panel's two widened halves and the broadcast value: 35 rows run as groups of 6 and one of
/// 5 (a prototype on a Zen 4: 6.4 ms for the logits `[35, 384] × [51864, 384]`; groups of 7 or
/// 8 spilled accumulators, 22 ms).
pub const AVX2_GROUP_MAX_ROWS: usize = 6;
/// Rows up to which `linear` runs a panel weight on the panel kernel; above it the weight is
/// widened for the GEMM. Each group of rows (16, or 6 on AVX2) reads the task's panels again,
/// from the caches,
/// where the GEMM would first widen the whole weight (80 MB for Whisper's vocabulary): the first
/// step of 7 chunks' beams, `[70, 384] × [51864, 384]`, took 14.5 ms on panels against 45.5 ms
/// widened and on the GEMM (AVX-512; measured up to 70 rows). No decoder step comes near this
/// many rows.
pub const PANEL_MAX_ROWS: usize = 512;
/// Panels a parallel task takes, about (256 output columns; 192 KiB of f16 weights at K = 384,
/// in the core's L2 while every group of rows reads them).
const PANELS_PER_TASK: usize = 16;
/// Below this many multiply-adds the product runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// The panels' values: f16 as the checkpoint stores them (widened as they are read), or f32.
pub enum PanelData {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

/// A `[N, K]` weight as `ceil(N / 16)` panels of `K × 16` values: panel `p`'s value `(q, c)` is
/// `w[16p + c, q]`; the last panel's columns past `N` are zeros.
pub struct PanelMatrix {
    n: usize,
    k: usize,
    data: PanelData,
}

/// `w` (`n` rows of `k`, row-major) packed into panels, the panels filled in parallel.
fn pack<E: Elem + Default>(w: &[E], n: usize, k: usize) -> Vec<E> {
    assert_eq!(w.len(), n * k, "pack: a [{n}, {k}] weight of {} values", w.len());
    let mut out = vec![E::default(); n.div_ceil(PANEL_WIDTH) * k * PANEL_WIDTH];
    if k == 0 {
        return out;
    }
    out.par_chunks_mut(k * PANEL_WIDTH).enumerate().for_each(|(p, panel)| {
        for c in 0..PANEL_WIDTH.min(n - p * PANEL_WIDTH) {
            let row = &w[(p * PANEL_WIDTH + c) * k..][..k];
            for (q, &v) in row.iter().enumerate() {
                panel[q * PANEL_WIDTH + c] = v;
            }
        }
    });
    out
}

/// Rows `rows` of `w` out of its panels, widened to f32.
fn unpack<E: Elem>(panels: &[E], k: usize, rows: std::ops::Range<usize>) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * k);
    for j in rows {
        let panel = &panels[j / PANEL_WIDTH * k * PANEL_WIDTH..][..k * PANEL_WIDTH];
        out.extend((0..k).map(|q| panel[q * PANEL_WIDTH + j % PANEL_WIDTH].widen()));
    }
    out
}

impl PanelMatrix {
    pub fn from_f32(w: &[f32], n: usize, k: usize) -> Self {
        PanelMatrix { n, k, data: PanelData::F32(pack(w, n, k)) }
    }

    pub fn from_f16(w: &[half::f16], n: usize, k: usize) -> Self {
        PanelMatrix { n, k, data: PanelData::F16(pack(w, n, k)) }
    }

    /// Output columns: the weight's rows.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// The weight's columns: the inputs' width.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// `float16` or `float32`: the values are the weight's own, only their order differs.
    pub fn dtype(&self) -> &'static str {
        match self.data {
            PanelData::F32(_) => "float32",
            PanelData::F16(_) => "float16",
        }
    }

    /// Rows `rows` of the weight as f32 (exact: panels only reorder the values).
    pub fn dequantized_rows(&self, rows: std::ops::Range<usize>) -> Vec<f32> {
        assert!(rows.end <= self.n, "panel rows {rows:?} of {}", self.n);
        match &self.data {
            PanelData::F32(p) => unpack(p, self.k, rows),
            PanelData::F16(p) => unpack(p, self.k, rows),
        }
    }

    /// `x[m, k] · wᵀ + bias` as a new `[m, n]` row-major buffer, every value written once.
    /// `level` must be one this CPU has (as every backend's is).
    pub(crate) fn product(&self, level: SimdLevel, m: usize, x: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        assert!(x.len() >= m * self.k, "panel product: {} inputs for {m} rows of {}", x.len(), self.k);
        assert!(
            bias.is_none_or(|b| b.len() == self.n),
            "panel product: a bias of {:?} for {}",
            bias.map(<[f32]>::len),
            self.n
        );
        // SAFETY: `product_into` writes every one of the m × n outputs (each task every row of
        // its panels' columns, the tasks together every panel).
        unsafe {
            super::written(m * self.n, |out| match &self.data {
                PanelData::F32(p) => product_into(level, m, self.n, self.k, x, p, bias, SharedOut::uninit(out)),
                PanelData::F16(p) => product_into(level, m, self.n, self.k, x, p, bias, SharedOut::uninit(out)),
            })
        }
    }
}

/// Whether `level` has a panel kernel: AVX-512, or AVX2 where the CPU also has F16C (every AVX2
/// CPU does, but a virtual machine may hide it; the AVX2 level is detected without it). Below
/// it the weight stays as it is (`pack_for_few_rows`).
pub fn kernel_available(level: SimdLevel) -> bool {
    match level {
        SimdLevel::Avx512 => true,
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => std::arch::is_x86_feature_detected!("f16c"),
        _ => false,
    }
}

/// Rows a group takes on `level`'s kernel.
fn group_max_rows(level: SimdLevel) -> usize {
    if level == SimdLevel::Avx2 {
        AVX2_GROUP_MAX_ROWS
    } else {
        GROUP_MAX_ROWS
    }
}

/// The input rows split into as few groups of at most `max` as can be, their sizes differing
/// by at most one: `(first row, rows)`.
fn row_groups(m: usize, max: usize) -> Vec<(usize, usize)> {
    let n = m.div_ceil(max).max(1);
    let (base, extra) = (m / n, m % n);
    let mut r0 = 0;
    (0..n)
        .map(|g| {
            let rows = base + usize::from(g < extra);
            r0 += rows;
            (r0 - rows, rows)
        })
        .filter(|&(_, rows)| rows > 0)
        .collect()
}

/// Tasks for `panels` panels: about [`PANELS_PER_TASK`] panels each, as many tasks as a
/// multiple of the threads (where there are panels enough), so no thread waits for a last
/// short one; task `i` takes [`task_panels`].
fn task_count(panels: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    (panels.div_ceil(PANELS_PER_TASK).div_ceil(threads) * threads).clamp(1, panels.max(1))
}

/// Task `task`'s panels of `panels` split into `tasks` parts whose sizes differ by at most one.
fn task_panels(task: usize, tasks: usize, panels: usize) -> std::ops::Range<usize> {
    task * panels / tasks..(task + 1) * panels / tasks
}

/// Group `g`'s rows of `x` transposed (`[k][rows]`): the kernel reads `x[r, q]` for every row
/// of the group at each `q`, adjacent.
fn transposed_group(x: &[f32], k: usize, (r0, rows): (usize, usize)) -> Vec<f32> {
    let mut t = vec![0.0f32; k * rows];
    for r in 0..rows {
        for (q, &v) in x[(r0 + r) * k..][..k].iter().enumerate() {
            t[q * rows + r] = v;
        }
    }
    t
}

#[allow(clippy::too_many_arguments)]
fn product_into<E: Elem>(
    level: SimdLevel,
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    panels: &[E],
    bias: Option<&[f32]>,
    out: SharedOut<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    let groups: Vec<((usize, usize), Vec<f32>)> =
        row_groups(m, group_max_rows(level)).into_iter().map(|g| (g, transposed_group(x, k, g))).collect();
    let avx2 = level == SimdLevel::Avx2 && kernel_available(level);
    let count = n.div_ceil(PANEL_WIDTH);
    let tasks = task_count(count, rayon::current_num_threads());
    let run = |task: usize| {
        for ((r0, rows), xt) in &groups {
            for p in task_panels(task, tasks, count) {
                let (c0, width) = (p * PANEL_WIDTH, PANEL_WIDTH.min(n - p * PANEL_WIDTH));
                let panel = &panels[p * k * PANEL_WIDTH..][..k * PANEL_WIDTH];
                let bias = bias.map(|b| &b[c0..c0 + width]);
                let rows_out: [*mut f32; GROUP_MAX_ROWS] = std::array::from_fn(|r| {
                    if r < *rows {
                        out.pointer((r0 + r) * n + c0, width)
                    } else {
                        std::ptr::null_mut()
                    }
                });
                #[cfg(target_arch = "x86_64")]
                if level == SimdLevel::Avx512 {
                    // SAFETY: the Avx512 level is only produced by detection of AVX-512F, AVX2,
                    // FMA and F16C; each row pointer has `width` values (checked by `pointer`),
                    // the panel K × 16 and `xt` K × rows.
                    unsafe { avx512::panel_any(*rows, k, xt, panel, bias, &rows_out, width) };
                    continue;
                }
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: the Avx2 level is only produced by detection of AVX2 and FMA, and
                    // F16C was detected (`kernel_available`); groups have at most
                    // AVX2_GROUP_MAX_ROWS rows; the pointers and slices as above.
                    unsafe { avx2::panel_any(*rows, k, xt, panel, bias, &rows_out, width) };
                    continue;
                }
                // SAFETY: each row pointer has `width` values (checked by `pointer`).
                unsafe { panel_portable(*rows, k, xt, panel, bias, &rows_out, width) };
            }
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx2;
    if m * n * k >= PARALLEL_MIN_MACS {
        (0..tasks).into_par_iter().for_each(run);
    } else {
        (0..tasks).for_each(run);
    }
}

/// One panel for a group of rows, one output at a time: `Σ_q x[r, q] · w[c, q]` by fused
/// multiply-adds in order of `q` (the AVX-512 kernel's lanes, the same bits), then the bias.
/// Reached only where a weight packed where a panel kernel exists (AVX-512, or AVX2 with F16C)
/// is used by a backend without one.
///
/// # Safety
/// `out[r]` must point at `width` writable values for each of the `rows` rows.
#[allow(clippy::too_many_arguments)]
unsafe fn panel_portable<E: Elem>(
    rows: usize,
    k: usize,
    xt: &[f32],
    panel: &[E],
    bias: Option<&[f32]>,
    out: &[*mut f32; GROUP_MAX_ROWS],
    width: usize,
) {
    for (r, &o) in out.iter().enumerate().take(rows) {
        for c in 0..width {
            let mut acc = 0.0f32;
            for q in 0..k {
                acc = xt[q * rows + r].mul_add(panel[q * PANEL_WIDTH + c].widen(), acc);
            }
            *o.add(c) = acc + bias.map_or(0.0, |b| b[c]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Elem, GROUP_MAX_ROWS, PANEL_WIDTH};

    /// `M` rows against one panel: an accumulator of 16 outputs a row, each `q` one widened
    /// weight chunk and a broadcast input value a row.
    #[inline(always)]
    unsafe fn panel<const M: usize, E: Elem>(
        k: usize,
        xt: &[f32],
        panel: &[E],
        bias: Option<&[f32]>,
        out: &[*mut f32; GROUP_MAX_ROWS],
        width: usize,
    ) {
        assert!(xt.len() >= k * M && panel.len() >= k * PANEL_WIDTH && width <= PANEL_WIDTH, "panel bounds");
        let (xp, wp) = (xt.as_ptr(), panel.as_ptr());
        let mut acc = [_mm512_setzero_ps(); M];
        for q in 0..k {
            let w = E::load16(wp.add(q * PANEL_WIDTH));
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(_mm512_set1_ps(*xp.add(q * M + r)), w, *a);
            }
        }
        let mask: __mmask16 = if width == PANEL_WIDTH { !0 } else { (1u16 << width) - 1 };
        let b = match bias {
            Some(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr()),
            None => _mm512_setzero_ps(),
        };
        for (r, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out[r], mask, _mm512_add_ps(*a, b));
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F, AVX2, FMA and F16C; `out[r]` must point at `width` writable
    /// values for each of the `rows` (1..=16) rows, `xt` hold `k × rows` values and `panel`
    /// `k × 16`.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn panel_any<E: Elem>(
        rows: usize,
        k: usize,
        xt: &[f32],
        p: &[E],
        bias: Option<&[f32]>,
        out: &[*mut f32; GROUP_MAX_ROWS],
        width: usize,
    ) {
        crate::backend::cpu::simd::for_rows!(
            rows,
            [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16],
            panel::<E>(k, xt, p, bias, out, width)
        )
    }
}

/// The AVX2 kernel: [`avx512`]'s, a panel as two registers of 8.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Elem, AVX2_GROUP_MAX_ROWS, GROUP_MAX_ROWS, PANEL_WIDTH};

    /// Lanes of an AVX2 register of f32: half a panel.
    const HALF: usize = PANEL_WIDTH / 2;

    #[inline(always)]
    unsafe fn panel<const M: usize, E: Elem>(
        k: usize,
        xt: &[f32],
        panel: &[E],
        bias: Option<&[f32]>,
        out: &[*mut f32; GROUP_MAX_ROWS],
        width: usize,
    ) {
        assert!(xt.len() >= k * M && panel.len() >= k * PANEL_WIDTH && width <= PANEL_WIDTH, "panel bounds");
        let (xp, wp) = (xt.as_ptr(), panel.as_ptr());
        let mut acc = [[_mm256_setzero_ps(); 2]; M];
        for q in 0..k {
            let w = [E::load8(wp.add(q * PANEL_WIDTH)), E::load8(wp.add(q * PANEL_WIDTH + HALF))];
            for (r, a) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*xp.add(q * M + r));
                a[0] = _mm256_fmadd_ps(x, w[0], a[0]);
                a[1] = _mm256_fmadd_ps(x, w[1], a[1]);
            }
        }
        // The bias, zeros past `width`; the sums stored whole where the panel is, else a lane
        // at a time.
        let mut b = [0.0f32; PANEL_WIDTH];
        if let Some(bias) = bias {
            b[..width].copy_from_slice(&bias[..width]);
        }
        let bv = [_mm256_loadu_ps(b.as_ptr()), _mm256_loadu_ps(b.as_ptr().add(HALF))];
        for (r, a) in acc.iter().enumerate() {
            let sums = [_mm256_add_ps(a[0], bv[0]), _mm256_add_ps(a[1], bv[1])];
            if width == PANEL_WIDTH {
                _mm256_storeu_ps(out[r], sums[0]);
                _mm256_storeu_ps(out[r].add(HALF), sums[1]);
            } else {
                let mut lanes = [0.0f32; PANEL_WIDTH];
                _mm256_storeu_ps(lanes.as_mut_ptr(), sums[0]);
                _mm256_storeu_ps(lanes.as_mut_ptr().add(HALF), sums[1]);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), out[r], width);
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; `out[r]` must point at `width` writable values for
    /// each of the `rows` (1..=[`AVX2_GROUP_MAX_ROWS`]) rows, `xt` hold `k × rows` values and
    /// `panel` `k × 16`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn panel_any<E: Elem>(
        rows: usize,
        k: usize,
        xt: &[f32],
        p: &[E],
        bias: Option<&[f32]>,
        out: &[*mut f32; GROUP_MAX_ROWS],
        width: usize,
    ) {
        const _: () = assert!(AVX2_GROUP_MAX_ROWS == 6);
        crate::backend::cpu::simd::for_rows!(rows, [1 2 3 4 5 6], panel::<E>(k, xt, p, bias, out, width))
    }
}

/// What every level computes: each output summed in order of `k` by fused multiply-adds from
/// zero, then the bias added (for the tests).
pub fn reference_product(x: &[f32], m: usize, k: usize, w: &[f32], n: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let mut out = Vec::with_capacity(m * n);
    for r in 0..m {
        for j in 0..n {
            let acc = (0..k).fold(0.0f32, |acc, q| x[r * k + q].mul_add(w[j * k + q], acc));
            out.push(acc + bias.map_or(0.0, |b| b[j]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn levels() -> Vec<SimdLevel> {
        let mut v = vec![SimdLevel::Portable, SimdLevel::Avx2.min(SimdLevel::detect()), SimdLevel::detect()];
        v.dedup();
        v
    }

    /// Every level gives [`reference_product`]'s bits: odd widths, a last panel of 1 to 15
    /// columns, groups of 1 to 16 rows, more rows than one group, with and without a bias, f32
    /// and f16 weights.
    #[test]
    fn products_match_the_ordered_fused_sums_bit_for_bit() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (1, 7, 15),
            (2, 9, 40),
            (3, 0, 17),
            (0, 5, 9),
            (3, 33, 16),
            (5, 384, 517),
            (7, 16, 17),
            (16, 5, 33),
            (17, 31, 70),
            (35, 64, 100),
            (40, 48, 49),
            (70, 9, 130),
        ] {
            let x = values(m * k, 1);
            let w = values(n * k, 2);
            let w16: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
            let w16_values: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            let b = values(n, 3);
            for bias in [None, Some(&b[..])] {
                for level in levels() {
                    let shape = format!("{level:?} x [{m}, {k}] w [{n}, {k}] bias {}", bias.is_some());
                    let got = PanelMatrix::from_f32(&w, n, k).product(level, m, &x, bias);
                    assert_eq!(got, reference_product(&x, m, k, &w, n, bias), "f32 {shape}");
                    let got = PanelMatrix::from_f16(&w16, n, k).product(level, m, &x, bias);
                    assert_eq!(got, reference_product(&x, m, k, &w16_values, n, bias), "f16 {shape}");
                }
            }
        }
    }

    /// The products stay within f32 rounding of an f64 sum (the reference is not itself wrong).
    #[test]
    fn products_match_f64() {
        let (m, k, n) = (35, 384, 1000);
        let (x, w) = (values(m * k, 4), values(n * k, 5));
        let got = PanelMatrix::from_f32(&w, n, k).product(SimdLevel::detect(), m, &x, None);
        for r in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|q| x[r * k + q] as f64 * w[j * k + q] as f64).sum();
                let err = (got[r * n + j] as f64 - want).abs();
                assert!(
                    err <= 1e-5 * (1.0 + want.abs()) * (k as f64).sqrt(),
                    "[{r}, {j}]: {} vs {want}",
                    got[r * n + j]
                );
            }
        }
    }

    /// Unpacking gives the weight's rows back exactly, across a panel's edge and the last,
    /// partial panel.
    #[test]
    fn rows_come_back_exactly() {
        let (n, k) = (37, 5);
        let w = values(n * k, 6);
        let w16: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
        let f32s = PanelMatrix::from_f32(&w, n, k);
        let f16s = PanelMatrix::from_f16(&w16, n, k);
        for rows in [0..n, 15..17, 32..37, 36..37, 3..3] {
            assert_eq!(f32s.dequantized_rows(rows.clone()), w[rows.start * k..rows.end * k]);
            let want: Vec<f32> = w16[rows.start * k..rows.end * k].iter().map(|v| v.to_f32()).collect();
            assert_eq!(f16s.dequantized_rows(rows), want);
        }
        assert_eq!((f32s.rows(), f32s.cols(), f32s.dtype(), f16s.dtype()), (n, k, "float32", "float16"));
    }

    #[test]
    fn row_groups_cover_the_rows_in_near_equal_groups() {
        assert_eq!(row_groups(35, GROUP_MAX_ROWS), vec![(0, 12), (12, 12), (24, 11)]);
        assert_eq!(row_groups(16, GROUP_MAX_ROWS), vec![(0, 16)]);
        assert_eq!(row_groups(17, GROUP_MAX_ROWS), vec![(0, 9), (9, 8)]);
        assert_eq!(row_groups(1, GROUP_MAX_ROWS), vec![(0, 1)]);
        assert_eq!(row_groups(0, GROUP_MAX_ROWS), Vec::<(usize, usize)>::new());
        let avx2 = group_max_rows(SimdLevel::Avx2);
        assert_eq!(row_groups(35, avx2), vec![(0, 6), (6, 6), (12, 6), (18, 6), (24, 6), (30, 5)]);
        for (m, max) in (1..200).flat_map(|m| [(m, GROUP_MAX_ROWS), (m, avx2)]) {
            let g = row_groups(m, max);
            assert_eq!(g.iter().map(|&(_, r)| r).sum::<usize>(), m);
            assert!(g.iter().all(|&(_, r)| (1..=max).contains(&r)), "{m}: {g:?}");
            assert!(g.windows(2).all(|p| p[0].0 + p[0].1 == p[1].0));
        }
    }

    #[test]
    fn tasks_split_the_panels_evenly_over_the_threads() {
        // The logits' 3 242 panels on two threads: 204 tasks of 15 or 16.
        assert_eq!(task_count(3242, 2), 204);
        assert_eq!((task_panels(0, 204, 3242), task_panels(203, 204, 3242)), (0..15, 3226..3242));
        // A [384, 384] projection's 24 panels: two tasks of 12.
        assert_eq!(task_count(24, 2), 2);
        assert_eq!((task_count(1, 8), task_count(0, 2)), (1, 1));
        // The tasks cover the panels in order, sizes within one of each other, a multiple of the
        // threads where there are panels enough.
        for (panels, threads) in [(3242, 2), (24, 2), (100, 3), (7, 16), (1, 1), (5, 2), (33, 2)] {
            let tasks = task_count(panels, threads);
            assert!(tasks.is_multiple_of(threads) || tasks == panels, "{panels} panels on {threads}: {tasks} tasks");
            let parts: Vec<_> = (0..tasks).map(|t| task_panels(t, tasks, panels)).collect();
            assert!(parts.windows(2).all(|p| p[0].end == p[1].start) && parts[0].start == 0);
            assert_eq!(parts[tasks - 1].end, panels);
            let (lo, hi) = (parts.iter().map(|p| p.len()).min(), parts.iter().map(|p| p.len()).max());
            assert!(hi.unwrap() - lo.unwrap() <= 1, "{panels} on {threads}: {parts:?}");
        }
    }
}
