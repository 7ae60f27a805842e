//! scipy's pairwise distances in float64, in scipy 1.17.1's order of operations:
//! `pdist(x, "euclidean")` (`spatial/src/distance_metrics.h` `EuclideanDistance`,
//! `transform_reduce_2d_`: each sum over the dimensions in order) and `cdist(a, b, "cosine")`
//! (`spatial/src/distance_impl.h` `cdist_cosine`, `_row_norms`, `dot_product`: sums the
//! x86-64 wheel's compiler vectorised two doubles wide, see [`two_lane_dot`]).

use rayon::prelude::*;

/// Rows whose distances are accumulated side by side (scipy's `ilp_factor`; each sum keeps its
/// own order, so this changes only the speed).
const ILP: usize = 4;

/// Index of the pair (i, j), i ≠ j, in a condensed distance matrix of `n` observations
/// (scipy's `condensed_index`).
#[inline]
pub fn condensed_index(n: usize, i: usize, j: usize) -> usize {
    let (i, j) = if i < j { (i, j) } else { (j, i) };
    n * i - (i * (i + 1)) / 2 + (j - i - 1)
}

/// `pdist(x, "euclidean")` of `n` rows of `dim` values: the condensed matrix, pairs (0,1),
/// (0,2), …, (1,2), …; each distance `sqrt(Σ_d |x_i,d − x_j,d|²)` summed in order.
pub fn pdist_euclidean(x: &[f64], dim: usize) -> Vec<f64> {
    let n = x.len().checked_div(dim).unwrap_or(0);
    let mut out = vec![0.0f64; n * n.saturating_sub(1) / 2];
    // One slice of the condensed matrix per row i (its pairs with j > i).
    let mut rows: Vec<(usize, &mut [f64])> = Vec::with_capacity(n);
    let mut rest = out.as_mut_slice();
    for i in 0..n.saturating_sub(1) {
        let (row, tail) = rest.split_at_mut(n - 1 - i);
        rows.push((i, row));
        rest = tail;
    }
    rows.into_par_iter().for_each(|(i, row)| {
        let u = &x[i * dim..(i + 1) * dim];
        let mut j = i + 1;
        let mut slots = row.chunks_mut(ILP);
        while j + ILP <= n {
            let slot = slots.next().expect("a slot per ILP rows");
            let vs: [&[f64]; ILP] = std::array::from_fn(|k| &x[(j + k) * dim..(j + k + 1) * dim]);
            let mut acc = [0.0f64; ILP];
            for d in 0..dim {
                for k in 0..ILP {
                    let diff = (u[d] - vs[k][d]).abs();
                    acc[k] += diff * diff;
                }
            }
            for k in 0..ILP {
                slot[k] = acc[k].sqrt();
            }
            j += ILP;
        }
        if let Some(slot) = slots.next() {
            for (k, s) in slot.iter_mut().enumerate() {
                let v = &x[(j + k) * dim..(j + k + 1) * dim];
                let mut acc = 0.0f64;
                for d in 0..dim {
                    let diff = (u[d] - v[d]).abs();
                    acc += diff * diff;
                }
                *s = acc.sqrt();
            }
        }
    });
    out
}

/// `dot_product` (and `_row_norms`' sum of squares) as the scipy 1.17.1 manylinux x86-64
/// wheel runs it: its compiler turned the loop into two-double vectors, so the even and the odd
/// terms are summed apart, then added, then an odd last term is added. Checked bit for bit
/// against that wheel's `cdist(..., "cosine")` for lengths 1–7 and 255–257; a plain sequential
/// sum differs in the last bit for about 1 pair in 7.
pub fn two_lane_dot(u: &[f64], v: &[f64]) -> f64 {
    let pairs = u.len() / 2 * 2;
    let (mut even, mut odd) = (0.0f64, 0.0f64);
    for i in (0..pairs).step_by(2) {
        even += u[i] * v[i];
        odd += u[i + 1] * v[i + 1];
    }
    let mut s = even + odd;
    for i in pairs..u.len() {
        s += u[i] * v[i];
    }
    s
}

/// scipy's `_row_norms`: the Euclidean norm of each row.
fn row_norms(x: &[f64], dim: usize) -> Vec<f64> {
    x.chunks_exact(dim).map(|row| two_lane_dot(row, row).sqrt()).collect()
}

/// `cdist(a, b, "cosine")`: `[rows of a][rows of b]` of `1 − a·b / (|a| |b|)`, the cosine
/// clipped to ±1 first (scipy's correction of rounding). NaN rows give NaN.
pub fn cdist_cosine(a: &[f64], b: &[f64], dim: usize) -> Vec<f64> {
    let (norms_a, norms_b) = (row_norms(a, dim), row_norms(b, dim));
    let mut out = Vec::with_capacity(norms_a.len() * norms_b.len());
    for (u, nu) in a.chunks_exact(dim).zip(&norms_a) {
        for (v, nv) in b.chunks_exact(dim).zip(&norms_b) {
            let mut cosine = two_lane_dot(u, v) / (nu * nv);
            if cosine.abs() > 1.0 {
                cosine = 1.0f64.copysign(cosine);
            }
            out.push(1.0 - cosine);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condensed_order_is_scipys() {
        assert_eq!(condensed_index(4, 0, 1), 0);
        assert_eq!(condensed_index(4, 0, 3), 2);
        assert_eq!(condensed_index(4, 2, 1), 3);
        assert_eq!(condensed_index(4, 2, 3), 5);
    }

    #[test]
    fn euclidean_pairs_in_condensed_order() {
        // Seven points so that both the side-by-side and the remainder paths run.
        let x: Vec<f64> = (0..7).flat_map(|i| [i as f64, (i * i) as f64]).collect();
        let d = pdist_euclidean(&x, 2);
        assert_eq!(d.len(), 21);
        for i in 0..7 {
            for j in i + 1..7 {
                let (a, b) = ((j - i) as f64, (j * j - i * i) as f64);
                assert_eq!(d[condensed_index(7, i, j)], (a * a + b * b).sqrt());
            }
        }
        assert!(pdist_euclidean(&[1.0, 2.0], 2).is_empty());
    }

    #[test]
    fn dot_products_sum_even_and_odd_terms_apart() {
        // (1e16 + 1) − 1e16 + 1 sequentially is 1; even terms 1e16 − 1e16 = 0, odd 1 + 1 = 2.
        let u = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(two_lane_dot(&u, &[1.0; 4]), 2.0);
        // An odd last term comes after the two lanes are added: (1 + 1e16) + 1, not (1 + 1) + 1e16.
        assert_eq!(two_lane_dot(&[1.0, 1e16, 1.0], &[1.0; 3]), 1e16);
        assert_eq!(two_lane_dot(&[3.0], &[2.0]), 6.0);
    }

    #[test]
    fn cosine_is_clipped_and_nan_propagates() {
        let d = cdist_cosine(&[1.0, 0.0, f64::NAN, 0.0], &[2.0, 0.0, 0.0, 3.0], 2);
        assert_eq!(d[0], 0.0);
        assert_eq!(d[1], 1.0);
        assert!(d[2].is_nan() && d[3].is_nan());
        // Parallel vectors whose cosine rounds above 1 are clipped to distance 0.
        let v = [0.1f64, 0.7, 0.3];
        let w: Vec<f64> = v.iter().map(|x| x * 3.0).collect();
        assert!(cdist_cosine(&v, &w, 3)[0] >= 0.0);
    }
}
