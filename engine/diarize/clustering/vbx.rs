//! community-1's clustering: pyannote.audio 4.0.7 `VBxClustering` (`pipelines/clustering.py`
//! L580–680, `BaseClustering.filter_embeddings` L77–125 and `constrained_argmax` L127–140) with
//! `utils/vbx.py` (`VBx` L29–150 in its GMM form, `cluster_vbx` L153–168), as the pipeline
//! calls it (`pipelines/speaker_diarization.py` `apply`: `set_num_speakers`, then
//! `hard_clusters[inactive_speakers] = -2`). Lines cited from
//! <https://github.com/pyannote/pyannote-audio/blob/4.0.7/src/pyannote/audio/>.
//!
//! 1. Keep the pairs that are the *sole* active speaker on ≥ 20 % of their window's frames and
//!    have a finite embedding; fewer than 2 → one cluster.
//! 2. AHC initialisation: float32 L2-normalised embeddings, scipy centroid linkage, cut at
//!    `threshold` (0.6) — the 3.1 building blocks ([`super::linkage`], [`super::fcluster`]).
//! 3. PLDA features ([`super::plda`]), VBx from the AHC labels (softmax of 7·one-hot), speakers
//!    with π > 1e-7 kept, centroids the γ-weighted means of the raw embeddings.
//! 4. A count outside the bounds (or not the asked number): k-means on the normalised
//!    embeddings. **Not sklearn's KMeans**: pyannote calls `KMeans(n_clusters, n_init=3,
//!    random_state=42)`, whose random stream (numpy's MT19937 through sklearn's k-means++ and
//!    Lloyd/Elkan code) is not reproduced; [`kmeans`] is greedy k-means++ (sklearn's variant,
//!    2 + ⌊ln k⌋ local trials) + Lloyd with a SplitMix64 generator seeded with 42, best of 3 by
//!    inertia. Its clusters can differ from sklearn's, its numbering usually does.
//! 5. Soft scores 2 − cosine distance; constrained assignment (the default, off after k-means):
//!    inactive pairs score `min − 1`, then a per-chunk maximising Hungarian assignment
//!    ([`crate::diarize::hungarian`]); unassigned local speakers get −2.
//!
//! numpy subtleties kept: `soft.min()` is NaN when any score is (a NaN embedding), so inactive
//! pairs then score NaN, and `constrained_argmax`'s `nan_to_num(nan=nanmin)` turns every NaN
//! into the smallest finite score.

use crate::diarize::hungarian::linear_sum_assignment;
use crate::diarize::reconstruct::NO_CLUSTER;
use crate::models::pyannote::local_speakers::LocalSpeakers;
use crate::{Error, Result};

use super::agglomerative::np_argmax;
use super::distance::cdist_cosine;
use super::fcluster::fcluster_distance;
use super::linkage::centroid_linkage;
use super::numpy_f32::{l2_normalize_rows, mean_rows};
use super::plda::Plda;
use super::Clustering;

/// speaker-diarization-community-1's `clustering.threshold` (`default_parameters()`,
/// `pipelines/speaker_diarization.py` L292).
pub const THRESHOLD: f64 = 0.6;
/// community-1's `clustering.Fa` (L292).
pub const FA: f64 = 0.07;
/// community-1's `clustering.Fb` (L292).
pub const FB: f64 = 0.8;
/// `cluster_vbx(..., maxIters=20)` as `VBxClustering.__call__` calls it.
pub const MAX_ITERS: usize = 20;
/// `VBx(epsilon=1e-4)`: stop when the ELBO improves by less.
pub const EPSILON: f64 = 1e-4;
/// `cluster_vbx(init_smoothing=7.0)`.
pub const INIT_SMOOTHING: f64 = 7.0;
/// `VBx`'s `eps = 1e-8` in `log(pi + eps)`.
pub const PI_EPS: f64 = 1e-8;
/// `q[:, sp > 1e-7]`: the speakers VBx kept.
pub const MIN_SPEAKER_PRIOR: f64 = 1e-7;
/// `filter_embeddings(min_active_ratio=0.2)`.
pub const MIN_ACTIVE_RATIO: f64 = 0.2;
/// `KMeans(n_init=3, random_state=42)`: the restarts and the seed of our own k-means.
pub const KMEANS_N_INIT: usize = 3;
pub const KMEANS_SEED: u64 = 42;
/// sklearn's `KMeans` defaults: `max_iter=300`, `tol=1e-4` (times the mean feature variance).
pub const KMEANS_MAX_ITER: usize = 300;
pub const KMEANS_TOL: f64 = 1e-4;

/// `VBxClustering`'s hyper-parameters. `Default`: community-1's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VbxClustering {
    pub threshold: f64,
    pub fa: f64,
    pub fb: f64,
    /// `constrained_assignment=True` (the class default).
    pub constrained_assignment: bool,
}

impl Default for VbxClustering {
    fn default() -> Self {
        VbxClustering { threshold: THRESHOLD, fa: FA, fb: FB, constrained_assignment: true }
    }
}

/// The speakers asked for (`num_speakers`, `min_speakers`, `max_speakers`) and the
/// hyper-parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VbxOptions {
    pub num_clusters: Option<usize>,
    pub min_clusters: Option<usize>,
    pub max_clusters: Option<usize>,
    pub clustering: VbxClustering,
}

/// What the VBx filter needs of the binarized segmentation, per (chunk, local speaker) pair.
#[derive(Clone, Debug, PartialEq)]
pub struct PairActivity {
    /// Frames per chunk.
    pub frames: usize,
    /// Frames on which the pair is the only active speaker of its chunk.
    pub clean_frames: Vec<usize>,
    /// Active on at least one frame (`np.sum(segmentations, axis=1) > 0`).
    pub active: Vec<bool>,
}

impl PairActivity {
    /// From `[chunks][frames][speakers]` zeros and ones.
    pub fn from_binarized(binarized: &[u8], chunks: usize, frames: usize, speakers: usize) -> Result<Self> {
        if binarized.len() != chunks * frames * speakers {
            return Err(Error::shape(
                "diarize::clustering::vbx::PairActivity",
                format!("{} values for {chunks} chunks × {frames} frames × {speakers} speakers", binarized.len()),
            ));
        }
        let mut clean_frames = vec![0usize; chunks * speakers];
        let mut active = vec![false; chunks * speakers];
        for c in 0..chunks {
            for frame in binarized[c * frames * speakers..(c + 1) * frames * speakers].chunks_exact(speakers) {
                let on: usize = frame.iter().map(|&a| a as usize).sum();
                for (s, &a) in frame.iter().enumerate() {
                    active[c * speakers + s] |= a != 0;
                    if on == 1 && a != 0 {
                        clean_frames[c * speakers + s] += 1;
                    }
                }
            }
        }
        Ok(PairActivity { frames, clean_frames, active })
    }

    pub fn from_local(local: &LocalSpeakers) -> Result<Self> {
        Self::from_binarized(&local.binarized, local.chunks, local.frames_per_chunk, local.speakers)
    }
}

/// 4.0.7's `filter_embeddings` (L77–125): the pairs (numpy's `np.where` order) that are the sole
/// speaker on ≥ `MIN_ACTIVE_RATIO` of the frames and have no NaN value, and their embeddings.
pub fn filter_embeddings(embeddings: &[f32], dim: usize, activity: &PairActivity) -> (Vec<f32>, Vec<usize>) {
    let min_frames = MIN_ACTIVE_RATIO * activity.frames as f64;
    let mut train = Vec::new();
    let mut index = Vec::new();
    for (p, (row, &clean)) in embeddings.chunks_exact(dim).zip(&activity.clean_frames).enumerate() {
        if clean as f64 >= min_frames && !row.iter().any(|v| v.is_nan()) {
            train.extend_from_slice(row);
            index.push(p);
        }
    }
    (train, index)
}

/// The pipeline's `set_num_speakers` (`pipelines/utils/diarization.py` L34–69): `(num, min,
/// max)`, max `None` for no bound; 0 counts as not given (Python's `or`).
pub fn set_num_speakers(
    num: Option<usize>,
    min: Option<usize>,
    max: Option<usize>,
) -> Result<(Option<usize>, usize, Option<usize>)> {
    let given = |v: Option<usize>| v.filter(|&v| v > 0);
    let (num, min, max) = (given(num), given(min), given(max));
    let lo = num.or(min).unwrap_or(1);
    let hi = num.or(max);
    if hi.is_some_and(|hi| lo > hi) {
        return Err(Error::Other(format!(
            "min_speakers must be smaller than (or equal to) max_speakers (here: min_speakers={lo} and max_speakers={})",
            hi.unwrap_or(0)
        )));
    }
    let num = if hi == Some(lo) { Some(lo) } else { num };
    Ok((num, lo, hi))
}

/// The AHC initialisation (L616–623): float32 L2-normalised rows, centroid linkage, distance cut
/// at `threshold`, labels 0, 1, … (`np.unique(..., return_inverse=True)`). Also returns the
/// normalised rows (k-means needs them).
pub fn ahc_init(train: &[f32], dim: usize, threshold: f64) -> Result<(Vec<usize>, Vec<f32>)> {
    let mut normed = train.to_vec();
    l2_normalize_rows(&mut normed, dim);
    let as_f64: Vec<f64> = normed.iter().map(|&v| v as f64).collect();
    let dendrogram = centroid_linkage(&as_f64, dim)?;
    let labels = fcluster_distance(&dendrogram, threshold);
    let mut distinct = labels.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let dense = labels.iter().map(|l| distinct.binary_search(l).expect("a label of the list")).collect();
    Ok((dense, normed))
}

/// `VBx`'s outputs (`gamma`, `pi`) and the ELBO per iteration.
#[derive(Clone, Debug, PartialEq)]
pub struct VbxOutput {
    /// `[frames][speakers]` responsibilities.
    pub gamma: Vec<f64>,
    pub pi: Vec<f64>,
    pub elbo: Vec<f64>,
}

/// `VBx(X, Phi, Fa, Fb, pi=S, gamma, maxIters, epsilon)` (L29–150) in the GMM form: `x` is
/// `[t][d]` features, `gamma` `[t][s]` the initial responsibilities, π uniform.
#[allow(clippy::too_many_arguments)] // VBx's own parameters
pub fn vbx(
    x: &[f64],
    d: usize,
    phi: &[f64],
    fa: f64,
    fb: f64,
    gamma: Vec<f64>,
    s: usize,
    max_iters: usize,
) -> VbxOutput {
    let t = x.len() / d;
    let mut gamma = gamma;
    let mut pi = vec![1.0 / s as f64; s];
    // G: the per-frame constant of (23); ρ = X·√Φ (18).
    let ln_2pi = (2.0 * std::f64::consts::PI).ln();
    let g: Vec<f64> =
        x.chunks_exact(d).map(|row| -0.5 * (row.iter().map(|v| v * v).sum::<f64>() + d as f64 * ln_2pi)).collect();
    let v: Vec<f64> = phi.iter().map(|p| p.sqrt()).collect();
    let rho: Vec<f64> = x.chunks_exact(d).flat_map(|row| row.iter().zip(&v).map(|(a, b)| a * b)).collect();
    let ratio = fa / fb;
    let mut elbo: Vec<f64> = Vec::new();
    let mut inv_l = vec![0.0f64; s * d];
    let mut alpha = vec![0.0f64; s * d];
    let mut log_p = vec![0.0f64; t * s];
    for ii in 0..max_iters {
        // (17), (16) for all speakers.
        for k in 0..s {
            let n_k: f64 = (0..t).map(|i| gamma[i * s + k]).sum();
            for j in 0..d {
                inv_l[k * d + j] = 1.0 / (1.0 + ratio * n_k * phi[j]);
                let stat: f64 = (0..t).map(|i| gamma[i * s + k] * rho[i * d + j]).sum();
                alpha[k * d + j] = ratio * inv_l[k * d + j] * stat;
            }
        }
        // (23) for all speakers.
        for k in 0..s {
            let a = &alpha[k * d..(k + 1) * d];
            let quad: f64 = (0..d).map(|j| (inv_l[k * d + j] + a[j] * a[j]) * phi[j]).sum();
            for i in 0..t {
                let dot: f64 = rho[i * d..(i + 1) * d].iter().zip(a).map(|(p, q)| p * q).sum();
                log_p[i * s + k] = fa * (dot - 0.5 * quad + g[i]);
            }
        }
        // GMM update.
        let lpi: Vec<f64> = pi.iter().map(|p| (p + PI_EPS).ln()).collect();
        let mut total = 0.0f64;
        for i in 0..t {
            let row: Vec<f64> = (0..s).map(|k| log_p[i * s + k] + lpi[k]).collect();
            let lse = logsumexp(&row);
            total += lse;
            for k in 0..s {
                gamma[i * s + k] = (row[k] - lse).exp();
            }
        }
        let sums: Vec<f64> = (0..s).map(|k| (0..t).map(|i| gamma[i * s + k]).sum()).collect();
        let all: f64 = sums.iter().sum();
        pi = sums.iter().map(|v| v / all).collect();
        // (25).
        let reg: f64 = inv_l.iter().zip(&alpha).map(|(&il, &a)| il.ln() - il - a * a + 1.0).sum();
        let value = total + fb * 0.5 * reg;
        let gain = elbo.last().map(|prev| value - prev);
        elbo.push(value);
        if ii > 0 && gain.is_some_and(|g| g < EPSILON) {
            break;
        }
    }
    VbxOutput { gamma, pi, elbo }
}

/// scipy's `logsumexp` of one row: `log(sum(exp(a − max))) + max`.
fn logsumexp(a: &[f64]) -> f64 {
    let max = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    a.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max
}

/// `cluster_vbx(ahc_init, fea, Phi, Fa, Fb, maxIters)` (L153–168): VBx started from
/// `softmax(INIT_SMOOTHING · one-hot(ahc))`.
pub fn cluster_vbx_init(ahc: &[usize], fea: &[f64], d: usize, phi: &[f64], fa: f64, fb: f64) -> VbxOutput {
    let s = ahc.iter().max().map_or(1, |m| m + 1);
    let on = 1.0 / (1.0 + (s as f64 - 1.0) * (-INIT_SMOOTHING).exp());
    let off = (-INIT_SMOOTHING).exp() * on;
    let mut gamma = vec![off; ahc.len() * s];
    for (i, &k) in ahc.iter().enumerate() {
        gamma[i * s + k] = on;
    }
    vbx(fea, d, phi, fa, fb, gamma, s, MAX_ITERS)
}

/// SplitMix64: the deterministic generator of [`kmeans`].
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum()
}

/// k-means of `[n][dim]` rows into `k` clusters: greedy k-means++ seeding then Lloyd iterations,
/// the best of `KMEANS_N_INIT` runs by inertia, all from one SplitMix64 stream seeded with
/// `seed`. Labels in 0..k, every cluster non-empty when `k ≤ n` distinct rows (an emptied
/// cluster takes the point farthest from its centre). Not sklearn's KMeans: see the module
/// documentation.
pub fn kmeans(x: &[f64], dim: usize, k: usize, seed: u64) -> Result<Vec<usize>> {
    let n = x.len() / dim.max(1);
    if k == 0 || k > n {
        return Err(Error::Other(format!("k-means: n_samples={n} should be >= n_clusters={k}")));
    }
    let row = |i: usize| &x[i * dim..(i + 1) * dim];
    // sklearn's tol: 1e-4 times the mean per-feature variance.
    let mut variance = 0.0f64;
    for j in 0..dim {
        let mean = (0..n).map(|i| x[i * dim + j]).sum::<f64>() / n as f64;
        variance += (0..n).map(|i| (x[i * dim + j] - mean).powi(2)).sum::<f64>() / n as f64;
    }
    let tol = KMEANS_TOL * variance / dim as f64;
    // The first of the nearest centres.
    let nearest = |i: usize, centres: &[f64]| {
        (0..k)
            .min_by(|&a, &b| {
                sq_dist(row(i), &centres[a * dim..(a + 1) * dim])
                    .total_cmp(&sq_dist(row(i), &centres[b * dim..(b + 1) * dim]))
            })
            .expect("k > 0")
    };
    let mut rng = SplitMix64(seed);
    let mut best: Option<(f64, Vec<usize>)> = None;
    for _ in 0..KMEANS_N_INIT {
        // Greedy k-means++.
        let trials = 2 + (k as f64).ln() as usize;
        let first = (rng.uniform() * n as f64) as usize % n;
        let mut centres: Vec<f64> = row(first).to_vec();
        let mut closest: Vec<f64> = (0..n).map(|i| sq_dist(row(i), row(first))).collect();
        for _ in 1..k {
            let potential: f64 = closest.iter().sum();
            let mut pick: Option<(f64, usize, Vec<f64>)> = None;
            for _ in 0..trials {
                let target = rng.uniform() * potential;
                let mut acc = 0.0;
                let mut candidate = n - 1;
                for (i, &c) in closest.iter().enumerate() {
                    acc += c;
                    if acc > target {
                        candidate = i;
                        break;
                    }
                }
                let dists: Vec<f64> = (0..n).map(|i| closest[i].min(sq_dist(row(i), row(candidate)))).collect();
                let pot: f64 = dists.iter().sum();
                if pick.as_ref().is_none_or(|(p, _, _)| pot < *p) {
                    pick = Some((pot, candidate, dists));
                }
            }
            let (_, candidate, dists) = pick.expect("at least two trials");
            centres.extend_from_slice(row(candidate));
            closest = dists;
        }
        // Lloyd.
        let mut labels = vec![usize::MAX; n];
        for _ in 0..KMEANS_MAX_ITER {
            let mut changed = false;
            for (i, label) in labels.iter_mut().enumerate() {
                let l = nearest(i, &centres);
                changed |= *label != l;
                *label = l;
            }
            let mut next = vec![0.0f64; k * dim];
            let mut counts = vec![0usize; k];
            for i in 0..n {
                counts[labels[i]] += 1;
                for (c, &v) in next[labels[i] * dim..(labels[i] + 1) * dim].iter_mut().zip(row(i)) {
                    *c += v;
                }
            }
            for c in 0..k {
                if counts[c] == 0 {
                    // An empty cluster takes the point farthest from its current centre.
                    let far = (0..n)
                        .filter(|&i| counts[labels[i]] > 1)
                        .max_by(|&a, &b| {
                            let da = sq_dist(row(a), &centres[labels[a] * dim..(labels[a] + 1) * dim]);
                            let db = sq_dist(row(b), &centres[labels[b] * dim..(labels[b] + 1) * dim]);
                            da.total_cmp(&db)
                        })
                        .expect("k ≤ n leaves a cluster with two points");
                    counts[labels[far]] -= 1;
                    for (m, &v) in next[labels[far] * dim..(labels[far] + 1) * dim].iter_mut().zip(row(far)) {
                        *m -= v;
                    }
                    labels[far] = c;
                    counts[c] = 1;
                    next[c * dim..(c + 1) * dim].copy_from_slice(row(far));
                    changed = true;
                }
            }
            for c in 0..k {
                next[c * dim..(c + 1) * dim].iter_mut().for_each(|v| *v /= counts[c] as f64);
            }
            let shift = sq_dist(&next, &centres);
            centres = next;
            if !changed || shift <= tol {
                break;
            }
        }
        // Final labels for the final centres.
        for (i, label) in labels.iter_mut().enumerate() {
            *label = nearest(i, &centres);
        }
        let inertia: f64 = (0..n).map(|i| sq_dist(row(i), &centres[labels[i] * dim..(labels[i] + 1) * dim])).sum();
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, labels));
        }
    }
    Ok(best.expect("n_init > 0").1)
}

/// `constrained_argmax` (L127–140): NaN scores become the smallest finite score, then each
/// chunk's `[speakers][k]` scores get a maximising `linear_sum_assignment`; local speakers left
/// out get −2.
pub fn constrained_argmax(soft: &[f64], chunks: usize, speakers: usize, k: usize) -> Result<Vec<i32>> {
    let nanmin = soft.iter().copied().filter(|v| !v.is_nan()).fold(f64::INFINITY, f64::min);
    let filled: Vec<f64> = soft.iter().map(|&v| if v.is_nan() { nanmin } else { v }).collect();
    let mut hard = vec![NO_CLUSTER; chunks * speakers];
    for c in 0..chunks {
        let cost = &filled[c * speakers * k..(c + 1) * speakers * k];
        for (s, cluster) in linear_sum_assignment(cost, speakers, k, true)? {
            hard[c * speakers + s] = cluster as i32;
        }
    }
    Ok(hard)
}

/// `VBxClustering.__call__` (L580–680) and the pipeline's `hard_clusters[inactive] = -2`:
/// `embeddings` `[chunks][local_speakers][dim]` (NaN rows where embedding failed), `activity`
/// from the binarized segmentation ([`PairActivity::from_local`]).
#[allow(clippy::too_many_arguments)]
pub fn cluster_vbx(
    embeddings: &[f32],
    dim: usize,
    chunks: usize,
    local_speakers: usize,
    activity: &PairActivity,
    plda: &Plda,
    options: &VbxOptions,
) -> Result<Clustering> {
    let pairs = chunks * local_speakers;
    if dim == 0
        || embeddings.len() != pairs * dim
        || activity.active.len() != pairs
        || activity.clean_frames.len() != pairs
    {
        return Err(Error::shape(
            "diarize::clustering::vbx::cluster_vbx",
            format!(
                "{} embedding values and {} activity flags for {chunks} chunks × {local_speakers} speakers × {dim}",
                embeddings.len(),
                activity.active.len()
            ),
        ));
    }
    if dim != plda.dim {
        return Err(Error::shape(
            "diarize::clustering::vbx::cluster_vbx",
            format!("{dim}-d embeddings for a PLDA of {}-d x-vectors", plda.dim),
        ));
    }
    let (num_clusters, min_clusters, max_clusters) =
        set_num_speakers(options.num_clusters, options.min_clusters, options.max_clusters)?;
    let params = &options.clustering;
    let (train, train_index) = filter_embeddings(embeddings, dim, activity);
    let n_train = train_index.len();

    let mut result = if n_train < 2 {
        // "do NOT apply clustering when the number of training embeddings is less than 2"
        Clustering {
            num_clusters: 1,
            hard: vec![0; pairs],
            soft: vec![1.0; pairs],
            centroids: mean_rows(train.chunks_exact(dim), dim),
        }
    } else {
        let (ahc, normed) = ahc_init(&train, dim, params.threshold)?;
        let fea = plda.features(&train);
        let out = cluster_vbx_init(&ahc, &fea, plda.lda_dimension, plda.phi(), params.fa, params.fb);
        let s = out.pi.len();
        let kept: Vec<usize> = (0..s).filter(|&k| out.pi[k] > MIN_SPEAKER_PRIOR).collect();
        let mut centroids: Vec<f64> = Vec::with_capacity(kept.len() * dim);
        for &k in &kept {
            let weight: f64 = (0..n_train).map(|i| out.gamma[i * s + k]).sum();
            for j in 0..dim {
                let sum: f64 = (0..n_train).map(|i| out.gamma[i * s + k] * train[i * dim + j] as f64).sum();
                centroids.push(sum / weight);
            }
        }
        let auto = kept.len();
        let mut target = num_clusters;
        if auto < min_clusters {
            target = Some(min_clusters);
        } else if max_clusters.is_some_and(|max| auto > max) {
            target = max_clusters;
        }
        let mut constrained = params.constrained_assignment;
        let k = match target {
            Some(t) if t != auto => {
                // "disable constrained assignment when forcing number of clusters"
                constrained = false;
                let normed64: Vec<f64> = normed.iter().map(|&v| v as f64).collect();
                let labels = kmeans(&normed64, dim, t, KMEANS_SEED)?;
                centroids = (0..t)
                    .flat_map(|c| {
                        let rows = labels
                            .iter()
                            .enumerate()
                            .filter(|(_, &l)| l == c)
                            .map(|(i, _)| &train[i * dim..(i + 1) * dim]);
                        mean_rows(rows, dim)
                    })
                    .map(|v| v as f64)
                    .collect();
                t
            }
            _ => auto,
        };
        let all: Vec<f64> = embeddings.iter().map(|&v| v as f64).collect();
        let mut soft: Vec<f64> = cdist_cosine(&all, &centroids, dim).into_iter().map(|d| 2.0 - d).collect();
        let hard = if constrained {
            // numpy's min: NaN as soon as one score is NaN.
            let min =
                soft.iter()
                    .copied()
                    .fold(f64::INFINITY, |m, v| if m.is_nan() || v.is_nan() { f64::NAN } else { m.min(v) });
            let constant = min - 1.0;
            for (p, &is_active) in activity.active.iter().enumerate() {
                if !is_active {
                    soft[p * k..(p + 1) * k].fill(constant);
                }
            }
            constrained_argmax(&soft, chunks, local_speakers, k)?
        } else {
            soft.chunks(k.max(1)).map(|scores| np_argmax(scores.iter().copied()) as i32).collect()
        };
        Clustering { num_clusters: k, hard, soft, centroids: centroids.iter().map(|&v| v as f32).collect() }
    };
    for (h, &is_active) in result.hard.iter_mut().zip(&activity.active) {
        if !is_active {
            *h = NO_CLUSTER;
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_bounds_follow_set_num_speakers() {
        assert_eq!(set_num_speakers(None, None, None).unwrap(), (None, 1, None));
        assert_eq!(set_num_speakers(Some(3), Some(1), Some(9)).unwrap(), (Some(3), 3, Some(3)));
        assert_eq!(set_num_speakers(None, Some(2), Some(2)).unwrap(), (Some(2), 2, Some(2)));
        assert_eq!(set_num_speakers(Some(0), Some(2), None).unwrap(), (None, 2, None), "0 is not given");
        assert_eq!(set_num_speakers(None, None, Some(1)).unwrap(), (Some(1), 1, Some(1)));
        assert!(set_num_speakers(None, Some(4), Some(2)).is_err());
    }

    #[test]
    fn filter_keeps_sole_speakers_on_a_fifth_of_the_frames() {
        // One chunk, 5 frames, 3 speakers: speaker 0 alone on 1 frame (= 20 %), speaker 1 alone
        // on none (always overlapped by 2), speaker 2 overlapped only.
        let b = [1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0];
        let a = PairActivity::from_binarized(&b, 1, 5, 3).unwrap();
        assert_eq!(a.clean_frames, vec![1, 0, 0]);
        assert_eq!(a.active, vec![true, true, true]);
        let e = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        assert_eq!(filter_embeddings(&e, 2, &a).1, vec![0]);
        let nan = [f32::NAN, 0.0, 0.0, 1.0, 1.0, 1.0];
        assert!(filter_embeddings(&nan, 2, &a).1.is_empty(), "NaN rows are dropped");
        assert!(PairActivity::from_binarized(&b[1..], 1, 5, 3).is_err());
    }

    #[test]
    fn kmeans_separates_clear_groups_deterministically() {
        let mut x = Vec::new();
        for (cx, cy) in [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)] {
            for i in 0..7 {
                let d = i as f64 * 0.1;
                x.extend_from_slice(&[cx + d, cy - d]);
            }
        }
        let labels = kmeans(&x, 2, 3, KMEANS_SEED).unwrap();
        assert_eq!(labels, kmeans(&x, 2, 3, KMEANS_SEED).unwrap(), "same seed, same labels");
        for g in 0..3 {
            let group = &labels[g * 7..(g + 1) * 7];
            assert!(group.iter().all(|&l| l == group[0]), "group {g} split: {labels:?}");
        }
        let mut firsts = vec![labels[0], labels[7], labels[14]];
        firsts.sort();
        assert_eq!(firsts, vec![0, 1, 2]);
        // k = n: every point its own cluster.
        let three = [0.0, 0.0, 1.0, 1.0, 5.0, 5.0];
        let mut l = kmeans(&three, 2, 3, 7).unwrap();
        l.sort();
        assert_eq!(l, vec![0, 1, 2]);
        // Duplicates: fewer distinct clusters than asked (as sklearn, which warns), no error.
        let dup = [1.0, 1.0, 1.0, 1.0, 5.0, 5.0];
        assert!(kmeans(&dup, 2, 3, 7).unwrap().iter().all(|&l| l < 3));
        assert!(kmeans(&x, 2, 22, KMEANS_SEED).is_err());
    }

    #[test]
    fn constrained_argmax_fills_nan_with_the_smallest_score() {
        // One chunk, 3 speakers, 2 clusters: speaker 2's NaN row becomes nanmin (0.5) and is
        // left out; both others prefer cluster 0, the best total gives it to speaker 1 (scipy:
        // linear_sum_assignment([[1.9, 1.8], [1.7, 0.5], [0.5, 0.5]], maximize=True) ==
        // ([0, 1], [1, 0])).
        let soft = [1.9, 1.8, 1.7, 0.5, f64::NAN, f64::NAN];
        assert_eq!(constrained_argmax(&soft, 1, 3, 2).unwrap(), vec![1, 0, NO_CLUSTER]);
    }

    #[test]
    fn vbx_keeps_two_separated_groups_and_prunes_a_duplicate() {
        // 1-d features: two groups far apart, three initial clusters (one duplicate).
        let x = [-5.0, -5.1, -4.9, 5.0, 5.1, 4.9];
        let out = cluster_vbx_init(&[0, 0, 1, 2, 2, 2], &x, 1, &[10.0], 1.0, 1.0);
        let kept: Vec<usize> = (0..3).filter(|&k| out.pi[k] > MIN_SPEAKER_PRIOR).collect();
        // pyannote's cluster_vbx on the same input: π = [0.5, 6.45e-16, 0.5].
        assert_eq!(kept, vec![0, 2], "π = {:?}", out.pi);
        assert!((out.pi[0] - 0.5).abs() < 1e-9 && out.pi[1] < 1e-12);
        assert!(out.elbo.windows(2).all(|w| w[1] >= w[0] - 1e-9), "ELBO never decreases: {:?}", out.elbo);
        for row in out.gamma.chunks_exact(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}
