//! Single-precision GEMM on AVX-512 for a row-major (or row-strided) A:
//! `C[m, n] (+)= A[m, k] · B[k, n]`.
//!
//! B is packed once per call into panels of [`PANEL`] columns, each `k` rows of 48 contiguous
//! floats (zero beyond column `n`). A register tile of [`TILE_ROWS`] rows × one panel keeps its
//! 24 accumulators in zmm registers for the whole of `k`: per step three loads of the panel and
//! one broadcast of A per row, 24 fused multiply-adds. Rows of C are split among the threads
//! when there are enough of them, else the panels are.

use rayon::prelude::*;

use super::gemm::MatRef;
use super::shared_out::SharedOut;

/// Columns of one panel of B: three registers of 16.
pub const PANEL: usize = 48;
/// Rows of one register tile (8 × 3 = 24 accumulators).
pub const TILE_ROWS: usize = 8;
/// Rows of A swept against one panel before the next (the A block stays in L2).
const ROW_BLOCK: usize = 64;

/// `c[m, n] = (accumulate ? c : 0) + a · b`, `c` row-major with row stride `c_rs`.
///
/// # Safety
/// The CPU must have AVX-512F. `a.cs` must be 1; the caller checked that every index of A, B
/// and C is in bounds.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    threads: usize,
) {
    assert_eq!(a.cs, 1, "gemm_avx512: A must be row-strided");
    let panels = n.div_ceil(PANEL);
    let packed = pack_b(k, n, b, threads);
    let out = SharedOut::new(c);
    // One task: rows `rows` of C against panels `panels`.
    let task = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        for r_block in rows.clone().step_by(ROW_BLOCK) {
            let r_end = (r_block + ROW_BLOCK).min(rows.end);
            for p in cols.clone() {
                let panel = &packed[p * k * PANEL..(p + 1) * k * PANEL];
                let (col, width) = (p * PANEL, PANEL.min(n - p * PANEL));
                for r0 in (r_block..r_end).step_by(TILE_ROWS) {
                    let tile_rows = TILE_ROWS.min(r_end - r0);
                    let mut c_rows = [std::ptr::null_mut::<f32>(); TILE_ROWS];
                    for (i, ptr) in c_rows.iter_mut().take(tile_rows).enumerate() {
                        // SAFETY: tasks own disjoint rows × panels, so segments never overlap.
                        *ptr = unsafe { out.segment((r0 + i) * c_rs + col, width) }.as_mut_ptr();
                    }
                    let a_rows = &a.data[r0 * a.rs..];
                    // SAFETY: AVX-512F (this function's contract); `a_rows` holds `tile_rows`
                    // rows of `k` floats `a.rs` apart, the panel `k` × 48, each C row `width`.
                    unsafe {
                        tile_any(tile_rows, a_rows.as_ptr(), a.rs, panel.as_ptr(), k, &c_rows, width, accumulate)
                    };
                }
            }
        }
    };
    let row_tasks = m.div_ceil(TILE_ROWS);
    if threads <= 1 {
        task(0..m, 0..panels);
    } else if row_tasks >= 2 * threads || panels < threads {
        // Whole tiles of rows per task, as evenly as they go.
        let per_task = row_tasks.div_ceil(threads) * TILE_ROWS;
        (0..m.div_ceil(per_task))
            .into_par_iter()
            .for_each(|t| task(t * per_task..m.min((t + 1) * per_task), 0..panels));
    } else {
        let per_task = panels.div_ceil(threads);
        (0..panels.div_ceil(per_task))
            .into_par_iter()
            .for_each(|t| task(0..m, t * per_task..panels.min((t + 1) * per_task)));
    }
}

/// B `[k, n]` as panels: `packed[p][kk][j] = b[kk, p·48 + j]`, zero beyond column `n`.
fn pack_b(k: usize, n: usize, b: MatRef<'_>, threads: usize) -> Vec<f32> {
    let panels = n.div_ceil(PANEL);
    let mut packed = vec![0.0f32; panels * k * PANEL];
    let pack_panel = |(p, dst): (usize, &mut [f32])| {
        let width = PANEL.min(n - p * PANEL);
        if b.cs == 1 {
            for (kk, row) in dst.chunks_exact_mut(PANEL).enumerate() {
                let src = &b.data[kk * b.rs + p * PANEL..][..width];
                row[..width].copy_from_slice(src);
            }
        } else {
            for j in 0..width {
                let col = (p * PANEL + j) * b.cs;
                for (kk, row) in dst.chunks_exact_mut(PANEL).enumerate() {
                    row[j] = b.data[kk * b.rs + col];
                }
            }
        }
    };
    if threads > 1 && panels > 1 {
        packed.par_chunks_mut(k * PANEL).enumerate().for_each(pack_panel);
    } else {
        packed.chunks_mut(k * PANEL).enumerate().for_each(pack_panel);
    }
    packed
}

/// Dispatch a tile of 1..=8 rows to its kernel.
///
/// # Safety
/// As [`tile`].
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile_any(
    rows: usize,
    a: *const f32,
    lda: usize,
    panel: *const f32,
    k: usize,
    c: &[*mut f32; TILE_ROWS],
    width: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::__mmask16;
    let mask = |v: usize| -> __mmask16 {
        let lanes = width.saturating_sub(16 * v).min(16);
        ((1u32 << lanes) - 1) as __mmask16
    };
    let masks = [mask(0), mask(1), mask(2)];
    // The row counts listed are those of 1..=TILE_ROWS.
    const _: () = assert!(TILE_ROWS == 8);
    crate::backend::cpu::simd::for_rows!(rows, [1 2 3 4 5 6 7 8], tile(a, lda, panel, k, c, masks, accumulate))
}

/// `R` rows of C × one panel: `c[r, ..] (+)= Σ_kk a[r, kk] · panel[kk, ..]`, the three vectors of
/// each row stored under `masks` (the panel's valid columns).
///
/// # Safety
/// AVX-512F; `a` holds `R` rows of `k` floats `lda` apart, `panel` `k` × 48 floats, and each of
/// the first `R` pointers of `c` the columns its masks select.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)]
unsafe fn tile<const R: usize>(
    a: *const f32,
    lda: usize,
    panel: *const f32,
    k: usize,
    c: &[*mut f32; TILE_ROWS],
    masks: [std::arch::x86_64::__mmask16; 3],
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 3]; R];
    // Vectors wholly past the panel's valid columns (mask 0) are not even addressed: their
    // pointer could lie beyond the end of C.
    if accumulate {
        for r in 0..R {
            for v in 0..3 {
                if masks[v] != 0 {
                    acc[r][v] = _mm512_maskz_loadu_ps(masks[v], c[r].add(16 * v));
                }
            }
        }
    }
    for kk in 0..k {
        let b = panel.add(kk * PANEL);
        let bv = [_mm512_loadu_ps(b), _mm512_loadu_ps(b.add(16)), _mm512_loadu_ps(b.add(32))];
        for r in 0..R {
            let x = _mm512_set1_ps(*a.add(r * lda + kk));
            for v in 0..3 {
                acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
            }
        }
    }
    for r in 0..R {
        for v in 0..3 {
            if masks[v] != 0 {
                _mm512_mask_storeu_ps(c[r].add(16 * v), masks[v], acc[r][v]);
            }
        }
    }
}
