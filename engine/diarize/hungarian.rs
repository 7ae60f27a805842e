//! scipy's `linear_sum_assignment` (scipy 1.17.1 `optimize/_lsap.py` →
//! `optimize/rectangular_lsap/rectangular_lsap.cpp`, Crouse's shortest augmenting path for
//! rectangular matrices, DOI 10.1109/TAES.2016.7738348), ported step for step so that ties are
//! broken as scipy breaks them: rows are augmented in order, the remaining columns scanned from
//! the last to the first, and among equally short paths an unassigned column (one that ends the
//! augmentation) is preferred.
//!
//! pyannote's `constrained_argmax` (pyannote.audio 4.0.7 `pipelines/clustering.py` L127–140)
//! calls it per chunk on the (local speakers × clusters) scores with `maximize=True`.

use crate::{Error, Result};

/// `linear_sum_assignment(cost, maximize)` of a row-major `rows × cols` matrix: the pairs
/// `(row, col)` of an optimal assignment of `min(rows, cols)` rows to distinct columns, sorted by
/// row (scipy's `row_ind, col_ind`). NaN or (after negating for `maximize`) −∞ entries make the
/// matrix infeasible, as in scipy; so does a matrix with no finite complete assignment.
pub fn linear_sum_assignment(cost: &[f64], rows: usize, cols: usize, maximize: bool) -> Result<Vec<(usize, usize)>> {
    if cost.len() != rows * cols {
        return Err(Error::shape(
            "diarize::hungarian::linear_sum_assignment",
            format!("{} values for a {rows}×{cols} matrix", cost.len()),
        ));
    }
    if rows == 0 || cols == 0 {
        return Ok(Vec::new());
    }
    // Work on a matrix with at least as many columns as rows.
    let transpose = cols < rows;
    let (nr, nc) = if transpose { (cols, rows) } else { (rows, cols) };
    let mut c = vec![0.0f64; nr * nc];
    for i in 0..nr {
        for j in 0..nc {
            let v = if transpose { cost[j * cols + i] } else { cost[i * cols + j] };
            c[i * nc + j] = if maximize { -v } else { v };
        }
    }
    if c.iter().any(|&v| v.is_nan() || v == f64::NEG_INFINITY) {
        return Err(Error::Other("linear_sum_assignment: the cost matrix is invalid (NaN or −∞)".into()));
    }

    let mut u = vec![0.0f64; nr];
    let mut v = vec![0.0f64; nc];
    let mut shortest = vec![f64::INFINITY; nc];
    let mut path = vec![usize::MAX; nc];
    let mut col4row = vec![usize::MAX; nr];
    let mut row4col = vec![usize::MAX; nc];
    let mut sr = vec![false; nr];
    let mut sc = vec![false; nc];
    let mut remaining = vec![0usize; nc];

    for cur_row in 0..nr {
        let (sink, min_val) = augmenting_path(
            &c,
            nc,
            &u,
            &v,
            &mut path,
            &row4col,
            &mut shortest,
            cur_row,
            &mut sr,
            &mut sc,
            &mut remaining,
        )
        .ok_or_else(|| Error::Other("linear_sum_assignment: the cost matrix is infeasible".into()))?;

        // Update the dual variables.
        u[cur_row] += min_val;
        for i in 0..nr {
            if sr[i] && i != cur_row {
                u[i] += min_val - shortest[col4row[i]];
            }
        }
        for j in 0..nc {
            if sc[j] {
                v[j] -= min_val - shortest[j];
            }
        }

        // Augment the previous solution along the path.
        let mut j = sink;
        loop {
            let i = path[j];
            row4col[j] = i;
            std::mem::swap(&mut col4row[i], &mut j);
            if i == cur_row {
                break;
            }
        }
    }

    Ok(if transpose {
        // Rows of the transposed matrix are the original columns: sort by original row.
        let mut order: Vec<usize> = (0..nr).collect();
        order.sort_by_key(|&i| col4row[i]);
        order.into_iter().map(|i| (col4row[i], i)).collect()
    } else {
        (0..nr).map(|i| (i, col4row[i])).collect()
    })
}

/// `augmenting_path`: Dijkstra over the reduced costs from row `i`; the sink column and the
/// path length, or None when no column is reachable at finite cost.
#[allow(clippy::too_many_arguments)]
fn augmenting_path(
    cost: &[f64],
    nc: usize,
    u: &[f64],
    v: &[f64],
    path: &mut [usize],
    row4col: &[usize],
    shortest: &mut [f64],
    mut i: usize,
    sr: &mut [bool],
    sc: &mut [bool],
    remaining: &mut [usize],
) -> Option<(usize, f64)> {
    let mut min_val = 0.0f64;
    // Columns still to visit, filled in reverse order (scipy's `remaining[it] = nc - it - 1`).
    let mut num_remaining = nc;
    for (it, r) in remaining.iter_mut().enumerate() {
        *r = nc - it - 1;
    }
    sr.fill(false);
    sc.fill(false);
    shortest.fill(f64::INFINITY);

    loop {
        let mut index = usize::MAX;
        let mut lowest = f64::INFINITY;
        sr[i] = true;
        for (it, &j) in remaining[..num_remaining].iter().enumerate() {
            let r = min_val + cost[i * nc + j] - u[i] - v[j];
            if r < shortest[j] {
                path[j] = i;
                shortest[j] = r;
            }
            // The smallest reduced cost; on a tie, a column that completes the augmentation.
            if shortest[j] < lowest || (shortest[j] == lowest && row4col[j] == usize::MAX) {
                lowest = shortest[j];
                index = it;
            }
        }
        min_val = lowest;
        if min_val == f64::INFINITY {
            return None;
        }
        let j = remaining[index];
        sc[j] = true;
        num_remaining -= 1;
        remaining[index] = remaining[num_remaining];
        if row4col[j] == usize::MAX {
            return Some((j, min_val));
        }
        i = row4col[j];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(cost: &[f64], cols: usize, pairs: &[(usize, usize)]) -> f64 {
        pairs.iter().map(|&(r, c)| cost[r * cols + c]).sum()
    }

    /// Every injective assignment of min(rows, cols) rows, by brute force.
    fn best_by_brute_force(cost: &[f64], rows: usize, cols: usize, maximize: bool) -> f64 {
        #[allow(clippy::too_many_arguments)]
        fn go(
            cost: &[f64],
            rows: usize,
            cols: usize,
            r: usize,
            used: &mut Vec<bool>,
            left: usize,
            acc: f64,
            best: &mut Vec<f64>,
        ) {
            if left == 0 {
                best.push(acc);
                return;
            }
            if r == rows {
                return;
            }
            // Row r unassigned (only when rows > cols leaves room).
            if rows - r > left {
                go(cost, rows, cols, r + 1, used, left, acc, best);
            }
            for c in 0..cols {
                if !used[c] {
                    used[c] = true;
                    go(cost, rows, cols, r + 1, used, left - 1, acc + cost[r * cols + c], best);
                    used[c] = false;
                }
            }
        }
        let mut all = Vec::new();
        go(cost, rows, cols, 0, &mut vec![false; cols], rows.min(cols), 0.0, &mut all);
        let it = all.into_iter();
        if maximize {
            it.fold(f64::NEG_INFINITY, f64::max)
        } else {
            it.fold(f64::INFINITY, f64::min)
        }
    }

    #[test]
    fn optimal_on_small_matrices_of_every_shape() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 7) as f64 - 3.0 // small integers: many ties
        };
        for rows in 1..=5 {
            for cols in 1..=5 {
                for maximize in [false, true] {
                    for _ in 0..20 {
                        let cost: Vec<f64> = (0..rows * cols).map(|_| next()).collect();
                        let pairs = linear_sum_assignment(&cost, rows, cols, maximize).unwrap();
                        assert_eq!(pairs.len(), rows.min(cols));
                        assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "sorted by row");
                        let mut cols_used: Vec<usize> = pairs.iter().map(|p| p.1).collect();
                        cols_used.sort();
                        cols_used.dedup();
                        assert_eq!(cols_used.len(), pairs.len(), "distinct columns");
                        let best = best_by_brute_force(&cost, rows, cols, maximize);
                        assert_eq!(total(&cost, cols, &pairs), best, "{rows}×{cols} {cost:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn ties_go_as_in_scipy() {
        // scipy: linear_sum_assignment(np.zeros((2, 3))) == ([0, 1], [0, 1]);
        // linear_sum_assignment(np.zeros((3, 2))) == ([0, 1], [0, 1]).
        assert_eq!(linear_sum_assignment(&[0.0; 6], 2, 3, false).unwrap(), vec![(0, 0), (1, 1)]);
        assert_eq!(linear_sum_assignment(&[0.0; 6], 3, 2, true).unwrap(), vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn invalid_matrices_are_errors() {
        assert!(linear_sum_assignment(&[f64::NAN, 1.0], 1, 2, false).is_err());
        assert!(linear_sum_assignment(&[f64::INFINITY, 1.0], 1, 2, true).is_err());
        assert!(linear_sum_assignment(&[f64::INFINITY, f64::INFINITY], 2, 1, false).is_err());
        assert!(linear_sum_assignment(&[1.0], 1, 2, false).is_err());
        assert!(linear_sum_assignment(&[], 0, 3, false).unwrap().is_empty());
    }
}
