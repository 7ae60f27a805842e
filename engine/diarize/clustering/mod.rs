//! Clustering of the (window, local speaker) embeddings across a file: pyannote 3.1's
//! `AgglomerativeClustering` (pyannote.audio 3.1.1 `pipelines/clustering.py`, as
//! speaker-diarization-3.1 configures it: centroid linkage, `min_cluster_size` 12, `threshold`
//! 0.7045654963945799), reproduced with numpy's float32 and scipy's float64 orders of
//! operations so that merges, flat clusters and assignments are pyannote's own.
//!
//! - [`numpy_f32`]: numpy's float32 norm (pairwise sum) and mean;
//! - [`distance`]: scipy's `pdist` Euclidean and `cdist` cosine;
//! - [`linkage`]: scipy's centroid linkage (the generic algorithm, its heap and tie order);
//! - [`fcluster`]: scipy's distance cut (a subtree's highest merge decides);
//! - [`agglomerative`]: pyannote's filter, bounds, cut, target search, small-cluster merge and
//!   assignment;
//! - [`plda`], [`vbx`]: community-1's `VBxClustering` (pyannote.audio 4.0.7): PLDA features, VBx
//!   from an AHC initialisation at 0.6, constrained (Hungarian) assignment —
//!   [`vbx::cluster_vbx`] returns the same [`Clustering`].
//!
//! [`cluster`] is `BaseClustering.__call__` (L205–281; one cluster without clustering when the
//! bounds allow no more, L257–263) followed by the pipeline's
//! `hard_clusters[inactive_speakers] = -2` (3.1.1 `pipelines/speaker_diarization.py`).

pub mod agglomerative;
pub mod distance;
pub mod fcluster;
pub mod linkage;
pub mod numpy_f32;
pub mod plda;
pub mod vbx;

pub use agglomerative::{AgglomerativeClustering, MIN_CLUSTER_SIZE, THRESHOLD};

use crate::diarize::reconstruct::NO_CLUSTER;
use crate::models::pyannote::local_speakers::LocalSpeakers;
use crate::{Error, Result};
use agglomerative::{assign_embeddings, filter_embeddings, set_num_clusters};
use numpy_f32::mean_rows;

/// The number of speakers asked for (the pipeline's `num_speakers`, `min_speakers`,
/// `max_speakers`, passed as the clustering's `num_clusters`, `min_clusters`, `max_clusters`)
/// and the clustering's hyper-parameters. `Default`: no bounds, speaker-diarization-3.1.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Options {
    pub num_clusters: Option<usize>,
    pub min_clusters: Option<usize>,
    pub max_clusters: Option<usize>,
    pub clustering: AgglomerativeClustering,
}

/// pyannote's `(hard_clusters, soft_clusters, centroids)`, flattened row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Clustering {
    pub num_clusters: usize,
    /// `[chunks][local_speakers]`: the cluster of each local speaker, −2 ([`NO_CLUSTER`]) for
    /// one never active in its window. An active pair whose embedding is NaN gets 0 (numpy's
    /// argmax of a NaN row), as in pyannote.
    pub hard: Vec<i32>,
    /// `[chunks][local_speakers][num_clusters]`: 2 − cosine distance to each centroid (NaN for
    /// NaN embeddings); all 1 when the bounds allow one cluster only. VBx's constrained
    /// assignment overwrites inactive pairs' scores with `min − 1` (NaN if any score is NaN).
    pub soft: Vec<f64>,
    /// `[num_clusters][dim]`: the mean raw embedding of each cluster's clustered pairs (NaN
    /// when there were none); for VBx the γ-weighted mean (float64 in pyannote, rounded here).
    pub centroids: Vec<f32>,
}

/// Which local speakers are active in their window: `np.sum(segmentations, axis=1) > 0`,
/// `[chunks][speakers]`.
pub fn active_pairs(local: &LocalSpeakers) -> Vec<bool> {
    let mut active = vec![false; local.chunks * local.speakers];
    for c in 0..local.chunks {
        for frame in local.chunk(c).chunks_exact(local.speakers) {
            for (s, &on) in frame.iter().enumerate() {
                active[c * local.speakers + s] |= on != 0;
            }
        }
    }
    active
}

/// Clusters the embeddings of `chunks × local_speakers` pairs (`embeddings`:
/// `[chunks][local_speakers][dim]`, NaN rows where embedding failed), `active` telling which
/// pairs are active in their window (see [`active_pairs`]).
pub fn cluster(
    embeddings: &[f32],
    dim: usize,
    chunks: usize,
    local_speakers: usize,
    active: &[bool],
    options: &Options,
) -> Result<Clustering> {
    let pairs = chunks * local_speakers;
    if dim == 0 || embeddings.len() != pairs * dim || active.len() != pairs {
        return Err(Error::shape(
            "diarize::clustering::cluster",
            format!(
                "{} embedding values and {} activity flags for {chunks} chunks × {local_speakers} speakers × {dim}",
                embeddings.len(),
                active.len()
            ),
        ));
    }
    let (train, train_index) = filter_embeddings(embeddings, dim, active);
    let bounds = set_num_clusters(train_index.len(), options.num_clusters, options.min_clusters, options.max_clusters)?;

    let mut result = if bounds.max_clusters < 2 {
        // "do NOT apply clustering when min_clusters = max_clusters = 1"
        Clustering {
            num_clusters: 1,
            hard: vec![0; pairs],
            soft: vec![1.0; pairs],
            centroids: mean_rows(train.chunks_exact(dim), dim),
        }
    } else {
        let train_clusters = options.clustering.cluster(&train, dim, &bounds)?;
        let a = assign_embeddings(embeddings, dim, &train_index, &train_clusters);
        Clustering { num_clusters: a.num_clusters, hard: a.hard, soft: a.soft, centroids: a.centroids }
    };
    for (h, &is_active) in result.hard.iter_mut().zip(active) {
        if !is_active {
            *h = NO_CLUSTER;
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIM: usize = 3;

    /// Two windows × 3 local speakers.
    fn two_windows(rows: [[f32; DIM]; 6]) -> Vec<f32> {
        rows.concat()
    }

    #[test]
    fn inactive_pairs_get_no_cluster_and_failed_embeddings_cluster_0() {
        let nan = [f32::NAN; DIM];
        let e = two_windows([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], nan, [0.9, 0.1, 0.0], nan, [0.0, 0.0, 1.0]]);
        let active = [true, true, false, true, true, false];
        let c = cluster(&e, DIM, 2, 3, &active, &Options::default()).unwrap();
        // Three clustered pairs: min_cluster_size 1, two clusters at the threshold.
        assert_eq!(c.num_clusters, 2);
        assert_eq!(c.hard, vec![0, 1, NO_CLUSTER, 0, 0, NO_CLUSTER]);
        assert!(c.soft[4 * 2].is_nan(), "the failed embedding has NaN scores");
        // The inactive but finite pair still gets scores.
        assert!(c.soft[5 * 2].is_finite());
        assert_eq!(&c.centroids[DIM..], &[0.0, 1.0, 0.0]);
    }

    #[test]
    fn one_embedding_is_one_cluster_without_clustering() {
        let nan = [f32::NAN; DIM];
        let e = two_windows([[2.0, 1.0, 0.0], nan, nan, nan, nan, nan]);
        let active = [true, false, false, false, true, false];
        let c = cluster(&e, DIM, 2, 3, &active, &Options::default()).unwrap();
        assert_eq!(c.num_clusters, 1);
        assert_eq!(c.hard, vec![0, NO_CLUSTER, NO_CLUSTER, NO_CLUSTER, 0, NO_CLUSTER]);
        assert_eq!(c.soft, vec![1.0; 6]);
        assert_eq!(c.centroids, vec![2.0, 1.0, 0.0]);
    }

    #[test]
    fn no_finite_embedding_gives_a_nan_centroid() {
        let e = vec![f32::NAN; 6 * DIM];
        let active = [true, false, true, false, false, false];
        let c = cluster(&e, DIM, 2, 3, &active, &Options { max_clusters: Some(4), ..Default::default() }).unwrap();
        assert_eq!(c.num_clusters, 1);
        assert_eq!(c.hard, vec![0, NO_CLUSTER, 0, NO_CLUSTER, NO_CLUSTER, NO_CLUSTER]);
        assert!(c.centroids.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn num_clusters_one_skips_clustering() {
        let e = two_windows([
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [2.0, 0.0, 0.0],
            [0.0, 2.0, 0.0],
            [0.0, 0.0, 2.0],
        ]);
        let c = cluster(&e, DIM, 2, 3, &[true; 6], &Options { num_clusters: Some(1), ..Default::default() }).unwrap();
        assert_eq!(c.hard, vec![0; 6]);
        assert_eq!(c.centroids, vec![0.5, 0.5, 0.5]);
    }

    #[test]
    fn inverted_bounds_and_bad_shapes_are_errors() {
        let e = vec![1.0f32; 6 * DIM];
        let bad = Options { min_clusters: Some(4), max_clusters: Some(2), ..Default::default() };
        assert!(cluster(&e, DIM, 2, 3, &[true; 6], &bad).is_err());
        assert!(cluster(&e[1..], DIM, 2, 3, &[true; 6], &Options::default()).is_err());
        assert!(cluster(&e, DIM, 2, 3, &[true; 5], &Options::default()).is_err());
    }

    #[test]
    fn activity_is_any_frame_on() {
        let local = LocalSpeakers {
            chunk_duration: 10.0,
            chunk_step: 1.0,
            chunks: 2,
            frames_per_chunk: 2,
            speakers: 3,
            binarized: vec![1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
            frames: crate::models::pyannote::receptive_field::FrameWindow { start: 0.0, duration: 0.06, step: 0.017 },
        };
        assert_eq!(active_pairs(&local), vec![true, false, true, false, false, false]);
    }
}
