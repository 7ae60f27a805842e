//! scipy's `fcluster(Z, t, criterion="distance")` (scipy 1.17.1 `cluster/hierarchy.py`
//! `fcluster` → `_hierarchy.cluster_dist`): a subtree is one flat cluster when the *largest*
//! merge height inside it (`get_max_dist_for_each_cluster`), not its own top height, is at most
//! `t`. With centroid linkage a merge can be lower than one below it, and then only this
//! maximum keeps the flat clusters nested. Clusters are numbered 1, 2, … in the order
//! `cluster_monocrit`'s depth-first walk (left child first) meets them.

use super::linkage::Merge;

/// `get_max_dist_for_each_cluster`: for each merge, the largest height in its subtree.
/// (scipy's `>` comparisons: a NaN below never raises the maximum.)
pub fn max_heights(z: &[Merge]) -> Vec<f64> {
    let n = z.len() + 1;
    let mut md = vec![0.0f64; z.len()];
    // Children are formed by earlier rows, so one pass in row order sees them first; this
    // gives scipy's post-order result.
    for (k, m) in z.iter().enumerate() {
        let mut max = m.height;
        for child in [m.left, m.right] {
            if child >= n && md[child - n] > max {
                max = md[child - n];
            }
        }
        md[k] = max;
    }
    md
}

/// `cluster_monocrit(Z, MC, T, cutoff, n)`: flat clusters (1-based) of the `n = z.len() + 1`
/// observations, a subtree being one cluster when `mc` of its root is at most `cutoff`.
/// scipy's iterative walk from the root with a visited set, ported as it is.
pub fn cluster_monocrit(z: &[Merge], mc: &[f64], cutoff: f64) -> Vec<i32> {
    let n = z.len() + 1;
    let mut t = vec![0i32; n];
    if z.is_empty() {
        // scipy requires n ≥ 2; one observation is one cluster.
        t.fill(1);
        return t;
    }
    let mut visited = vec![false; 2 * n - 1];
    let mut curr_node = vec![0usize; n];
    let mut n_cluster = 0i32;
    let mut cluster_leader: Option<usize> = None;
    let mut k: isize = 0;
    curr_node[0] = 2 * n - 2;
    while k >= 0 {
        let root = curr_node[k as usize] - n;
        let (lc, rc) = (z[root].left, z[root].right);
        if cluster_leader.is_none() && mc[root] <= cutoff {
            cluster_leader = Some(root);
            n_cluster += 1;
        }
        if lc >= n && !visited[lc] {
            visited[lc] = true;
            k += 1;
            curr_node[k as usize] = lc;
            continue;
        }
        if rc >= n && !visited[rc] {
            visited[rc] = true;
            k += 1;
            curr_node[k as usize] = rc;
            continue;
        }
        for leaf in [lc, rc] {
            if leaf < n {
                if cluster_leader.is_none() {
                    n_cluster += 1; // a singleton cluster
                }
                t[leaf] = n_cluster;
            }
        }
        if cluster_leader == Some(root) {
            cluster_leader = None;
        }
        k -= 1;
    }
    t
}

/// `fcluster(Z, t, criterion="distance")`: flat cluster labels 1, 2, … per observation.
pub fn fcluster_distance(z: &[Merge], t: f64) -> Vec<i32> {
    cluster_monocrit(z, &max_heights(z), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(rows: &[(usize, usize, f64, usize)]) -> Vec<Merge> {
        rows.iter().map(|&(left, right, height, size)| Merge { left, right, height, size }).collect()
    }

    /// The equilateral triangle and a far point (see linkage.rs): merge 1 (√3/2) is lower than
    /// merge 0 (~1) beneath it.
    fn triangle() -> Vec<Merge> {
        z(&[(0, 2, 0.9999999999999999, 2), (1, 4, 0.8660254037844386, 3), (3, 5, 9.504384952922168, 4)])
    }

    #[test]
    fn a_subtree_is_cut_by_its_highest_merge() {
        let z = triangle();
        assert_eq!(max_heights(&z), vec![0.9999999999999999, 0.9999999999999999, 9.504384952922168]);
        // scipy: fcluster(Z, 0.9) == [1, 3, 2, 4]: merge 1 is below 0.9 but holds merge 0.
        assert_eq!(fcluster_distance(&z, 0.9), vec![1, 3, 2, 4]);
        assert_eq!(fcluster_distance(&z, 0.87), vec![1, 3, 2, 4]);
        // scipy: fcluster(Z, 1.0) == [1, 1, 1, 2].
        assert_eq!(fcluster_distance(&z, 1.0), vec![1, 1, 1, 2]);
    }

    #[test]
    fn clusters_are_numbered_in_depth_first_order() {
        // scipy: linkage([[0],[1],[3],[7],[7.5]], "centroid"), fcluster(Z, 2.5) == [2, 2, 2, 1, 1]:
        // the root's left child (the pair 3, 4) is met first.
        let z = z(&[(3, 4, 0.5, 2), (0, 1, 1.0, 2), (2, 6, 2.5, 3), (5, 7, 5.916666666666667, 5)]);
        assert_eq!(fcluster_distance(&z, 2.5), vec![2, 2, 2, 1, 1], "a height equal to t merges");
        // scipy: fcluster(Z, 0) == [3, 4, 5, 1, 2], fcluster(Z, 6) == [1, 1, 1, 1, 1].
        assert_eq!(fcluster_distance(&z, 0.0), vec![3, 4, 5, 1, 2]);
        assert_eq!(fcluster_distance(&z, 6.0), vec![1; 5]);
    }

    #[test]
    fn merge_indices_as_heights_cut_after_that_many_merges() {
        // pyannote's target search replaces the heights by 0, 1, … and cuts at an index.
        let mut z = triangle();
        for (k, m) in z.iter_mut().enumerate() {
            m.height = k as f64;
        }
        // scipy, heights [0, 1, 2]: fcluster(Z, 0) == [1, 2, 1, 3], fcluster(Z, 1) == [1, 1, 1, 2].
        assert_eq!(fcluster_distance(&z, 0.0), vec![1, 2, 1, 3]);
        assert_eq!(fcluster_distance(&z, 1.0), vec![1, 1, 1, 2]);
    }

    #[test]
    fn one_observation_is_one_cluster() {
        assert_eq!(fcluster_distance(&[], 0.5), vec![1]);
    }
}
