//! Cross-attention keys rearranged for decoder steps, cached per key tensor.
//!
//! A decoder step scores a handful of query rows (the beams) against the same 1500 audio keys
//! hundreds of times per window. Dotting each key row (64 floats) with each query needs a
//! horizontal reduction per (row, key); with the keys of a head laid out in tiles of
//! `KEY_TILE` keys × `Dh` features, the scores of `KEY_TILE` keys accumulate in one vector
//! register per query row with no reduction at all. The tiles are built once per key tensor
//! (once per window and layer) and reused by every step.

use std::sync::{Arc, Mutex, Weak};

use super::simd::{multiversion, SimdLevel};
use crate::backend::{Storage, Tensor};

/// Keys per tile: one AVX-512 register of f32 scores.
pub const KEY_TILE: usize = 16;
/// Key tensors kept: 4 layers × 2 windows of the largest Whisper (32 layers) fit with room.
const CACHED_TENSORS: usize = 64;

/// One key tensor `[B, T, H·Dh]` as tiles: `tiles[((b·H + h)·n_tiles + t)·Dh·KEY_TILE + p·KEY_TILE + l]`
/// = key `t·KEY_TILE + l` of batch `b`, feature `h·Dh + p` (zero past `T`).
pub struct KeyTiles {
    pub n_tiles: usize,
    pub data: Vec<f32>,
}

impl KeyTiles {
    fn build(k: &[f32], b: usize, t: usize, heads: usize, dh: usize) -> Self {
        let n_tiles = t.div_ceil(KEY_TILE);
        let d = heads * dh;
        let mut data = vec![0.0f32; b * heads * n_tiles * dh * KEY_TILE];
        for bi in 0..b {
            for h in 0..heads {
                let head = &mut data[(bi * heads + h) * n_tiles * dh * KEY_TILE..][..n_tiles * dh * KEY_TILE];
                for j in 0..t {
                    let row = &k[(bi * t + j) * d + h * dh..][..dh];
                    let tile = &mut head[(j / KEY_TILE) * dh * KEY_TILE..][..dh * KEY_TILE];
                    for (p, &v) in row.iter().enumerate() {
                        tile[p * KEY_TILE + j % KEY_TILE] = v;
                    }
                }
            }
        }
        KeyTiles { n_tiles, data }
    }

    /// The tiles of batch `b`, head `h`.
    pub fn head(&self, b: usize, h: usize, heads: usize, dh: usize) -> &[f32] {
        let len = self.n_tiles * dh * KEY_TILE;
        &self.data[(b * heads + h) * len..][..len]
    }
}

/// One cached layout: (storage, shape, heads) → tiles. A reshaped view shares its storage,
/// hence the shape.
type Entry = (Weak<dyn Storage>, Vec<usize>, usize, Arc<KeyTiles>);

/// Tiles of recently used key tensors, found by the identity of their storage.
#[derive(Default)]
pub struct KeyTileCache {
    entries: Mutex<Vec<Entry>>,
}

impl KeyTileCache {
    /// The tiles of `k` (`[B, T, heads·dh]`, data `kd`), built on first use.
    pub fn get(&self, k: &Tensor, kd: &[f32], heads: usize, dh: usize) -> Arc<KeyTiles> {
        let storage = Arc::downgrade(k.storage());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // A dead entry's storage may be freed and its address reused: drop those first.
        entries.retain(|(w, _, _, _)| w.strong_count() > 0);
        let shape = k.shape();
        if let Some((_, _, _, tiles)) =
            entries.iter().find(|(w, s, h, _)| *h == heads && s == shape && Weak::ptr_eq(w, &storage))
        {
            return tiles.clone();
        }
        let (b, t) = (k.shape()[0], k.shape()[1]);
        let tiles = Arc::new(KeyTiles::build(kd, b, t, heads, dh));
        if entries.len() >= CACHED_TENSORS {
            entries.remove(0);
        }
        entries.push((storage, shape.to_vec(), heads, tiles.clone()));
        tiles
    }
}

/// `scores[r, j] = Σ_p q[r, p] · key_j[p]` for `M` query rows over every key of one head's tiles.
#[inline(always)]
fn scores_m<const M: usize>(q: &[f32], dh: usize, tiles: &[f32], t: usize, scores: &mut [f32]) {
    for (ti, tile) in tiles.chunks_exact(dh * KEY_TILE).enumerate() {
        let mut acc = [[0.0f32; KEY_TILE]; M];
        for p in 0..dh {
            let kv: &[f32; KEY_TILE] = tile[p * KEY_TILE..][..KEY_TILE].try_into().expect("KEY_TILE-sized row");
            for (r, a) in acc.iter_mut().enumerate() {
                let qv = q[r * dh + p];
                for l in 0..KEY_TILE {
                    a[l] += qv * kv[l];
                }
            }
        }
        let j0 = ti * KEY_TILE;
        let n = KEY_TILE.min(t - j0);
        for (r, a) in acc.iter().enumerate() {
            scores[r * t + j0..][..n].copy_from_slice(&a[..n]);
        }
    }
}

multiversion! {
    /// Scores of `m ≤ 8` query rows (`q` is `[m, dh]`) over the `t` keys in `tiles`; `scores` is
    /// `[m, t]`.
    pub fn tiled_scores(m: usize, q: &[f32], dh: usize, tiles: &[f32], t: usize, scores: &mut [f32]) {
        match m {
            1 => scores_m::<1>(q, dh, tiles, t, scores),
            2 => scores_m::<2>(q, dh, tiles, t, scores),
            3 => scores_m::<3>(q, dh, tiles, t, scores),
            4 => scores_m::<4>(q, dh, tiles, t, scores),
            5 => scores_m::<5>(q, dh, tiles, t, scores),
            6 => scores_m::<6>(q, dh, tiles, t, scores),
            7 => scores_m::<7>(q, dh, tiles, t, scores),
            8 => scores_m::<8>(q, dh, tiles, t, scores),
            _ => unreachable!("tiled scores take 1..=8 query rows"),
        }
    }
}

/// Whether an attention of `rows` query rows per key head over `t` keys uses the tiles: only
/// when they will be reused (long key sets are the cross-attention of decoder steps).
pub fn worth_tiling(rows: usize, t: usize, level: SimdLevel) -> bool {
    rows <= 8 && t >= MIN_TILED_KEYS && level != SimdLevel::Portable
}

/// Shorter key sets (the growing self-attention cache) change every step: no reuse.
const MIN_TILED_KEYS: usize = 256;
