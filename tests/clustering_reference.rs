//! pyannote 3.1's AgglomerativeClustering in Rust against pyannote's own code
//! (tests/reference/make_clustering_reference.py: pyannote.audio's `AgglomerativeClustering`
//! with 3.1.1's `filter_embeddings`, scipy 1.17.1, numpy 2.4.6) on seeded synthetic 256-d
//! embedding sets with num/min/max speakers: scipy's linkage matrix (merge pairs and sizes
//! exactly, heights within 1e-9 relative), the flat clusters at the threshold, the clusters
//! `cluster()` returns, the hard assignments (same numbering), the centroids and soft scores.
//! The search for a target number of clusters is tried in a stable order of |height −
//! threshold|; the one case whose keys tie (`search_ties` in cases.json) agrees with numpy's
//! argsort as recorded.

mod common;

use common::root;
use safetensors::SafeTensors;
use scribe::diarize::clustering::agglomerative::{filter_embeddings, set_num_clusters};
use scribe::diarize::clustering::fcluster::fcluster_distance;
use scribe::diarize::clustering::linkage::centroid_linkage;
use scribe::diarize::clustering::numpy_f32::l2_normalize_rows;
use scribe::diarize::clustering::{cluster, AgglomerativeClustering, Options};
use serde_json::Value;

const DATA: &str = "tests/reference/data/clustering";
/// Merge heights: the same float64 operations in the same order, so equal up to rounding.
const HEIGHT_RTOL: f64 = 1e-9;
/// Centroids: float32 means of the same rows in the same order.
const CENTROID_TOL: f32 = 1e-5;
/// Soft scores: float64 cosine distances to those centroids.
const SOFT_TOL: f64 = 1e-9;

/// The reference tensors (float64 among them, read with the `safetensors` crate itself).
struct Reference<'a> {
    tensors: SafeTensors<'a>,
}

impl Reference<'_> {
    fn raw(&self, name: &str) -> Option<(Vec<u8>, Vec<usize>)> {
        self.tensors.tensor(name).ok().map(|v| (v.data().to_vec(), v.shape().to_vec()))
    }
    fn f32s(&self, name: &str) -> Vec<f32> {
        let (b, _) = self.raw(name).unwrap_or_else(|| panic!("no {name}"));
        b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    }
    fn f64s(&self, name: &str) -> Option<(Vec<f64>, Vec<usize>)> {
        self.raw(name).map(|(b, s)| (b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(), s))
    }
    fn i32s(&self, name: &str) -> Option<Vec<i32>> {
        self.raw(name).map(|(b, _)| b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect())
    }
}

fn opt(v: &Value) -> Option<usize> {
    v.as_u64().map(|v| v as usize)
}

fn same_f32(a: f32, b: f32, tol: f32) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn agglomerative_clustering_matches_pyannote() {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DATA).join("cases.json")).unwrap()).unwrap();
    let bytes = std::fs::read(root().join(DATA).join("reference.safetensors")).unwrap();
    let reference = Reference { tensors: SafeTensors::deserialize(&bytes).unwrap() };
    let dim = manifest["dimension"].as_u64().unwrap() as usize;
    let local_speakers = manifest["local_speakers"].as_u64().unwrap() as usize;
    let params = &manifest["parameters"];
    assert_eq!(params["method"], "centroid");
    let clustering = AgglomerativeClustering::default();
    assert_eq!(clustering.threshold, params["threshold"].as_f64().unwrap());
    assert_eq!(clustering.min_cluster_size as u64, params["min_cluster_size"].as_u64().unwrap());

    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let (mut merges, mut exact_heights, mut max_height_rel) = (0usize, 0usize, 0.0f64);
    let (mut max_centroid_err, mut max_soft_err) = (0.0f32, 0.0f64);
    for case in cases {
        let key = case["key"].as_str().unwrap();
        let set = case["set"].as_str().unwrap();
        let embeddings = reference.f32s(&format!("{set}.embeddings"));
        let (active_bytes, shape) = reference.raw(&format!("{set}.active")).unwrap();
        let active: Vec<bool> = active_bytes.iter().map(|&a| a != 0).collect();
        let chunks = shape[0];
        assert_eq!(shape[1], local_speakers);
        let options = Options {
            num_clusters: opt(&case["num_speakers"]),
            min_clusters: opt(&case["min_speakers"]),
            max_clusters: opt(&case["max_speakers"]),
            clustering,
        };

        // The steps inside pyannote's `cluster`, where it ran them.
        let (train, _) = filter_embeddings(&embeddings, dim, &active);
        assert_eq!(train.len() / dim, case["num_embeddings"].as_u64().unwrap() as usize, "{key}: filtered pairs");
        if let Some((z_ref, z_shape)) = reference.f64s(&format!("{key}.linkage")) {
            let mut normalized = train.clone();
            l2_normalize_rows(&mut normalized, dim);
            let x: Vec<f64> = normalized.iter().map(|&v| v as f64).collect();
            let z = centroid_linkage(&x, dim).unwrap();
            assert_eq!(z.len(), z_shape[0], "{key}: merges");
            for (k, (m, r)) in z.iter().zip(z_ref.chunks_exact(4)).enumerate() {
                assert_eq!([m.left as f64, m.right as f64, m.size as f64], [r[0], r[1], r[3]], "{key}: merge {k}");
                let rel = (m.height - r[2]).abs() / r[2].abs().max(f64::MIN_POSITIVE);
                assert!(m.height == r[2] || rel <= HEIGHT_RTOL, "{key}: merge {k} height {} vs {}", m.height, r[2]);
                merges += 1;
                exact_heights += (m.height == r[2]) as usize;
                max_height_rel = max_height_rel.max(if m.height == r[2] { 0.0 } else { rel });
            }
            let labels = fcluster_distance(&z, clustering.threshold);
            assert_eq!(Some(labels), reference.i32s(&format!("{key}.fcluster")), "{key}: fcluster at the threshold");
        }
        if let Some(want) = reference.i32s(&format!("{key}.train_clusters")) {
            let bounds =
                set_num_clusters(train.len() / dim, options.num_clusters, options.min_clusters, options.max_clusters)
                    .unwrap();
            let got: Vec<i32> =
                clustering.cluster(&train, dim, &bounds).unwrap().into_iter().map(|c| c as i32).collect();
            assert_eq!(got, want, "{key}: clusters of the clustered pairs");
        }

        // The whole call, as the pipeline sees it.
        let c = cluster(&embeddings, dim, chunks, local_speakers, &active, &options).unwrap();
        assert_eq!(c.num_clusters, case["num_clusters"].as_u64().unwrap() as usize, "{key}: clusters");
        assert_eq!(Some(c.hard.clone()), reference.i32s(&format!("{key}.hard")), "{key}: hard clusters");
        let centroids = reference.f32s(&format!("{key}.centroids"));
        assert_eq!(c.centroids.len(), centroids.len(), "{key}: centroids");
        for (i, (&a, &b)) in c.centroids.iter().zip(&centroids).enumerate() {
            assert!(same_f32(a, b, CENTROID_TOL), "{key}: centroid value {i}: {a} vs {b}");
            if !b.is_nan() {
                max_centroid_err = max_centroid_err.max((a - b).abs());
            }
        }
        let (soft, soft_shape) = reference.f64s(&format!("{key}.soft")).unwrap();
        assert_eq!(soft_shape, vec![chunks, local_speakers, c.num_clusters], "{key}: soft shape");
        for (i, (&a, &b)) in c.soft.iter().zip(&soft).enumerate() {
            let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= SOFT_TOL;
            assert!(ok, "{key}: soft score {i}: {a} vs {b}");
            if !b.is_nan() {
                max_soft_err = max_soft_err.max((a - b).abs());
            }
        }
    }
    println!(
        "{} cases: {merges} merges ({exact_heights} heights bit-identical, max rel. diff {max_height_rel:.1e}), \
         centroids max |diff| {max_centroid_err:.1e}, soft max |diff| {max_soft_err:.1e}",
        cases.len()
    );
}
