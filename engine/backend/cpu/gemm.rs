//! Single-precision GEMM: `C[m, n] (+)= A[m, k] · B[k, n]` with arbitrary row/column strides for
//! A and B and a row-major C. SIMD levels go through the `gemm` crate (it packs operands and
//! dispatches on the CPU's features at run time); the portable level uses our blocked kernel.

use rayon::prelude::*;

use super::simd::SimdLevel;

/// A strided read-only matrix: element (r, c) is at `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        MatRef { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major `[rows, cols]` matrix, seen as `[cols, rows]`.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        MatRef { data, rs: 1, cs: cols }
    }
    /// Whether every element of a `rows × cols` view lies inside `data` (checked arithmetic: a
    /// stride that overflows is out of bounds).
    fn fits(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        let last =
            (rows - 1).checked_mul(self.rs).zip((cols - 1).checked_mul(self.cs)).and_then(|(r, c)| r.checked_add(c));
        last.is_some_and(|i| i < self.data.len())
    }
}

/// `c[m, n] = (accumulate ? c : 0) + a · b`; `c` is row-major with row stride `c_rs`.
/// `parallel` lets the GEMM use the rayon pool (leave it off when the caller already runs
/// GEMMs in parallel).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    level: SimdLevel,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert_in_bounds(m, n, k, a, b, c, c_rs);
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * c_rs..i * c_rs + n].fill(0.0);
            }
        }
        return;
    }
    match level {
        SimdLevel::Portable => portable_sgemm(m, n, k, a, b, c, c_rs, accumulate, parallel),
        _ => {
            let par =
                if worth_threads(parallel, m, n, k) { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
            // SAFETY: the bounds of all three matrices were checked above.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    c_rs as isize,
                    accumulate,
                    a.data.as_ptr(),
                    a.cs as isize,
                    a.rs as isize,
                    b.data.as_ptr(),
                    b.cs as isize,
                    b.rs as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                )
            }
        }
    }
}

/// [`sgemm`] for a product whose B is a layer's weights and whose A is the activations, many
/// rows of them (`nn.Linear` above the skinny sizes, the LSTMs' input projections): on AVX-512
/// B is packed into panels once per call and each tile of A's rows runs through a register
/// tile ([`super::gemm_avx512`]); elsewhere, and when A is not row-strided, it is [`sgemm`].
/// Products where B is the big operand (im2col columns) or `k` is a head's width (attention)
/// stay on [`sgemm`], which packs both sides in cache-sized blocks.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_weights(
    level: SimdLevel,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    parallel: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Avx512 && a.cs == 1 && m > 0 && n > 0 && k > 0 {
        assert_in_bounds(m, n, k, a, b, c, c_rs);
        let threads = if worth_threads(parallel, m, n, k) { rayon::current_num_threads() } else { 1 };
        // SAFETY: the level was detected on this CPU; the bounds were checked above.
        unsafe { super::gemm_avx512::sgemm(m, n, k, a, b, c, c_rs, accumulate, threads) };
        return;
    }
    sgemm(level, m, n, k, a, b, c, c_rs, accumulate, parallel)
}

/// Every element of A `[m, k]`, B `[k, n]` and C `[m, n]` (rows `c_rs` apart, never overlapping)
/// lies inside its slice (`m` and `n` above 0; with `k` 0, A and B are not read).
fn assert_in_bounds(m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>, c: &[f32], c_rs: usize) {
    assert!(k == 0 || a.fits(m, k), "sgemm: A out of bounds");
    assert!(k == 0 || b.fits(k, n), "sgemm: B out of bounds");
    assert!(m == 1 || c_rs >= n, "sgemm: rows of C overlap (row stride {c_rs} < {n} columns)");
    let end = (m - 1).checked_mul(c_rs).and_then(|x| x.checked_add(n));
    assert!(end.is_some_and(|end| end <= c.len()), "sgemm: C out of bounds");
}

/// Below this many multiply-adds a GEMM runs on one thread (thread wake-up costs more).
const PARALLEL_MIN_FLOPS: usize = 1 << 17;

/// Whether a GEMM allowed to use the pool (`parallel`) is big enough to.
pub(super) fn worth_threads(parallel: bool, m: usize, n: usize, k: usize) -> bool {
    parallel && m * n * k >= PARALLEL_MIN_FLOPS
}
/// Column block of the portable kernel: one block of B rows stays in L1/L2.
const PORTABLE_NC: usize = 256;

#[allow(clippy::too_many_arguments)]
fn portable_sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    c_rs: usize,
    accumulate: bool,
    parallel: bool,
) {
    // Pack B row-major so the inner loop runs over contiguous memory.
    let packed: Vec<f32>;
    let (bd, b_rs) = if b.cs == 1 {
        (b.data, b.rs)
    } else {
        let mut p = vec![0.0f32; k * n];
        for r in 0..k {
            for col in 0..n {
                p[r * n + col] = b.data[r * b.rs + col * b.cs];
            }
        }
        packed = p;
        (&packed[..], n)
    };
    let row = |i: usize, out: &mut [f32]| {
        let out = &mut out[..n];
        if !accumulate {
            out.fill(0.0);
        }
        for j0 in (0..n).step_by(PORTABLE_NC) {
            let j1 = (j0 + PORTABLE_NC).min(n);
            for p in 0..k {
                let av = a.data[i * a.rs + p * a.cs];
                let brow = &bd[p * b_rs + j0..p * b_rs + j1];
                for (o, &bv) in out[j0..j1].iter_mut().zip(brow) {
                    *o += av * bv;
                }
            }
        }
    };
    if m > 1 && worth_threads(parallel, m, n, k) {
        c.par_chunks_mut(c_rs).take(m).enumerate().for_each(|(i, out)| row(i, out));
    } else {
        for (i, out) in c.chunks_mut(c_rs).take(m).enumerate() {
            row(i, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: MatRef, b: MatRef) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    type Sgemm = fn(SimdLevel, usize, usize, usize, MatRef, MatRef, &mut [f32], usize, bool, bool);

    #[test]
    fn every_level_matches_naive_on_odd_shapes() {
        let mut seed = 1u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let levels = [SimdLevel::Portable, SimdLevel::detect()];
        for &(m, n, k) in &[(1, 1, 1), (3, 5, 7), (17, 33, 65), (64, 300, 129), (1, 51865, 8), (70, 1, 300)] {
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let bt: Vec<f32> = (0..n * k).map(|_| rnd()).collect(); // [n, k], used transposed
            let want = naive(m, n, k, MatRef::row_major(&a, k), MatRef::transposed(&bt, k));
            for (&level, product) in levels.iter().flat_map(|l| [(l, sgemm as Sgemm), (l, sgemm_weights as Sgemm)]) {
                for accumulate in [false, true] {
                    let mut c = vec![1.0f32; m * n];
                    product(
                        level,
                        m,
                        n,
                        k,
                        MatRef::row_major(&a, k),
                        MatRef::transposed(&bt, k),
                        &mut c,
                        n,
                        accumulate,
                        true,
                    );
                    for (i, (&g, &w)) in c.iter().zip(&want).enumerate() {
                        let w = if accumulate { w + 1.0 } else { w };
                        assert!((g - w).abs() <= 1e-4 + 1e-4 * w.abs(), "{level:?} {m}x{n}x{k} [{i}]: {g} vs {w}");
                    }
                }
            }
        }
    }

    /// [`sgemm_weights`] (the AVX-512 kernel where the CPU has it) at its edges: rows that fill
    /// no whole tile or row block, panels cut short, row-strided A, row-major B, C rows with
    /// room after them (left alone), each way of splitting the work (rows, panels, one thread).
    #[test]
    fn strided_operands_and_ragged_tiles_match_naive() {
        let mut seed = 7u32;
        let mut rnd = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let cases = [(1, 47, 3), (9, 300, 129), (8, 48, 64), (13, 49, 17), (130, 97, 65), (70, 1, 300), (200, 145, 5)];
        for &(m, n, k) in &cases {
            let (a_rs, b_rs, c_rs) = (k + 3, n + 5, n + 2);
            let a: Vec<f32> = (0..m * a_rs).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..k * b_rs).map(|_| rnd()).collect();
            let (am, bm) = (MatRef { data: &a, rs: a_rs, cs: 1 }, MatRef { data: &b, rs: b_rs, cs: 1 });
            let want = naive(m, n, k, am, bm);
            for parallel in [false, true] {
                for accumulate in [false, true] {
                    let mut c = vec![2.0f32; (m - 1) * c_rs + n];
                    sgemm_weights(SimdLevel::detect(), m, n, k, am, bm, &mut c, c_rs, accumulate, parallel);
                    for i in 0..m {
                        for j in 0..c_rs.min(c.len() - i * c_rs) {
                            let (got, w) = (c[i * c_rs + j], if j < n { want[i * n + j] } else { 0.0 });
                            let w = if j >= n || accumulate { w + 2.0 } else { w };
                            assert!((got - w).abs() <= 1e-4 + 1e-4 * w.abs(), "{m}x{n}x{k} ({i}, {j}): {got} vs {w}");
                        }
                    }
                }
            }
        }
    }

    /// An operand too short for its shape is refused before any kernel reads it, on every path
    /// (an empty A once passed: its bound was taken against a length of at least 1).
    #[test]
    fn short_operands_are_refused() {
        let b = vec![1.0f32; 4 * 3];
        for product in [sgemm as Sgemm, sgemm_weights as Sgemm] {
            for level in [SimdLevel::Portable, SimdLevel::detect()] {
                let run = |a: &[f32]| {
                    let mut c = vec![0.0f32; 2 * 3];
                    let (a, b) = (MatRef::row_major(a, 4), MatRef::row_major(&b, 3));
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        product(level, 2, 3, 4, a, b, &mut c, 3, false, false)
                    }))
                    .is_err()
                };
                assert!(run(&[]), "{level:?}: empty A accepted");
                assert!(run(&[1.0; 7]), "{level:?}: A of 7 for [2, 4] accepted");
                assert!(!run(&[1.0; 8]), "{level:?}: A of [2, 4] refused");
                // A row stride whose bound overflows, rows of C that overlap.
                let a = [1.0f32; 8];
                let huge = MatRef { data: &a, rs: 1 << 63, cs: 1 };
                let mut c = vec![0.0f32; 3 * 3];
                let caught = |f: &mut dyn FnMut()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
                let bm = MatRef::row_major(&b, 3);
                assert!(caught(&mut || product(level, 3, 3, 4, huge, bm, &mut c, 3, false, false)), "{level:?}");
                let am = MatRef::row_major(&a, 4);
                assert!(caught(&mut || product(level, 2, 3, 4, am, bm, &mut c, 2, false, false)), "{level:?}");
            }
        }
    }
}
