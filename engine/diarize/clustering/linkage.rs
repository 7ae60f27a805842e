//! scipy's `linkage(x, method="centroid", metric="euclidean")` (scipy 1.17.1
//! `cluster/hierarchy.py` `linkage`): `pdist` to a condensed matrix, then — centroid linkage
//! being neither single nor reducible — `_hierarchy.fast_linkage`, Müllner's "generic
//! clustering algorithm" (arXiv:1109.2378): every cluster keeps a candidate nearest neighbour
//! among the clusters of higher index and a lower bound of its distance in a binary heap; the
//! heap's minimum is merged once its candidate is confirmed. The heap (`_structures.pxi`
//! `Heap`), the candidate bookkeeping and the Lance–Williams update
//! (`_hierarchy_distance_update.pxi` `_centroid`) are ported step for step, so ties are broken
//! as scipy breaks them and every height has scipy's bits
//! (<https://github.com/scipy/scipy/blob/v1.17.1/scipy/cluster/_hierarchy.pyx>).

use super::distance::{condensed_index, pdist_euclidean};
use crate::{Error, Result};

/// One row of scipy's linkage matrix Z: clusters `left` < `right` (observations are
/// 0..n, the cluster formed by row k is n + k) merged at `height` into `size` observations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Merge {
    pub left: usize,
    pub right: usize,
    pub height: f64,
    pub size: usize,
}

/// `_centroid`: the distance from cluster i to the merge of x and y, from d(x,i), d(y,i),
/// d(x,y) and the sizes — sqrt(((nx·dxi² + ny·dyi²) − nx·ny·dxy²/(nx+ny)) / (nx+ny)), with
/// the C code's order of operations (`size_x * size_y` is an integer product). Centroid
/// distances can shrink after a merge: heights need not increase along Z.
#[inline]
fn centroid_distance(d_xi: f64, d_yi: f64, d_xy: f64, size_x: usize, size_y: usize) -> f64 {
    let (sx, sy) = (size_x as f64, size_y as f64);
    let sum = (size_x + size_y) as f64;
    ((((sx * d_xi * d_xi) + (sy * d_yi * d_yi)) - ((size_x * size_y) as f64 * d_xy * d_xy) / sum) / sum).sqrt()
}

/// scipy's binary min-heap of values keyed 0..n (`_structures.pxi` `Heap`).
struct Heap {
    index_by_key: Vec<usize>,
    key_by_index: Vec<usize>,
    values: Vec<f64>,
    size: usize,
}

impl Heap {
    fn new(values: &[f64]) -> Self {
        let size = values.len();
        let mut heap = Heap {
            index_by_key: (0..size).collect(),
            key_by_index: (0..size).collect(),
            values: values.to_vec(),
            size,
        };
        for i in (0..size / 2).rev() {
            heap.sift_down(i);
        }
        heap
    }

    fn get_min(&self) -> (usize, f64) {
        (self.key_by_index[0], self.values[0])
    }

    fn remove_min(&mut self) {
        self.swap(0, self.size - 1);
        self.size -= 1;
        self.sift_down(0);
    }

    fn change_value(&mut self, key: usize, value: f64) {
        let index = self.index_by_key[key];
        let old = self.values[index];
        self.values[index] = value;
        if value < old {
            self.sift_up(index);
        } else {
            self.sift_down(index);
        }
    }

    fn sift_up(&mut self, mut index: usize) {
        while index > 0 {
            let parent = (index - 1) >> 1;
            if self.values[parent] > self.values[index] {
                self.swap(index, parent);
                index = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut index: usize) {
        let mut child = (index << 1) + 1;
        while child < self.size {
            if child + 1 < self.size && self.values[child + 1] < self.values[child] {
                child += 1;
            }
            if self.values[index] > self.values[child] {
                self.swap(index, child);
                index = child;
                child = (index << 1) + 1;
            } else {
                break;
            }
        }
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.values.swap(i, j);
        let (key_i, key_j) = (self.key_by_index[i], self.key_by_index[j]);
        self.key_by_index[i] = key_j;
        self.key_by_index[j] = key_i;
        self.index_by_key[key_i] = j;
        self.index_by_key[key_j] = i;
    }
}

/// `find_min_dist`: the live cluster of index above `x` nearest to it (the first on ties).
fn find_min_dist(n: usize, d: &[f64], size: &[usize], x: usize) -> Result<(usize, f64)> {
    let mut current_min = f64::INFINITY;
    let mut y = None;
    for i in x + 1..n {
        if size[i] == 0 {
            continue;
        }
        let dist = d[condensed_index(n, x, i)];
        if dist < current_min {
            current_min = dist;
            y = Some(i);
        }
    }
    y.map(|y| (y, current_min)).ok_or_else(|| {
        Error::Other("find_min_dist cannot find any neighbors closer than inf away (NaN distances)".into())
    })
}

/// `_hierarchy.fast_linkage(dists, n, method=centroid)` on a condensed distance matrix of `n`
/// observations: Z, n − 1 merges.
pub fn fast_centroid_linkage(dists: &[f64], n: usize) -> Result<Vec<Merge>> {
    if n < 2 {
        return Ok(Vec::new());
    }
    let mut d = dists.to_vec();
    let mut size = vec![1usize; n];
    let mut cluster_id: Vec<usize> = (0..n).collect();
    let mut neighbor = vec![0usize; n - 1];
    let mut min_dist = vec![0.0f64; n - 1];
    for x in 0..n - 1 {
        let (y, dist) = find_min_dist(n, &d, &size, x)?;
        neighbor[x] = y;
        min_dist[x] = dist;
    }
    let mut heap = Heap::new(&min_dist);
    let mut z = Vec::with_capacity(n - 1);
    let (mut x, mut y, mut dist) = (0usize, 0usize, 0.0f64);
    for k in 0..n - 1 {
        // At most n − k refreshes of a stale candidate before the minimum is confirmed.
        for _ in 0..n - k {
            (x, dist) = heap.get_min();
            y = neighbor[x];
            if dist == d[condensed_index(n, x, y)] {
                break;
            }
            (y, dist) = find_min_dist(n, &d, &size, x)?;
            neighbor[x] = y;
            min_dist[x] = dist;
            heap.change_value(x, dist);
        }
        heap.remove_min();

        let (id_x, id_y) = (cluster_id[x].min(cluster_id[y]), cluster_id[x].max(cluster_id[y]));
        let (nx, ny) = (size[x], size[y]);
        z.push(Merge { left: id_x, right: id_y, height: dist, size: nx + ny });

        size[x] = 0; // x is dropped,
        size[y] = nx + ny; // y becomes the new cluster.
        cluster_id[y] = n + k;

        for w in 0..n {
            if size[w] == 0 || w == y {
                continue;
            }
            let updated = centroid_distance(d[condensed_index(n, w, x)], d[condensed_index(n, w, y)], dist, nx, ny);
            d[condensed_index(n, w, y)] = updated;
        }
        // x's candidates become y's (a guess, checked when they reach the heap's top).
        for w in 0..x {
            if size[w] > 0 && neighbor[w] == x {
                neighbor[w] = y;
            }
        }
        // Lower bounds that the new cluster undercuts.
        for w in 0..y {
            if size[w] == 0 {
                continue;
            }
            let dist_wy = d[condensed_index(n, w, y)];
            if dist_wy < min_dist[w] {
                neighbor[w] = y;
                min_dist[w] = dist_wy;
                heap.change_value(w, dist_wy);
            }
        }
        if y < n - 1 {
            let (w, dist_y) = find_min_dist(n, &d, &size, y)?;
            neighbor[y] = w;
            min_dist[y] = dist_y;
            heap.change_value(y, dist_y);
        }
    }
    Ok(z)
}

/// `linkage(x, method="centroid", metric="euclidean")` of `x.len() / dim` rows: `pdist`, the
/// finiteness check (`ValueError: The condensed distance matrix must contain only finite
/// values`), then [`fast_centroid_linkage`].
pub fn centroid_linkage(x: &[f64], dim: usize) -> Result<Vec<Merge>> {
    let n = x.len().checked_div(dim).unwrap_or(0);
    let dists = pdist_euclidean(x, dim);
    if dists.iter().any(|d| !d.is_finite()) {
        return Err(Error::Other("linkage: the condensed distance matrix must contain only finite values".into()));
    }
    fast_centroid_linkage(&dists, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(rows: &[(usize, usize, f64, usize)]) -> Vec<Merge> {
        rows.iter().map(|&(left, right, height, size)| Merge { left, right, height, size }).collect()
    }

    #[test]
    fn a_line_merges_as_scipy_does() {
        // scipy: linkage([[0],[1],[3],[7],[7.5]], "centroid").
        let x = [0.0, 1.0, 3.0, 7.0, 7.5];
        let want = z(&[(3, 4, 0.5, 2), (0, 1, 1.0, 2), (2, 6, 2.5, 3), (5, 7, 5.916666666666667, 5)]);
        assert_eq!(centroid_linkage(&x, 1).unwrap(), want);
    }

    #[test]
    fn ties_are_broken_as_scipys_heap_breaks_them() {
        // The corners of a unit square: every first merge is at distance 1.
        // scipy: [[0, 1, 1, 2], [2, 3, 1, 2], [4, 5, 1, 4]].
        let x = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        assert_eq!(centroid_linkage(&x, 2).unwrap(), z(&[(0, 1, 1.0, 2), (2, 3, 1.0, 2), (4, 5, 1.0, 4)]));
        // Duplicates: zero distances, merged lowest index first.
        // scipy: [[0, 1, 0, 2], [3, 4, 0, 2], [2, 5, 0, 3], [6, 7, 5, 5]].
        let x = [0.0, 0.0, 0.0, 5.0, 5.0];
        let want = z(&[(0, 1, 0.0, 2), (3, 4, 0.0, 2), (2, 5, 0.0, 3), (6, 7, 5.0, 5)]);
        assert_eq!(centroid_linkage(&x, 1).unwrap(), want);
    }

    #[test]
    fn centroid_merges_can_be_lower_than_the_last() {
        // An equilateral triangle: two corners merge at ~1, the third joins their midpoint at
        // √3/2. scipy: [[0, 2, 0.9999999999999999, 2], [1, 4, 0.8660254037844386, 3],
        // [3, 5, 9.504384952922168, 4]].
        let x = [0.0, 0.0, 1.0, 0.0, 0.5, 3f64.sqrt() / 2.0, 10.0, 0.0];
        let want = z(&[(0, 2, 0.9999999999999999, 2), (1, 4, 0.8660254037844386, 3), (3, 5, 9.504384952922168, 4)]);
        assert_eq!(centroid_linkage(&x, 2).unwrap(), want);
    }

    #[test]
    fn non_finite_distances_are_refused() {
        assert!(centroid_linkage(&[0.0, f64::NAN, 1.0], 1).is_err());
        assert!(centroid_linkage(&[1.0], 1).unwrap().is_empty());
    }
}
