//! Skinny products: a few rows (the beams of a decoder step) against a large matrix whose rows
//! are the other operand's columns (a `[N, K]` weight, or the keys of an attention head).
//!
//! `gemm` packs both operands on every call. For 5 rows against the 51 864 × 384 token embedding
//! that copies 80 MB per decoder step, more than the product itself costs. Here each row of the
//! large matrix is read once, straight from where it lies, and dotted with every input row while
//! it is in L1: the product runs at memory bandwidth.

use rayon::prelude::*;

use super::math;
use super::simd::{multiversion, SimdLevel};

/// Rows one register-blocked pass of the skinny kernel handles.
pub const SKINNY_MAX_ROWS: usize = 8;
/// Products with at most this many rows take the skinny path, in passes of
/// [`SKINNY_MAX_ROWS`] over each block of weight rows while it is in cache: the decoder steps of
/// a batch (chunks × beams). Above it, `gemm`'s packing pays for itself.
pub const SKINNY_BATCH_MAX_ROWS: usize = 64;
/// Accumulator width: one AVX-512 register of f32, two AVX2 registers.
const LANES: usize = 16;
/// Columns of the output per parallel task.
const COLUMNS_PER_TASK: usize = 256;
/// Task widths are multiples of this (the AVX-512 kernel's columns at once, twice).
const COLUMN_GROUP: usize = 6;
/// The narrowest task the rounding to a multiple of the threads may make: on many threads,
/// tasks of a few columns would cost more to hand out than an even split saves.
const MIN_COLUMNS_PER_TASK: usize = 48;
/// Input rows from which the AVX-512 kernel dots three weight rows at once: with fewer (a
/// sequential decoder's 5 beams) the product streams the weight from memory, and three weight
/// rows read at once were slower (the 51 864-token logits for 5 beams 1.4 → 1.8–2.3 ms; for
/// 8 × 5 beams 9.6–10 → 5.2–6.3 ms).
const COLUMNS_AT_ONCE_MIN_ROWS: usize = 6;
/// Below this many multiply-adds the product runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// A stored element of a skinny product's streamed operand (a weight, or attention's keys and
/// values): f32, or f16 widened as it is read.
pub trait Elem: Copy + Send + Sync {
    fn widen(self) -> f32;
    /// Sixteen elements widened to f32, for the AVX-512 kernel.
    ///
    /// # Safety
    /// `p` must point at 16 readable elements; the CPU must have AVX-512F and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512;
    /// Eight elements widened to f32, for the AVX2 panel and skinny kernels.
    ///
    /// # Safety
    /// `p` must point at 8 readable elements; the CPU must have AVX and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
    /// [`skinny_nn`] over rows of `v` of this type, compiled for `level`.
    #[allow(clippy::too_many_arguments)]
    fn nn_autovec(level: SimdLevel, m: usize, t: usize, dh: usize, p: &[f32], v: &[Self], v_rs: usize, out: &mut [f32]);
    /// The auto-vectorised [`block`] compiled for `level`.
    #[allow(clippy::too_many_arguments)]
    fn block_autovec(
        level: SimdLevel,
        m: usize,
        x: &[f32],
        k: usize,
        w: &[Self],
        w_rs: usize,
        j0: usize,
        cols: &mut [&mut [f32]],
    );
}

impl Elem for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const f32) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> std::arch::x86_64::__m256 {
        std::arch::x86_64::_mm256_loadu_ps(p)
    }
    fn nn_autovec(level: SimdLevel, m: usize, t: usize, dh: usize, p: &[f32], v: &[f32], v_rs: usize, out: &mut [f32]) {
        nn_f32(level, m, t, dh, p, v, v_rs, out)
    }
    fn block_autovec(
        level: SimdLevel,
        m: usize,
        x: &[f32],
        k: usize,
        w: &[f32],
        w_rs: usize,
        j0: usize,
        cols: &mut [&mut [f32]],
    ) {
        block_f32(level, m, x, k, w, w_rs, j0, cols)
    }
}

impl Elem for half::f16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        math::f16_to_f32(self.to_bits())
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const half::f16) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const half::f16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }
    fn nn_autovec(
        level: SimdLevel,
        m: usize,
        t: usize,
        dh: usize,
        p: &[f32],
        v: &[half::f16],
        v_rs: usize,
        out: &mut [f32],
    ) {
        nn_f16(level, m, t, dh, p, v, v_rs, out)
    }
    fn block_autovec(
        level: SimdLevel,
        m: usize,
        x: &[f32],
        k: usize,
        w: &[half::f16],
        w_rs: usize,
        j0: usize,
        cols: &mut [&mut [f32]],
    ) {
        block_f16(level, m, x, k, w, w_rs, j0, cols)
    }
}

/// `Σ_p x[p] · w[p]` over `M` rows of `x` at once, with lane-wise partial sums.
#[inline(always)]
fn dots<const M: usize, E: Elem>(x: &[&[f32]; M], w: &[E], out: &mut [f32; M]) {
    let k = w.len();
    let full = k / LANES * LANES;
    let mut acc = [[0.0f32; LANES]; M];
    let mut p = 0;
    while p < full {
        // A plain loop: `array::from_fn` is not inlined into the target-feature copies.
        let ws: &[E; LANES] = w[p..p + LANES].try_into().expect("LANES-sized chunk");
        let mut wc = [0.0f32; LANES];
        for l in 0..LANES {
            wc[l] = ws[l].widen();
        }
        for r in 0..M {
            let xc: &[f32; LANES] = x[r][p..p + LANES].try_into().expect("LANES-sized chunk");
            for l in 0..LANES {
                acc[r][l] += xc[l] * wc[l];
            }
        }
        p += LANES;
    }
    for r in 0..M {
        // Tree reduction of the lanes (halves added pairwise), which vectorises.
        let v = &mut acc[r];
        let mut width = LANES / 2;
        while width > 0 {
            for l in 0..width {
                v[l] += v[l + width];
            }
            width /= 2;
        }
        let mut s = v[0];
        for q in full..k {
            s += x[r][q] * w[q].widen();
        }
        out[r] = s;
    }
}

/// One block of output columns for `M` input rows.
#[inline(always)]
fn block<const M: usize, E: Elem>(x: &[f32], k: usize, w: &[E], w_rs: usize, j0: usize, cols: &mut [&mut [f32]]) {
    let mut rows: [&[f32]; M] = [&[]; M];
    for (r, row) in rows.iter_mut().enumerate() {
        *row = &x[r * k..(r + 1) * k];
    }
    let mut d = [0.0f32; M];
    let n = cols[0].len();
    for j in 0..n {
        dots::<M, E>(&rows, &w[(j0 + j) * w_rs..][..k], &mut d);
        for r in 0..M {
            cols[r][j] += d[r];
        }
    }
}

/// `cols[r][j] += x[r] · w[j0 + j]` for every row `r` of `x` (`m` rows of `k`) and every column
/// `j` of the block (`w` rows start every `w_rs` elements), `M` dispatched to a constant.
macro_rules! block_for {
    ($name:ident, $elem:ty) => {
        multiversion! {
            #[allow(clippy::too_many_arguments)]
            fn $name(m: usize, x: &[f32], k: usize, w: &[$elem], w_rs: usize, j0: usize, cols: &mut [&mut [f32]]) {
                crate::backend::cpu::simd::for_rows!(m, [1 2 3 4 5 6 7 8], block::<$elem>(x, k, w, w_rs, j0, cols))
            }
        }
    };
}
block_for!(block_f32, f32);
block_for!(block_f16, half::f16);

/// The AVX-512 kernels, written with intrinsics: the linear products' fused multiply-adds and
/// attention's `P·V` (multiplies then adds, the auto-vectorised bits), with, for f16 operands,
/// the hardware conversion (`vcvtph2ps`), 16 values an instruction.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Elem, COLUMNS_AT_ONCE_MIN_ROWS, LANES};

    /// Weight rows (output columns) dotted at once: each input chunk loaded is used for all of
    /// them, so the loads per multiply-add fall from (M + 1)/M to (M + J)/(J·M) (3·8
    /// accumulators, 3 weights and an input fit the 32 registers). Each column's sums are the
    /// ones a column alone would make, in the same order.
    const COLUMNS_AT_ONCE: usize = 3;

    #[inline(always)]
    unsafe fn block<const M: usize, E: Elem>(
        x: &[f32],
        k: usize,
        w: &[E],
        w_rs: usize,
        j0: usize,
        cols: &mut [&mut [f32]],
    ) {
        let n = cols[0].len();
        assert!(x.len() >= M * k && (n == 0 || (j0 + n - 1) * w_rs + k <= w.len()), "skinny block bounds");
        let mut j = 0;
        if M >= COLUMNS_AT_ONCE_MIN_ROWS {
            while j + COLUMNS_AT_ONCE <= n {
                columns::<M, COLUMNS_AT_ONCE, E>(x, k, w, w_rs, j0, j, cols);
                j += COLUMNS_AT_ONCE;
            }
        }
        while j < n {
            columns::<M, 1, E>(x, k, w, w_rs, j0, j, cols);
            j += 1;
        }
    }

    /// Columns `j..j + J` of the block: `cols[r][j + c] += x[r] · w[j0 + j + c]`, each dot
    /// product in 16 lane-wise partial sums (fused multiply-adds in order of k), reduced, then
    /// the tail of k added in order.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)]
    unsafe fn columns<const M: usize, const J: usize, E: Elem>(
        x: &[f32],
        k: usize,
        w: &[E],
        w_rs: usize,
        j0: usize,
        j: usize,
        cols: &mut [&mut [f32]],
    ) {
        let full = k / LANES * LANES;
        let xp = x.as_ptr();
        let wj: [*const E; J] = std::array::from_fn(|c| w.as_ptr().add((j0 + j + c) * w_rs));
        let mut acc = [[_mm512_setzero_ps(); M]; J];
        let mut p = 0;
        while p < full {
            let mut wv = [_mm512_setzero_ps(); J];
            for c in 0..J {
                wv[c] = E::load16(wj[c].add(p));
            }
            for r in 0..M {
                let xv = _mm512_loadu_ps(xp.add(r * k + p));
                for c in 0..J {
                    acc[c][r] = _mm512_fmadd_ps(xv, wv[c], acc[c][r]);
                }
            }
            p += LANES;
        }
        for c in 0..J {
            for r in 0..M {
                let mut s = _mm512_reduce_add_ps(acc[c][r]);
                for q in full..k {
                    s += x[r * k + q] * (*wj[c].add(q)).widen();
                }
                cols[r][j + c] += s;
            }
        }
    }

    /// [`super::nn_block`] in intrinsics: `NN_COLUMNS` (4 registers) of `M` output rows, f16
    /// values widened by `vcvtph2ps`; multiplies then adds in the same order (the same bits).
    #[inline(always)]
    unsafe fn nn_block<const M: usize, E: Elem>(
        t: usize,
        p: &[f32],
        v: &[E],
        v_rs: usize,
        c0: usize,
        out: &mut [f32],
        dh: usize,
    ) {
        const VECS: usize = super::NN_COLUMNS / LANES;
        let (pp, vp, op) = (p.as_ptr(), v.as_ptr(), out.as_mut_ptr());
        let mut acc = [[_mm512_setzero_ps(); VECS]; M];
        for j in 0..t {
            let row = vp.add(j * v_rs + c0);
            let mut vals = [_mm512_setzero_ps(); VECS];
            for (c, x) in vals.iter_mut().enumerate() {
                *x = E::load16(row.add(c * LANES));
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let pj = _mm512_set1_ps(*pp.add(r * t + j));
                for c in 0..VECS {
                    a[c] = _mm512_add_ps(a[c], _mm512_mul_ps(pj, vals[c]));
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            for (c, x) in a.iter().enumerate() {
                let o = op.add(r * dh + c0 + c * LANES);
                _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), *x));
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F and F16C; `m` in 1..=6, `dh` a multiple of `NN_COLUMNS`, and
    /// the operands as [`super::skinny_nn`] checks them.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn nn_any<E: Elem>(m: usize, t: usize, dh: usize, p: &[f32], v: &[E], v_rs: usize, out: &mut [f32]) {
        for c0 in (0..dh).step_by(super::NN_COLUMNS) {
            crate::backend::cpu::simd::for_rows!(m, [1 2 3 4 5 6], nn_block::<E>(t, p, v, v_rs, c0, out, dh))
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F, FMA and F16C.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn block_any<E: Elem>(
        m: usize,
        x: &[f32],
        k: usize,
        w: &[E],
        w_rs: usize,
        j0: usize,
        cols: &mut [&mut [f32]],
    ) {
        crate::backend::cpu::simd::for_rows!(m, [1 2 3 4 5 6 7 8], block::<E>(x, k, w, w_rs, j0, cols))
    }
}

/// The AVX2 kernel of the skinny products (with FMA and F16C; the linear layers, and attention's
/// scores where they take this path): like the AVX-512 kernel, but 8 lane-wise partial sums
/// instead of 16 (so not its bits), f16 weights widened by `vcvtph2ps` (the auto-vectorised
/// kernel widens them in software), one weight row at a time, so `M` accumulators, the weight and
/// an input fit the 16 registers.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Elem;

    /// Lanes of one register.
    const LANES: usize = 8;

    /// The eight lanes summed pairwise: high half onto low, then within the low half.
    #[inline(always)]
    unsafe fn reduce_add(v: __m256) -> f32 {
        let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
    }

    /// `cols[r][j] += x[r] · w[j0 + j]` for every column `j` of the block: each dot product in
    /// 8 lane-wise partial sums (fused multiply-adds in order of k), reduced, then the tail of
    /// k added in order.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)]
    unsafe fn block<const M: usize, E: Elem>(
        x: &[f32],
        k: usize,
        w: &[E],
        w_rs: usize,
        j0: usize,
        cols: &mut [&mut [f32]],
    ) {
        let n = cols[0].len();
        assert!(x.len() >= M * k && (n == 0 || (j0 + n - 1) * w_rs + k <= w.len()), "skinny block bounds");
        let full = k / LANES * LANES;
        let xp = x.as_ptr();
        for j in 0..n {
            let wj = w.as_ptr().add((j0 + j) * w_rs);
            let mut acc = [_mm256_setzero_ps(); M];
            let mut p = 0;
            while p < full {
                let wv = E::load8(wj.add(p));
                for r in 0..M {
                    acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(r * k + p)), wv, acc[r]);
                }
                p += LANES;
            }
            for r in 0..M {
                let mut s = reduce_add(acc[r]);
                for q in full..k {
                    s += x[r * k + q] * (*wj.add(q)).widen();
                }
                cols[r][j] += s;
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn block_any<E: Elem>(
        m: usize,
        x: &[f32],
        k: usize,
        w: &[E],
        w_rs: usize,
        j0: usize,
        cols: &mut [&mut [f32]],
    ) {
        crate::backend::cpu::simd::for_rows!(m, [1 2 3 4 5 6 7 8], block::<E>(x, k, w, w_rs, j0, cols))
    }

    /// Whether this CPU has F16C beside the AVX2 level's AVX2 and FMA.
    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("f16c")
    }
}

/// Columns per task: at most about [`COLUMNS_PER_TASK`], the number of tasks rounded up to a
/// multiple of the threads (384 columns on two threads were a task of 256 and one of 128: one
/// thread waited a third of the product; now two of 192) but no task narrower than
/// [`MIN_COLUMNS_PER_TASK`], and each a multiple of [`COLUMN_GROUP`] so the AVX-512 kernel's
/// groups of columns fill it (that rounding can leave a task fewer than the multiple).
fn columns_per_task(n: usize, threads: usize) -> usize {
    let threads = threads.max(1);
    let base = n.div_ceil(COLUMNS_PER_TASK);
    let tasks = (base.div_ceil(threads) * threads).min((n / MIN_COLUMNS_PER_TASK).max(base)).max(1);
    n.div_ceil(tasks).next_multiple_of(COLUMN_GROUP)
}

/// The input rows split into as few groups of at most [`SKINNY_MAX_ROWS`] as can be, their
/// sizes differing by at most one (`(first row, rows)`), where every group then has at least
/// [`COLUMNS_AT_ONCE_MIN_ROWS`] rows; else groups of [`SKINNY_MAX_ROWS`] and the rest. 35 rows
/// (7 chunks × 5 beams) are five groups of 7, each on the AVX-512 kernel's three-column path,
/// where groups of 8 left a group of 3 on its one-column path (the logits `[35, 384] × [51864,
/// 384]` 5.3–5.5 → 4.5 ms); 10 rows stay 8 and 2 (as 5 and 5 both would take the one-column
/// path). Each row's sums do not depend on its group, so the bits are the same.
fn row_groups(m: usize) -> Vec<(usize, usize)> {
    let n = m.div_ceil(SKINNY_MAX_ROWS).max(1);
    let (base, extra) = (m / n, m % n);
    if n > 1 && base < COLUMNS_AT_ONCE_MIN_ROWS {
        return (0..m).step_by(SKINNY_MAX_ROWS).map(|r0| (r0, SKINNY_MAX_ROWS.min(m - r0))).collect();
    }
    let mut out = Vec::with_capacity(n);
    let mut r0 = 0;
    for g in 0..n {
        let rows = base + usize::from(g < extra);
        out.push((r0, rows));
        r0 += rows;
    }
    out
}

/// Where [`skinny_nt`] runs its column blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// On the thread pool (the product is the caller's only work).
    Pool,
    /// On the calling thread (the caller is one of many parallel tasks).
    Caller,
}

/// `out[r, j] += x[r, :] · w[j, :]` for `m ≤ SKINNY_BATCH_MAX_ROWS` rows of `x` (`[m, k]`,
/// row-major) and the `n` rows of `w` (row `j` at `w[j * w_rs..][..k]`). `out` is `[m, n]`
/// row-major and must be pre-filled (zeros, or the bias). Each task takes a block of rows of
/// `w` ([`columns_per_task`]) and runs every group of input rows ([`row_groups`]) against
/// it, so `w` is read from memory once whatever `m` is.
///
/// `threads`: [`Threads::Pool`] splits the columns into blocks on the thread pool where the
/// product is large enough ([`PARALLEL_MIN_MACS`]); [`Threads::Caller`] runs one block on the
/// calling thread (the same sums), for callers that are themselves one of many parallel tasks
/// (attention's heads), where a nested parallel loop would split each small product again.
#[allow(clippy::too_many_arguments)]
pub fn skinny_nt<E: Elem>(
    level: SimdLevel,
    threads: Threads,
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    w: &[E],
    w_rs: usize,
    out: &mut [f32],
) {
    assert!((1..=SKINNY_BATCH_MAX_ROWS).contains(&m), "skinny_nt: {m} rows");
    assert!(x.len() >= m * k && out.len() >= m * n, "skinny_nt: operand sizes");
    assert!(n == 0 || (n - 1) * w_rs + k <= w.len(), "skinny_nt: w out of bounds");
    if n == 0 {
        return;
    }
    // Column blocks of every output row, regrouped per block so tasks own disjoint memory.
    let parallel = threads == Threads::Pool && m * n * k >= PARALLEL_MIN_MACS;
    let per_task = if parallel { columns_per_task(n, rayon::current_num_threads()) } else { n };
    let mut rows: Vec<std::slice::ChunksMut<'_, f32>> =
        out[..m * n].chunks_mut(n).map(|row| row.chunks_mut(per_task)).collect();
    let blocks: Vec<(usize, Vec<&mut [f32]>)> = (0..n.div_ceil(per_task))
        .map(|b| (b * per_task, rows.iter_mut().map(|r| r.next().expect("one chunk per block")).collect()))
        .collect();
    let groups = row_groups(m);
    #[cfg(target_arch = "x86_64")]
    let avx2_kernel = level == SimdLevel::Avx2 && avx2::available();
    let run = |(j0, mut cols): (usize, Vec<&mut [f32]>)| {
        for &(r0, mg) in &groups {
            let (xg, cg) = (&x[r0 * k..(r0 + mg) * k], &mut cols[r0..r0 + mg]);
            #[cfg(target_arch = "x86_64")]
            if level == SimdLevel::Avx512 {
                // SAFETY: the Avx512 level is only produced by detection of AVX-512F, AVX2, FMA
                // and F16C on this CPU.
                unsafe { avx512::block_any(mg, xg, k, w, w_rs, j0, cg) };
                continue;
            }
            #[cfg(target_arch = "x86_64")]
            if avx2_kernel {
                // SAFETY: the Avx2 level is only produced by detection of AVX2 and FMA on this
                // CPU, and F16C was detected.
                unsafe { avx2::block_any(mg, xg, k, w, w_rs, j0, cg) };
                continue;
            }
            E::block_autovec(level, mg, xg, k, w, w_rs, j0, cg);
        }
    };
    if parallel {
        blocks.into_par_iter().for_each(run);
    } else {
        blocks.into_iter().for_each(run);
    }
}

/// Output columns kept in registers by [`nn_block`]: the head width of every Whisper model.
const NN_COLUMNS: usize = 64;

/// `out[r, c0..c0+NN_COLUMNS] += Σ_j p[r, j] · v[j, c0..]` for `M` rows, accumulators in registers.
#[inline(always)]
fn nn_block<const M: usize, E: Elem>(t: usize, p: &[f32], v: &[E], v_rs: usize, c0: usize, out: &mut [f32], dh: usize) {
    let mut acc = [[0.0f32; NN_COLUMNS]; M];
    for j in 0..t {
        let row: &[E; NN_COLUMNS] = v[j * v_rs + c0..][..NN_COLUMNS].try_into().expect("NN_COLUMNS-sized row");
        // A plain loop: closures (`map`) may stay out of line in the SIMD copies.
        let mut vj = [0.0f32; NN_COLUMNS];
        for l in 0..NN_COLUMNS {
            vj[l] = row[l].widen();
        }
        for r in 0..M {
            let pj = p[r * t + j];
            for l in 0..NN_COLUMNS {
                acc[r][l] += pj * vj[l];
            }
        }
    }
    for r in 0..M {
        for (o, a) in out[r * dh + c0..][..NN_COLUMNS].iter_mut().zip(&acc[r]) {
            *o += a;
        }
    }
}

/// `out[r, c] += Σ_j p[r, j] · v[j, c]` for columns `c0..c1`, one row at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn nn_rows<E: Elem>(
    m: usize,
    t: usize,
    p: &[f32],
    v: &[E],
    v_rs: usize,
    c0: usize,
    c1: usize,
    out: &mut [f32],
    dh: usize,
) {
    for j in 0..t {
        let vj = &v[j * v_rs + c0..j * v_rs + c1];
        for r in 0..m {
            let pj = p[r * t + j];
            for (o, &vv) in out[r * dh + c0..r * dh + c1].iter_mut().zip(vj) {
                *o += pj * vv.widen();
            }
        }
    }
}

/// `out[r, :] += Σ_j p[r, j] · v[j, :]` for `m` rows of `p` (`[m, t]`) and `t` rows of `v`
/// (row `j` at `v[j * v_rs..][..dh]`, f32 or f16 widened as read); `out` is `[m, dh]`. Reads
/// each row of `v` once.
#[allow(clippy::too_many_arguments)]
pub fn skinny_nn<E: Elem>(
    level: SimdLevel,
    m: usize,
    t: usize,
    dh: usize,
    p: &[f32],
    v: &[E],
    v_rs: usize,
    out: &mut [f32],
) {
    assert!(p.len() >= m * t && out.len() >= m * dh, "skinny_nn: operand sizes");
    assert!(t == 0 || (t - 1) * v_rs + dh <= v.len(), "skinny_nn: v out of bounds");
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Avx512 && (1..=NN_MAX_BLOCK_ROWS).contains(&m) && dh.is_multiple_of(NN_COLUMNS) {
        // SAFETY: the Avx512 level is only produced by detection of AVX-512F, AVX2, FMA and
        // F16C on this CPU; the operands' sizes are checked above.
        unsafe { avx512::nn_any(m, t, dh, p, v, v_rs, out) };
        return;
    }
    E::nn_autovec(level, m, t, dh, p, v, v_rs, out)
}

/// Rows that [`nn_block`] keeps in registers (6 × 4 accumulators, 4 values and a weight).
const NN_MAX_BLOCK_ROWS: usize = 6;
// The row dispatches (`for_rows!`) list 1..=SKINNY_MAX_ROWS and 1..=NN_MAX_BLOCK_ROWS.
const _: () = assert!(SKINNY_MAX_ROWS == 8 && NN_MAX_BLOCK_ROWS == 6);

/// [`skinny_nn`] for one element type, compiled for each SIMD level.
macro_rules! nn_for {
    ($name:ident, $elem:ty) => {
        multiversion! {
            fn $name(m: usize, t: usize, dh: usize, p: &[f32], v: &[$elem], v_rs: usize, out: &mut [f32]) {
                let blocked = dh / NN_COLUMNS * NN_COLUMNS;
                for c0 in (0..blocked).step_by(NN_COLUMNS) {
                    match m {
                        1 => nn_block::<1, $elem>(t, p, v, v_rs, c0, out, dh),
                        2 => nn_block::<2, $elem>(t, p, v, v_rs, c0, out, dh),
                        3 => nn_block::<3, $elem>(t, p, v, v_rs, c0, out, dh),
                        4 => nn_block::<4, $elem>(t, p, v, v_rs, c0, out, dh),
                        5 => nn_block::<5, $elem>(t, p, v, v_rs, c0, out, dh),
                        6 => nn_block::<6, $elem>(t, p, v, v_rs, c0, out, dh),
                        _ => nn_rows(m, t, p, v, v_rs, c0, c0 + NN_COLUMNS, out, dh),
                    }
                }
                if blocked < dh {
                    nn_rows(m, t, p, v, v_rs, blocked, dh, out, dh);
                }
            }
        }
    };
}
nn_for!(nn_f32, f32);
nn_for!(nn_f16, half::f16);

#[cfg(test)]
mod tests {
    use super::*;

    fn rnd(seed: &mut u32) -> f32 {
        *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        (*seed >> 8) as f32 / (1 << 24) as f32 - 0.5
    }

    #[test]
    fn skinny_nt_matches_f64_on_odd_shapes() {
        let mut seed = 7;
        let levels = [SimdLevel::Portable, SimdLevel::Avx2.min(SimdLevel::detect()), SimdLevel::detect()];
        for &(m, n, k, pad) in &[
            (1, 1, 1, 0),
            (3, 17, 15, 3),
            (5, 513, 384, 0),
            (8, 300, 33, 5),
            (2, 7000, 17, 1),
            (6, 257, 40, 0),
            (37, 520, 384, 2),
            (4, 65, 9, 0),
            (7, 50, 21, 1),
        ] {
            let w_rs = k + pad;
            let x: Vec<f32> = (0..m * k).map(|_| rnd(&mut seed)).collect();
            let w: Vec<f32> = (0..n * w_rs).map(|_| rnd(&mut seed)).collect();
            // Half-precision weights: the same product over the f16-rounded values.
            let w16: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
            let w_of16: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            for &level in &levels {
                let mut out = vec![0.25f32; m * n];
                skinny_nt(level, Threads::Pool, m, n, k, &x, &w16, w_rs, &mut out);
                for r in 0..m {
                    for j in 0..n {
                        let want: f64 =
                            0.25 + (0..k).map(|p| x[r * k + p] as f64 * w_of16[j * w_rs + p] as f64).sum::<f64>();
                        let got = out[r * n + j] as f64;
                        assert!((got - want).abs() < 1e-5 + 1e-5 * want.abs(), "f16 {level:?} {m}x{n}x{k}");
                    }
                }
                let mut out = vec![0.25f32; m * n];
                skinny_nt(level, Threads::Pool, m, n, k, &x, &w, w_rs, &mut out);
                for r in 0..m {
                    for j in 0..n {
                        let want: f64 =
                            0.25 + (0..k).map(|p| x[r * k + p] as f64 * w[j * w_rs + p] as f64).sum::<f64>();
                        let got = out[r * n + j] as f64;
                        assert!(
                            (got - want).abs() < 1e-5 + 1e-5 * want.abs(),
                            "{level:?} {m}x{n}x{k}: {got} vs {want}"
                        );
                    }
                }
                // On the calling thread alone: the same bits as over the pool.
                let mut alone = vec![0.25f32; m * n];
                skinny_nt(level, Threads::Caller, m, n, k, &x, &w, w_rs, &mut alone);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
                assert_eq!(bits(&alone), bits(&out), "in task {level:?} {m}x{n}x{k}");
            }
        }
    }

    /// Each row of a product is the product of that row alone, bit for bit, at every level:
    /// the kernel's columns dotted at once and its groups of rows change which loads are
    /// shared, not a sum (the batched decoder's beams give what each beam alone would).
    #[test]
    fn rows_together_give_the_bits_of_each_row_alone() {
        let mut seed = 11;
        let levels = [SimdLevel::Portable, SimdLevel::Avx2.min(SimdLevel::detect()), SimdLevel::detect()];
        // 40 rows: five groups of 8; 35: five of 7; 25: 7, 6, 6, 6.
        for m in [40, 35, 25] {
            rows_alone(&levels, m, &mut seed);
        }
    }

    fn rows_alone(levels: &[SimdLevel], m: usize, seed: &mut u32) {
        let (n, k) = (700, 384);
        let x: Vec<f32> = (0..m * k).map(|_| rnd(seed)).collect();
        let w: Vec<half::f16> = (0..n * k).map(|_| half::f16::from_f32(rnd(seed))).collect();
        for &level in levels {
            let mut together = vec![0.5f32; m * n];
            skinny_nt(level, Threads::Pool, m, n, k, &x, &w, k, &mut together);
            for r in 0..m {
                let mut alone = vec![0.5f32; n];
                skinny_nt(level, Threads::Pool, 1, n, k, &x[r * k..(r + 1) * k], &w, k, &mut alone);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&together[r * n..(r + 1) * n]), bits(&alone), "{level:?} row {r}");
            }
        }
    }

    #[test]
    fn rows_split_into_the_fewest_groups_of_nearly_equal_size_where_each_keeps_the_wide_path() {
        for m in 1..=SKINNY_BATCH_MAX_ROWS {
            let groups = row_groups(m);
            assert_eq!(groups.len(), m.div_ceil(SKINNY_MAX_ROWS), "{m} rows: {groups:?}");
            let sizes: Vec<usize> = groups.iter().map(|g| g.1).collect();
            let balanced = sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1;
            // Balanced where every group gets the three-column path, else eights and the rest.
            if m.div_ceil(SKINNY_MAX_ROWS) > 1 && m / m.div_ceil(SKINNY_MAX_ROWS) < COLUMNS_AT_ONCE_MIN_ROWS {
                assert!(sizes[..sizes.len() - 1].iter().all(|&r| r == SKINNY_MAX_ROWS), "{m} rows: {sizes:?}");
            } else {
                assert!(balanced, "{m} rows: {sizes:?}");
            }
            // Consecutive, covering every row once, none larger than SKINNY_MAX_ROWS.
            let mut next = 0;
            for &(r0, rows) in &groups {
                assert_eq!(r0, next, "{m} rows: {groups:?}");
                assert!((1..=SKINNY_MAX_ROWS).contains(&rows), "{m} rows: {groups:?}");
                next += rows;
            }
            assert_eq!(next, m);
        }
        assert_eq!(row_groups(35), vec![(0, 7), (7, 7), (14, 7), (21, 7), (28, 7)]);
        assert_eq!(row_groups(10), vec![(0, 8), (8, 2)]);
        assert_eq!(row_groups(12), vec![(0, 6), (6, 6)]);
    }

    #[test]
    fn tasks_share_the_columns_evenly() {
        // A decoder's 384-wide projection on two threads: two tasks of 192, not 256 + 128; its
        // MLP's 1536 columns six; on sixteen threads the 384 columns eight tasks of 48.
        assert_eq!(columns_per_task(384, 2), 192);
        assert_eq!(1536usize.div_ceil(columns_per_task(1536, 2)), 6);
        assert_eq!(columns_per_task(384, 16), MIN_COLUMNS_PER_TASK);
        for threads in 1..=16 {
            for n in (1..=2000).chain([51_864]) {
                let per = columns_per_task(n, threads);
                let tasks = n.div_ceil(per);
                let at = format!("{n} columns on {threads} threads: {tasks} tasks of {per}");
                assert_eq!(per % COLUMN_GROUP, 0, "{at}");
                // Every column in one task, none empty.
                assert!((tasks - 1) * per < n && n <= tasks * per, "{at}");
                assert!(per <= COLUMNS_PER_TASK + COLUMN_GROUP, "{at}");
                assert!(per >= MIN_COLUMNS_PER_TASK.min(n), "{at}");
                // Never fewer tasks than the plain split into COLUMNS_PER_TASK.
                assert!(tasks >= n.div_ceil(COLUMNS_PER_TASK + COLUMN_GROUP), "{at}");
            }
        }
    }

    #[test]
    fn skinny_nn_matches_f64() {
        let mut seed = 9;
        for &(m, t, dh, pad) in
            &[(1, 1, 1, 0), (5, 1500, 64, 320), (3, 17, 33, 0), (7, 40, 64, 0), (2, 33, 130, 3), (6, 9, 128, 0)]
        {
            let v_rs = dh + pad;
            let p: Vec<f32> = (0..m * t).map(|i| if i % 5 == 0 { 0.0 } else { rnd(&mut seed) }).collect();
            let v: Vec<f32> = (0..t * v_rs).map(|_| rnd(&mut seed)).collect();
            for level in [SimdLevel::Portable, SimdLevel::detect()] {
                let mut out = vec![0.0f32; m * dh];
                skinny_nn(level, m, t, dh, &p, &v, v_rs, &mut out);
                for r in 0..m {
                    for c in 0..dh {
                        let want: f64 = (0..t).map(|j| p[r * t + j] as f64 * v[j * v_rs + c] as f64).sum();
                        let got = out[r * dh + c] as f64;
                        assert!((got - want).abs() < 1e-4, "{level:?} {m}x{t}x{dh}: {got} vs {want}");
                    }
                }
            }
        }
    }

    /// The AVX-512 kernel gives the auto-vectorised bits (multiplies then adds, in the same
    /// order), over f32 values and over f16 ones, which give the bits of their widened values.
    #[test]
    fn skinny_nn_kernels_agree_bit_for_bit() {
        let mut seed = 19;
        for &(m, t, dh, pad) in &[(1, 1, 64, 0), (5, 1500, 64, 320), (6, 41, 128, 0), (3, 7, 64, 5), (7, 9, 64, 0)] {
            let v_rs = dh + pad;
            let p: Vec<f32> = (0..m * t).map(|_| rnd(&mut seed)).collect();
            let v16: Vec<half::f16> = (0..t * v_rs).map(|_| half::f16::from_f32(rnd(&mut seed))).collect();
            let v32: Vec<f32> = v16.iter().map(|v| v.to_f32()).collect();
            let run = |level: SimdLevel, half: bool| {
                let mut out = vec![0.25f32; m * dh];
                if half {
                    skinny_nn(level, m, t, dh, &p, &v16, v_rs, &mut out);
                } else {
                    skinny_nn(level, m, t, dh, &p, &v32, v_rs, &mut out);
                }
                out.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
            };
            let want = run(SimdLevel::Portable, false);
            for level in [SimdLevel::Portable, SimdLevel::Avx2.min(SimdLevel::detect()), SimdLevel::detect()] {
                for half in [false, true] {
                    assert_eq!(run(level, half), want, "{level:?} f16 {half}: {m}x{t}x{dh}");
                }
            }
        }
    }
}
