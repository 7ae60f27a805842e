//! numpy's float32 arithmetic as pyannote's clustering meets it: its embeddings are float32
//! arrays, so `np.linalg.norm`, `/=` and `np.mean` run in float32 with numpy's own summation
//! orders (numpy 2.4.6). Reproducing them bit for bit keeps the linkage's input, and so every
//! merge, identical to pyannote's.

/// numpy's `PW_BLOCKSIZE`: runs of at most this many elements are summed with 8 accumulators.
const PAIRWISE_BLOCK: usize = 128;
/// numpy's pairwise sum unrolls by 8.
const UNROLL: usize = 8;

/// `np.add.reduce` of a contiguous float32 run: numpy's `FLOAT_pairwise_sum`
/// (`numpy/_core/src/umath/loops_utils.h.src`). Below 8 elements a plain loop; up to 128,
/// 8 interleaved accumulators combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the
/// remainder in order; above, the two halves (the first a multiple of 8) summed recursively.
pub fn pairwise_sum(a: &[f32]) -> f32 {
    let n = a.len();
    if n < UNROLL {
        let mut res = 0.0f32;
        for &x in a {
            res += x;
        }
        res
    } else if n <= PAIRWISE_BLOCK {
        let mut r = [0.0f32; UNROLL];
        r.copy_from_slice(&a[..UNROLL]);
        let mut i = UNROLL;
        while i < n - n % UNROLL {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += UNROLL;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % UNROLL;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `x /= np.linalg.norm(x, axis=-1, keepdims=True)` on float32 rows of `dim` values, as
/// `AgglomerativeClustering.cluster` normalises before a centroid linkage: the norm is
/// `sqrt(add.reduce(x * x))` in float32, under `np.errstate(divide="ignore", invalid="ignore")`
/// (a zero row becomes NaN).
pub fn l2_normalize_rows(x: &mut [f32], dim: usize) {
    let mut squares = vec![0.0f32; dim];
    for row in x.chunks_exact_mut(dim) {
        for (s, &v) in squares.iter_mut().zip(row.iter()) {
            *s = v * v;
        }
        let norm = pairwise_sum(&squares).sqrt();
        for v in row.iter_mut() {
            *v /= norm;
        }
    }
}

/// `np.mean(x[rows], axis=0)` of float32 rows: the columns summed row after row in float32 (a
/// reduction over the outer axis is not pairwise), then numpy's `_mean` divides by the count
/// (`true_divide` with an `intp` count: float64, cast back to float32). No rows gives NaN.
pub fn mean_rows<'a>(rows: impl IntoIterator<Item = &'a [f32]>, dim: usize) -> Vec<f32> {
    let mut sum = vec![0.0f32; dim];
    let mut count = 0usize;
    for row in rows {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v;
        }
        count += 1;
    }
    sum.iter().map(|&s| (s as f64 / count as f64) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_keeps_numpys_order() {
        // numpy: np.add.reduce(np.array([1e8] + [1.0] * 200, dtype=np.float32)) == 1.0000019e8;
        // a sequential float32 sum would stay at 1e8.
        let mut a = vec![1e8f32];
        a.extend(std::iter::repeat_n(1.0f32, 200));
        assert_eq!(pairwise_sum(&a), 1.0000019e8);
        // np.add.reduce([1e8, 1, -1e8, 1] + [0.5] * 12) == 4.0 (accumulators r0 and r2 meet).
        let mut b = vec![1e8f32, 1.0, -1e8, 1.0];
        b.extend(std::iter::repeat_n(0.5f32, 12));
        assert_eq!(pairwise_sum(&b), 4.0);
        assert_eq!(pairwise_sum(&[]), 0.0);
        assert_eq!(pairwise_sum(&[1.5, 2.5]), 4.0);
    }

    #[test]
    fn rows_are_normalised_in_float32_and_zero_rows_become_nan() {
        let mut x = vec![3.0f32, 4.0, 0.0, 0.0];
        l2_normalize_rows(&mut x, 2);
        assert_eq!(&x[..2], &[0.6f32, 0.8]);
        assert!(x[2].is_nan() && x[3].is_nan());
    }

    #[test]
    fn mean_of_no_rows_is_nan() {
        let rows: [&[f32]; 2] = [&[1.0, 2.0], &[2.0, 5.0]];
        assert_eq!(mean_rows(rows, 2), vec![1.5, 3.5]);
        assert!(mean_rows(std::iter::empty(), 2).iter().all(|v| v.is_nan()));
    }
}
