//! pyannote 3.1's `AgglomerativeClustering` and the `BaseClustering` steps around it
//! (pyannote.audio 3.1.1 `pipelines/clustering.py`, lines cited from that tag:
//! <https://github.com/pyannote/pyannote-audio/blob/3.1.1/pyannote/audio/pipelines/clustering.py>):
//! - `filter_embeddings` (L79–117): keep the (chunk, local speaker) pairs that are active and
//!   whose embedding is finite. 4.0.7 keeps instead only pairs that are the sole speaker on
//!   ≥ 20 % of the frames; 3.1's rule is the one here.
//! - `set_num_clusters` (L56–77): the bounds from num/min/max clusters.
//! - `AgglomerativeClustering.cluster` (L321–471): L2-normalise, centroid linkage, cut at
//!   `threshold`, split into large and small clusters, look for the target number of large
//!   clusters over the other cuts if the bounds ask for one, merge the small clusters into the
//!   large ones.
//! - `assign_embeddings` (L133–203): centroids of the raw embeddings, soft scores
//!   2 − cosine distance, hard argmax (3.1 never enables `constrained_assignment`).

use std::collections::BTreeMap;

use super::distance::cdist_cosine;
use super::fcluster::fcluster_distance;
use super::linkage::{centroid_linkage, Merge};
use super::numpy_f32::{l2_normalize_rows, mean_rows};
use crate::{Error, Result};

/// speaker-diarization-3.1's `clustering.threshold` (its `config.yaml`).
pub const THRESHOLD: f64 = 0.7045654963945799;
/// speaker-diarization-3.1's `clustering.min_cluster_size`.
pub const MIN_CLUSTER_SIZE: usize = 12;
/// `cluster` lowers `min_cluster_size` to `round(0.1 · num_embeddings)` (at least 1) for small
/// sets (L350–354: "0.1 value is kind of arbitrary").
pub const MIN_CLUSTER_SIZE_RATIO: f64 = 0.1;

/// The hyper-parameters of `AgglomerativeClustering(metric="cosine")` with
/// `method="centroid"`, the only method 3.1 uses. `Default` is speaker-diarization-3.1's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgglomerativeClustering {
    pub threshold: f64,
    pub min_cluster_size: usize,
}

impl Default for AgglomerativeClustering {
    fn default() -> Self {
        AgglomerativeClustering { threshold: THRESHOLD, min_cluster_size: MIN_CLUSTER_SIZE }
    }
}

/// What `set_num_clusters` returns: `num_clusters` is set when the bounds leave one choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterBounds {
    pub num_clusters: Option<usize>,
    pub min_clusters: usize,
    pub max_clusters: usize,
}

/// Python's `a or b`: 0 counts as not given.
fn given(v: Option<usize>) -> Option<usize> {
    v.filter(|&v| v != 0)
}

/// `BaseClustering.set_num_clusters`: min = num‖min‖1 and max = num‖max‖num_embeddings, each
/// clipped to [1, num_embeddings] (and at least 1); min > max is an error; equal bounds fix
/// the number.
pub fn set_num_clusters(
    num_embeddings: usize,
    num_clusters: Option<usize>,
    min_clusters: Option<usize>,
    max_clusters: Option<usize>,
) -> Result<ClusterBounds> {
    let min = given(num_clusters).or(given(min_clusters)).unwrap_or(1).min(num_embeddings).max(1);
    let max = given(num_clusters).or(given(max_clusters)).unwrap_or(num_embeddings).min(num_embeddings).max(1);
    if min > max {
        return Err(Error::Other(format!(
            "min_clusters must be smaller than (or equal to) max_clusters (here: min_clusters={min} and \
             max_clusters={max})."
        )));
    }
    let num_clusters = if min == max { Some(min) } else { num_clusters };
    Ok(ClusterBounds { num_clusters, min_clusters: min, max_clusters: max })
}

/// 3.1.1's `filter_embeddings`: the pairs (index `chunk · local_speakers + speaker`, numpy's
/// `np.where` order) that are `active` and have no NaN value, and their embeddings.
pub fn filter_embeddings(embeddings: &[f32], dim: usize, active: &[bool]) -> (Vec<f32>, Vec<usize>) {
    let mut train = Vec::new();
    let mut index = Vec::new();
    for (p, (row, &is_active)) in embeddings.chunks_exact(dim).zip(active).enumerate() {
        if is_active && !row.iter().any(|v| v.is_nan()) {
            train.extend_from_slice(row);
            index.push(p);
        }
    }
    (train, index)
}

/// numpy's `argmin` of float64 values: the first minimum, or the first NaN if there is one.
pub(crate) fn np_argmin(values: impl IntoIterator<Item = f64>) -> usize {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.into_iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if best.is_none_or(|(_, b)| v < b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// numpy's `argmax` of float64 values: the first maximum, or the first NaN if there is one.
pub(crate) fn np_argmax(values: impl IntoIterator<Item = f64>) -> usize {
    np_argmin(values.into_iter().map(|v| -v))
}

/// `np.unique(clusters, return_counts=True)`.
fn unique_counts(clusters: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut counts = BTreeMap::new();
    for &c in clusters {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    counts.into_iter().unzip()
}

/// `fcluster(Z, t, criterion="distance") - 1`.
fn flat_clusters(z: &[Merge], t: f64) -> Vec<usize> {
    fcluster_distance(z, t).into_iter().map(|label| label as usize - 1).collect()
}

/// The flat clusters with the state `cluster` keeps about them: `cluster_unique`,
/// `cluster_counts` and `large_clusters`.
struct Cut {
    clusters: Vec<usize>,
    unique: Vec<usize>,
    counts: Vec<usize>,
    large: Vec<usize>,
}

impl Cut {
    fn new(clusters: Vec<usize>, min_cluster_size: usize) -> Self {
        let (unique, counts) = unique_counts(&clusters);
        let large = unique.iter().zip(&counts).filter(|(_, &c)| c >= min_cluster_size).map(|(&u, _)| u).collect();
        Cut { clusters, unique, counts, large }
    }
}

impl AgglomerativeClustering {
    /// `min(min_cluster_size, max(1, round(0.1 · num_embeddings)))`, Python's `round` (half to
    /// even).
    pub fn effective_min_cluster_size(&self, num_embeddings: usize) -> usize {
        let lowered = (MIN_CLUSTER_SIZE_RATIO * num_embeddings as f64).round_ties_even() as usize;
        self.min_cluster_size.min(lowered.max(1))
    }

    /// `AgglomerativeClustering.cluster` on the `train` embeddings (rows of `dim`, raw): a
    /// cluster index 0, 1, … per row.
    pub fn cluster(&self, train: &[f32], dim: usize, bounds: &ClusterBounds) -> Result<Vec<usize>> {
        let num_embeddings = train.len().checked_div(dim).unwrap_or(0);
        let min_cluster_size = self.effective_min_cluster_size(num_embeddings);
        // "linkage function will complain when there is just one embedding to cluster" (and
        // scipy refuses none; the pipeline never clusters fewer than 2).
        if num_embeddings <= 1 {
            return Ok(vec![0; num_embeddings]);
        }
        // Centroid linkage needs a Euclidean metric: unit-normalised embeddings stand in for
        // cosine (in float32, in place, as pyannote does).
        let mut embeddings = train.to_vec();
        l2_normalize_rows(&mut embeddings, dim);
        let as_f64: Vec<f64> = embeddings.iter().map(|&v| v as f64).collect();
        let dendrogram = centroid_linkage(&as_f64, dim)?;

        // Large clusters vs. small clusters at the threshold.
        let mut cut = Cut::new(flat_clusters(&dendrogram, self.threshold), min_cluster_size);
        let mut num_clusters = bounds.num_clusters;
        if cut.large.len() < bounds.min_clusters {
            num_clusters = Some(bounds.min_clusters);
        } else if cut.large.len() > bounds.max_clusters {
            num_clusters = Some(bounds.max_clusters);
        }

        if let Some(target) = num_clusters {
            if cut.large.len() != target {
                cut = self.search_target(&dendrogram, target, min_cluster_size, cut);
            }
        }

        if cut.large.is_empty() {
            return Ok(vec![0; num_embeddings]);
        }
        let small: Vec<usize> =
            cut.unique.iter().zip(&cut.counts).filter(|(_, &c)| c < min_cluster_size).map(|(&u, _)| u).collect();
        let mut clusters = cut.clusters;
        if small.is_empty() {
            return Ok(clusters);
        }

        // Each small cluster joins the large cluster whose centroid (mean of the normalised
        // embeddings) is nearest by cosine.
        let centroid = |k: usize| {
            let rows = embeddings.chunks_exact(dim).zip(&clusters).filter(move |(_, &c)| c == k).map(|(r, _)| r);
            mean_rows(rows, dim).into_iter().map(|v| v as f64)
        };
        let large_centroids: Vec<f64> = cut.large.iter().flat_map(|&k| centroid(k)).collect();
        let small_centroids: Vec<f64> = small.iter().flat_map(|&k| centroid(k)).collect();
        let distances = cdist_cosine(&large_centroids, &small_centroids, dim);
        for (s, &small_k) in small.iter().enumerate() {
            let nearest = np_argmin((0..cut.large.len()).map(|l| distances[l * small.len() + s]));
            let large_k = cut.large[nearest];
            for c in clusters.iter_mut().filter(|c| **c == small_k) {
                *c = large_k;
            }
        }
        // Renumber 0, 1, … (`np.unique(clusters, return_inverse=True)`).
        let (unique, _) = unique_counts(&clusters);
        Ok(clusters.into_iter().map(|c| unique.binary_search(&c).expect("a label of its own set")).collect())
    }

    /// The target search (L395–444): merge heights become merge indices; the cuts after each
    /// merge are tried in order of |height − threshold| (a stable order: numpy's `argsort`
    /// leaves ties to its sort, whose order for them is unspecified), skipping merges that
    /// form a cluster smaller than `min_cluster_size`; the first cut with `target` large
    /// clusters wins, else the closest (the first met), else one cluster. pyannote's variables
    /// carry over as they do there: when no cut gets closer than the initial guess of one large
    /// cluster, the last cut tried stands.
    fn search_target(&self, dendrogram: &[Merge], target: usize, min_cluster_size: usize, mut cut: Cut) -> Cut {
        let num_embeddings = dendrogram.len() + 1;
        let indexed: Vec<Merge> =
            dendrogram.iter().enumerate().map(|(k, m)| Merge { height: k as f64, ..*m }).collect();
        let mut best_iteration = num_embeddings - 1;
        let mut best_num_large_clusters = 1usize;
        let mut order: Vec<usize> = (0..dendrogram.len()).collect();
        order.sort_by(|&a, &b| {
            let key = |k: usize| (dendrogram[k].height - self.threshold).abs();
            key(a).total_cmp(&key(b))
        });
        for iteration in order {
            // Only merges that may change the number of large clusters.
            if indexed[iteration].size < min_cluster_size {
                continue;
            }
            cut = Cut::new(flat_clusters(&indexed, iteration as f64), min_cluster_size);
            if cut.large.len().abs_diff(target) < best_num_large_clusters.abs_diff(target) {
                best_iteration = iteration;
                best_num_large_clusters = cut.large.len();
            }
            if cut.large.len() == target {
                break;
            }
        }
        if best_num_large_clusters != target {
            cut = Cut::new(flat_clusters(&indexed, best_iteration as f64), min_cluster_size);
            tracing::warn!(
                "Found only {} clusters. Using a smaller value than {min_cluster_size} for `min_cluster_size` might help.",
                cut.large.len()
            );
        }
        cut
    }
}

/// The result of `assign_embeddings` for every pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub num_clusters: usize,
    /// `[pairs]`: the argmax of `soft` (numpy's: a NaN row goes to cluster 0).
    pub hard: Vec<i32>,
    /// `[pairs][num_clusters]`: 2 − cosine distance to each centroid (NaN for NaN embeddings).
    pub soft: Vec<f64>,
    /// `[num_clusters][dim]`: the mean of the raw train embeddings of each cluster (float32).
    pub centroids: Vec<f32>,
}

/// `assign_embeddings(embeddings, train_chunk_idx, train_speaker_idx, train_clusters,
/// constrained=False)`: `embeddings` are all pairs' rows, `train_index` the pairs clustered and
/// `train_clusters` their clusters.
pub fn assign_embeddings(
    embeddings: &[f32],
    dim: usize,
    train_index: &[usize],
    train_clusters: &[usize],
) -> Assignment {
    let num_clusters = train_clusters.iter().max().map_or(0, |&m| m + 1);
    let row = |p: usize| &embeddings[p * dim..(p + 1) * dim];
    let centroids: Vec<f32> = (0..num_clusters)
        .flat_map(|k| {
            let rows = train_index.iter().zip(train_clusters).filter(|(_, &c)| c == k).map(|(&p, _)| row(p));
            mean_rows(rows, dim)
        })
        .collect();
    let all: Vec<f64> = embeddings.iter().map(|&v| v as f64).collect();
    let centroids64: Vec<f64> = centroids.iter().map(|&v| v as f64).collect();
    let soft: Vec<f64> = cdist_cosine(&all, &centroids64, dim).into_iter().map(|d| 2.0 - d).collect();
    let hard = soft.chunks(num_clusters.max(1)).map(|scores| np_argmax(scores.iter().copied()) as i32).collect();
    Assignment { num_clusters, hard, soft, centroids }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(num: Option<usize>, min: Option<usize>, max: Option<usize>, n: usize) -> (Option<usize>, usize, usize) {
        let b = set_num_clusters(n, num, min, max).unwrap();
        (b.num_clusters, b.min_clusters, b.max_clusters)
    }

    #[test]
    fn bounds_follow_set_num_clusters() {
        assert_eq!(bounds(None, None, None, 10), (None, 1, 10));
        assert_eq!(bounds(Some(3), None, None, 10), (Some(3), 3, 3));
        assert_eq!(bounds(Some(3), Some(5), Some(8), 10), (Some(3), 3, 3), "num overrides min and max");
        assert_eq!(bounds(Some(9), None, None, 6), (Some(6), 6, 6), "clipped to the embeddings");
        assert_eq!(bounds(None, Some(2), None, 10), (None, 2, 10));
        assert_eq!(bounds(None, None, Some(4), 10), (None, 1, 4));
        assert_eq!(bounds(None, Some(4), Some(4), 10), (Some(4), 4, 4), "equal bounds fix the number");
        assert_eq!(bounds(Some(0), Some(2), None, 10), (Some(0), 2, 10), "0 counts as not given");
        assert_eq!(bounds(None, None, None, 0), (Some(1), 1, 1), "no embeddings: one cluster");
        assert_eq!(bounds(None, Some(3), None, 2), (Some(2), 2, 2));
        assert!(set_num_clusters(10, None, Some(4), Some(2)).is_err());
    }

    #[test]
    fn min_cluster_size_shrinks_for_small_sets_rounding_half_to_even() {
        let c = AgglomerativeClustering::default();
        // Python: [round(0.1 * n) for n in (5, 15, 25, 35, 45, 115, 200)] == [0, 2, 2, 4, 4, 12, 20].
        let sizes: Vec<usize> =
            [5, 15, 25, 35, 45, 115, 200].iter().map(|&n| c.effective_min_cluster_size(n)).collect();
        assert_eq!(sizes, vec![1, 2, 2, 4, 4, 12, 12]);
    }

    #[test]
    fn filter_keeps_active_finite_pairs() {
        let e = [1.0, 2.0, f32::NAN, 1.0, 3.0, 4.0, 5.0, 6.0];
        let (train, index) = filter_embeddings(&e, 2, &[true, true, false, true]);
        assert_eq!(index, vec![0, 3]);
        assert_eq!(train, vec![1.0, 2.0, 5.0, 6.0]);
    }

    #[test]
    fn numpy_arg_extrema() {
        assert_eq!(np_argmin([3.0, 1.0, 1.0]), 1);
        assert_eq!(np_argmax([1.0, 3.0, 3.0]), 1);
        assert_eq!(np_argmax([1.0, f64::NAN, 3.0, f64::NAN]), 1);
        assert_eq!(np_argmax([f64::NAN; 2]), 0);
    }

    /// `count` unit vectors in 3-D around `direction`, each slightly tilted.
    fn group(direction: [f32; 3], count: usize, scale: f32) -> Vec<f32> {
        (0..count)
            .flat_map(|i| {
                let t = 0.01 * (i as f32 + 1.0);
                let v = [direction[0] + t, direction[1] - t * 0.5, direction[2] + t * 0.25];
                v.map(|x| x * scale)
            })
            .collect()
    }

    fn partition(labels: &[usize]) -> Vec<Vec<usize>> {
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, &l) in labels.iter().enumerate() {
            groups.entry(l).or_default().push(i);
        }
        let mut p: Vec<Vec<usize>> = groups.into_values().collect();
        p.sort();
        p
    }

    #[test]
    fn a_small_cluster_joins_the_nearest_large_one() {
        // A (10) along x, B (10) along y, and one outlier mostly along z but nearer A: alone at
        // the threshold (chord > 0.70 to both), then merged into A by cosine.
        let mut e = group([1.0, 0.0, 0.0], 10, 2.0);
        e.extend(group([0.0, 1.0, 0.0], 10, 0.5));
        e.extend([0.35f32, 0.0, 1.0]);
        let c = AgglomerativeClustering::default();
        assert_eq!(c.effective_min_cluster_size(21), 2);
        let labels = c.cluster(&e, 3, &set_num_clusters(21, None, None, None).unwrap()).unwrap();
        let mut a: Vec<usize> = (0..10).collect();
        a.push(20);
        assert_eq!(partition(&labels), vec![a, (10..20).collect()]);
        assert!(labels.iter().all(|&l| l < 2), "renumbered from 0");
    }

    #[test]
    fn bounds_force_the_number_of_clusters() {
        // A and B 60° apart (chord 1.0), C 90° from both: three clusters at the threshold.
        let h = 3f32.sqrt() / 2.0;
        let mut e = group([1.0, 0.0, 0.0], 8, 1.0);
        e.extend(group([0.5, h, 0.0], 8, 1.0));
        e.extend(group([0.0, 0.0, 1.0], 8, 1.0));
        let c = AgglomerativeClustering::default();
        let free = c.cluster(&e, 3, &set_num_clusters(24, None, None, None).unwrap()).unwrap();
        assert_eq!(partition(&free).len(), 3);
        // At most 2: A and B, the closest, are merged.
        let two = c.cluster(&e, 3, &set_num_clusters(24, None, None, Some(2)).unwrap()).unwrap();
        assert_eq!(partition(&two), vec![(0..16).collect::<Vec<usize>>(), (16..24).collect()]);
        assert_eq!(c.cluster(&e, 3, &set_num_clusters(24, Some(2), None, None).unwrap()).unwrap(), two);
        // At least 4: a group is split (no cluster below min_cluster_size 2).
        let four = c.cluster(&e, 3, &set_num_clusters(24, None, Some(4), None).unwrap()).unwrap();
        assert_eq!(partition(&four).len(), 4);
    }

    #[test]
    fn a_single_embedding_is_one_cluster() {
        let c = AgglomerativeClustering::default();
        assert_eq!(c.cluster(&[1.0, 2.0], 2, &set_num_clusters(1, None, None, None).unwrap()).unwrap(), vec![0]);
    }

    #[test]
    fn no_large_cluster_at_the_threshold_searches_for_one() {
        // 16 orthogonal directions: 16 singletons at the threshold, none large (min_cluster_size
        // round(1.6) = 2), below min_clusters = 1: the search looks for one large cluster.
        let n = 16;
        let e: Vec<f32> = (0..n).flat_map(|i| (0..n).map(move |d| if d == i { 1.0 } else { 0.0 })).collect();
        let c = AgglomerativeClustering::default();
        assert_eq!(c.effective_min_cluster_size(n), 2);
        let labels = c.cluster(&e, n, &set_num_clusters(n, None, None, None).unwrap()).unwrap();
        assert_eq!(labels, vec![0; n]);
    }

    #[test]
    fn assignment_uses_raw_centroids_and_argmax() {
        // Cluster 0: (2, 0) and (4, 0) → centroid (3, 0); cluster 1: (0, 1).
        let e = [2.0, 0.0, 0.0, 1.0, 4.0, 0.0, 1.0, 2.0, f32::NAN, f32::NAN];
        let a = assign_embeddings(&e, 2, &[0, 1, 2], &[0, 1, 0]);
        assert_eq!(a.num_clusters, 2);
        assert_eq!(a.centroids, vec![3.0, 0.0, 0.0, 1.0]);
        assert_eq!(&a.soft[..6], &[2.0, 1.0, 1.0, 2.0, 2.0, 1.0]);
        // (1, 2) is nearer cluster 1; the NaN row goes to cluster 0.
        assert_eq!(a.hard, vec![0, 1, 0, 1, 0]);
        assert!(a.soft[8].is_nan() && a.soft[9].is_nan());
    }
}
