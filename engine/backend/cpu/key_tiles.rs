//! Cross-attention keys and values rearranged for decoder steps, cached per tensor: the keys as
//! tiles ([`KeyTiles`], below), the values a head at a time ([`HeadMajorValues`]).
//!
//! A decoder step scores a handful of query rows (the beams) against the same 1500 audio keys
//! hundreds of times per window. Dotting each key row (64 floats) with each query needs a
//! horizontal reduction per (row, key); with the keys of a head laid out in tiles of
//! `KEY_TILE` keys × `Dh` features, the scores of `KEY_TILE` keys accumulate in one vector
//! register per query row with no reduction at all. The tiles are built once per key tensor
//! (once per window and layer) and reused by every step.

use std::sync::{Arc, Mutex, Weak};

use super::simd::{multiversion, SimdLevel};
use super::skinny::Elem;
use super::Weight;
use crate::backend::{Storage, Tensor};

/// Keys per tile: one AVX-512 register of f32 scores.
pub const KEY_TILE: usize = 16;
/// Query rows a tiled-scores call takes (the kernels' `M`; their row dispatches list 1..=8).
const TILED_MAX_ROWS: usize = 8;
const _: () = assert!(TILED_MAX_ROWS == 8);
/// Tensors each cache keeps (the key tiles', the values'): a decoding batch's cross-attention
/// per layer, 32 layers in the largest Whisper, twice over.
const CACHED_TENSORS: usize = 64;

/// One key tensor `[B, T, H·Dh]` as tiles: `tiles[((b·H + h)·n_tiles + t)·Dh·KEY_TILE + p·KEY_TILE + l]`
/// = key `t·KEY_TILE + l` of batch `b`, feature `h·Dh + p` (zero past `T`), in the key tensor's
/// own precision (f32, or f16 widened as the scores read it).
pub struct KeyTiles {
    pub n_tiles: usize,
    data: TileData,
}

enum TileData {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

/// Rearrange `k` (`[b, t, heads·dh]`) into tiles (see [`KeyTiles`]); `zero` pads the last tile.
fn tile<E: Copy>(k: &[E], zero: E, b: usize, t: usize, heads: usize, dh: usize) -> Vec<E> {
    let n_tiles = t.div_ceil(KEY_TILE);
    let d = heads * dh;
    let mut data = vec![zero; b * heads * n_tiles * dh * KEY_TILE];
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
    data
}

impl KeyTiles {
    fn build(k: Weight<'_>, b: usize, t: usize, heads: usize, dh: usize) -> Self {
        let data = match k {
            Weight::F16(k) => TileData::F16(tile(k, half::f16::ZERO, b, t, heads, dh)),
            // f32 as stored; packed kinds (which attention never passes) widened first.
            k => TileData::F32(tile(&k.rows_f32(SimdLevel::Portable, 0..b * t * heads * dh, 1), 0.0, b, t, heads, dh)),
        };
        KeyTiles { n_tiles: t.div_ceil(KEY_TILE), data }
    }

    /// Scores `[m, t]` of `m ≤ 8` query rows (`q` is `[m, dh]`) over the `t` keys of batch `b`,
    /// head `h` (of `heads`).
    #[allow(clippy::too_many_arguments)]
    pub fn scores(
        &self,
        level: SimdLevel,
        (b, h, heads): (usize, usize, usize),
        m: usize,
        q: &[f32],
        dh: usize,
        t: usize,
        scores: &mut [f32],
    ) {
        let len = self.n_tiles * dh * KEY_TILE;
        let at = (b * heads + h) * len;
        match &self.data {
            TileData::F32(d) => tiled_scores(level, m, q, dh, &d[at..][..len], t, scores),
            TileData::F16(d) => tiled_scores(level, m, q, dh, &d[at..][..len], t, scores),
        }
    }
}

/// Values `[B, T, H·Dh]` laid out a head at a time, `[B, H, T, Dh]`, in their own precision (f32,
/// or f16 widened as `P·V` reads it). A step's `P·V` then reads each head's values as one
/// stream of `T·Dh` values, not 64 of every `H·Dh` (128 bytes of every 768 in f16): tiny.en's
/// four layers over 7 chunks, 64 MB of keys and values a step, are read from memory, and the
/// products over the strided values took 2.5× the scores' time over the same bytes of tiles.
pub struct HeadMajorValues {
    data: TileData,
}

impl HeadMajorValues {
    fn build(v: Weight<'_>, b: usize, t: usize, heads: usize, dh: usize) -> Self {
        let data = match v {
            Weight::F16(v) => TileData::F16(head_major(v, b, t, heads, dh)),
            // f32 as stored; packed kinds (which attention never passes) widened first.
            v => TileData::F32(head_major(&v.rows_f32(SimdLevel::Portable, 0..b * t * heads * dh, 1), b, t, heads, dh)),
        };
        HeadMajorValues { data }
    }

    /// The values as f16 (None where they are f32).
    pub fn f16(&self) -> Option<&[half::f16]> {
        match &self.data {
            TileData::F16(d) => Some(d),
            TileData::F32(_) => None,
        }
    }

    /// The values as f32 (None where they are f16).
    pub fn f32(&self) -> Option<&[f32]> {
        match &self.data {
            TileData::F32(d) => Some(d),
            TileData::F16(_) => None,
        }
    }
}

/// `v` (`[b, t, heads·dh]`) as `[b, heads, t, dh]`.
fn head_major<E: Copy>(v: &[E], b: usize, t: usize, heads: usize, dh: usize) -> Vec<E> {
    let d = heads * dh;
    let mut out = Vec::with_capacity(b * heads * t * dh);
    for bi in 0..b {
        for h in 0..heads {
            for j in 0..t {
                out.extend_from_slice(&v[(bi * t + j) * d + h * dh..][..dh]);
            }
        }
    }
    out
}

/// One cached layout: (storage, shape, heads) → the layout. A reshaped view shares its storage,
/// hence the shape.
type Entry<T> = (Weak<dyn Storage>, Vec<usize>, usize, Arc<T>);

/// Layouts of recently used tensors, found by the identity of their storage.
pub struct TensorCache<T> {
    entries: Mutex<Vec<Entry<T>>>,
}

impl<T> Default for TensorCache<T> {
    fn default() -> Self {
        TensorCache { entries: Mutex::new(Vec::new()) }
    }
}

/// The cross-attention keys of recent windows as tiles.
pub type KeyTileCache = TensorCache<KeyTiles>;
/// The cross-attention values of recent windows a head at a time.
pub type ValueCache = TensorCache<HeadMajorValues>;

impl<T> TensorCache<T> {
    /// The layout of `x` (`[B, T, heads·dh]`), built by `build(b, t)` on first use.
    fn get_or_build(&self, x: &Tensor, heads: usize, build: impl FnOnce(usize, usize) -> T) -> Arc<T> {
        let storage = Arc::downgrade(x.storage());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Layouts of tensors that are gone: drop them (their memory; the `Weak` keeps the
        // storage's allocation, so its address cannot be taken by a new tensor meanwhile).
        entries.retain(|(w, _, _, _)| w.strong_count() > 0);
        let shape = x.shape();
        if let Some((_, _, _, layout)) =
            entries.iter().find(|(w, s, h, _)| *h == heads && s == shape && Weak::ptr_eq(w, &storage))
        {
            return layout.clone();
        }
        let layout = Arc::new(build(shape[0], shape[1]));
        if entries.len() >= CACHED_TENSORS {
            entries.remove(0);
        }
        entries.push((storage, shape.to_vec(), heads, layout.clone()));
        layout
    }
}

impl KeyTileCache {
    /// The tiles of `k` (`[B, T, heads·dh]`, data `kd`), built on first use.
    pub fn get(&self, k: &Tensor, kd: Weight<'_>, heads: usize, dh: usize) -> Arc<KeyTiles> {
        self.get_or_build(k, heads, |b, t| KeyTiles::build(kd, b, t, heads, dh))
    }
}

impl ValueCache {
    /// The values `v` (`[B, T, heads·dh]`, data `vd`) a head at a time, laid out on first use.
    pub fn get(&self, v: &Tensor, vd: Weight<'_>, heads: usize, dh: usize) -> Arc<HeadMajorValues> {
        self.get_or_build(v, heads, |b, t| HeadMajorValues::build(vd, b, t, heads, dh))
    }
}

/// `scores[r, j] = Σ_p q[r, p] · key_j[p]` for `M` query rows over every key of one head's tiles.
#[inline(always)]
fn scores_m<const M: usize, E: Elem>(q: &[f32], dh: usize, tiles: &[E], t: usize, scores: &mut [f32]) {
    for (ti, tile) in tiles.chunks_exact(dh * KEY_TILE).enumerate() {
        let mut acc = [[0.0f32; KEY_TILE]; M];
        for p in 0..dh {
            let row: &[E; KEY_TILE] = tile[p * KEY_TILE..][..KEY_TILE].try_into().expect("KEY_TILE-sized row");
            // A plain loop: closures (`map`) may stay out of line in the SIMD copies.
            let mut kv = [0.0f32; KEY_TILE];
            for l in 0..KEY_TILE {
                kv[l] = row[l].widen();
            }
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

/// Scores of `m ≤ 8` query rows (`q` is `[m, dh]`) over the `t` keys in `tiles` of one element
/// type; `scores` is `[m, t]`.
macro_rules! tiled_scores_for {
    ($name:ident, $elem:ty) => {
        multiversion! {
            fn $name(m: usize, q: &[f32], dh: usize, tiles: &[$elem], t: usize, scores: &mut [f32]) {
                crate::backend::cpu::simd::for_rows!(m, [1 2 3 4 5 6 7 8], scores_m::<$elem>(q, dh, tiles, t, scores))
            }
        }
    };
}
tiled_scores_for!(tiled_scores_f32, f32);
tiled_scores_for!(tiled_scores_f16, half::f16);

/// Scores of `m ≤ 8` query rows over the `t` keys of one head's tiles: the AVX-512 kernel where
/// the CPU has it (f16 keys widened by `vcvtph2ps`, 16 an instruction), the AVX2 one (8 an
/// instruction) where it has AVX2 and F16C, else the auto-vectorised [`scores_m`] (f16 widened
/// in software); the same sums in the same order each way (multiplies, then adds: no fused
/// multiply-add), so the same bits.
fn tiled_scores<E: TileElem>(
    level: SimdLevel,
    m: usize,
    q: &[f32],
    dh: usize,
    tiles: &[E],
    t: usize,
    scores: &mut [f32],
) {
    assert!(
        (1..=TILED_MAX_ROWS).contains(&m) && q.len() >= m * dh && scores.len() >= m * t,
        "tiled scores: operand sizes"
    );
    assert!(tiles.len() >= t.div_ceil(KEY_TILE) * dh * KEY_TILE, "tiled scores: tiles");
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Avx512 {
        // SAFETY: the Avx512 level is only produced by detection of AVX-512F, AVX2, FMA and
        // F16C on this CPU; the operands' sizes are checked above.
        unsafe { avx512::tiled_scores(m, q, dh, tiles, t, scores) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Avx2 && avx2::available() {
        // SAFETY: the Avx2 level is only produced by detection of AVX2 and FMA on this CPU, and
        // F16C was detected; the operands' sizes are checked above.
        unsafe { avx2::tiled_scores(m, q, dh, tiles, t, scores) };
        return;
    }
    E::scores_autovec(level, m, q, dh, tiles, t, scores)
}

/// A key tile's element type, with its auto-vectorised kernel.
trait TileElem: Elem {
    #[allow(clippy::too_many_arguments)]
    fn scores_autovec(level: SimdLevel, m: usize, q: &[f32], dh: usize, tiles: &[Self], t: usize, scores: &mut [f32]);
}

impl TileElem for f32 {
    fn scores_autovec(level: SimdLevel, m: usize, q: &[f32], dh: usize, tiles: &[f32], t: usize, scores: &mut [f32]) {
        tiled_scores_f32(level, m, q, dh, tiles, t, scores)
    }
}

impl TileElem for half::f16 {
    fn scores_autovec(
        level: SimdLevel,
        m: usize,
        q: &[f32],
        dh: usize,
        tiles: &[half::f16],
        t: usize,
        scores: &mut [f32],
    ) {
        tiled_scores_f16(level, m, q, dh, tiles, t, scores)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Elem, KEY_TILE};

    /// [`super::scores_m`] in intrinsics: one register of 16 keys' scores per query row.
    #[inline(always)]
    unsafe fn scores_m<const M: usize, E: Elem>(q: &[f32], dh: usize, tiles: &[E], t: usize, scores: &mut [f32]) {
        let (qp, sp) = (q.as_ptr(), scores.as_mut_ptr());
        for ti in 0..t.div_ceil(KEY_TILE) {
            let tile = tiles.as_ptr().add(ti * dh * KEY_TILE);
            let mut acc = [_mm512_setzero_ps(); M];
            for p in 0..dh {
                let keys = E::load16(tile.add(p * KEY_TILE));
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_add_ps(*a, _mm512_mul_ps(_mm512_set1_ps(*qp.add(r * dh + p)), keys));
                }
            }
            let j0 = ti * KEY_TILE;
            let n = KEY_TILE.min(t - j0);
            let mask: __mmask16 = if n == KEY_TILE { u16::MAX } else { (1u16 << n) - 1 };
            for (r, a) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(sp.add(r * t + j0), mask, *a);
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F and F16C; `q` holds `m · dh` values, `tiles` every tile of
    /// `t` keys, `scores` `m · t` values.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    pub unsafe fn tiled_scores<E: Elem>(m: usize, q: &[f32], dh: usize, tiles: &[E], t: usize, scores: &mut [f32]) {
        crate::backend::cpu::simd::for_rows!(m, [1 2 3 4 5 6 7 8], scores_m::<E>(q, dh, tiles, t, scores))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Elem, KEY_TILE};

    /// Keys of one register: half a tile.
    const LANES: usize = 8;

    /// [`super::scores_m`] in intrinsics, `VECS` registers of 8 keys per query row at a time (a
    /// whole tile for up to 6 rows; half a tile for 7 and 8, so the accumulators, the keys and a
    /// broadcast query value fit the 16 registers); multiplies then adds in order of the
    /// features, as there (the same bits).
    #[inline(always)]
    unsafe fn scores_m<const M: usize, const VECS: usize, E: Elem>(
        q: &[f32],
        dh: usize,
        tiles: &[E],
        t: usize,
        scores: &mut [f32],
    ) {
        let (qp, sp) = (q.as_ptr(), scores.as_mut_ptr());
        let width = VECS * LANES;
        for ti in 0..t.div_ceil(KEY_TILE) {
            let tile = tiles.as_ptr().add(ti * dh * KEY_TILE);
            for part in 0..KEY_TILE / width {
                let j0 = ti * KEY_TILE + part * width;
                if j0 >= t {
                    break;
                }
                let mut acc = [[_mm256_setzero_ps(); VECS]; M];
                for p in 0..dh {
                    let row = tile.add(p * KEY_TILE + part * width);
                    let mut keys = [_mm256_setzero_ps(); VECS];
                    for (c, k) in keys.iter_mut().enumerate() {
                        *k = E::load8(row.add(c * LANES));
                    }
                    for (r, a) in acc.iter_mut().enumerate() {
                        let qv = _mm256_set1_ps(*qp.add(r * dh + p));
                        for c in 0..VECS {
                            a[c] = _mm256_add_ps(a[c], _mm256_mul_ps(qv, keys[c]));
                        }
                    }
                }
                let n = width.min(t - j0);
                for (r, a) in acc.iter().enumerate() {
                    let mut lanes = [[0.0f32; LANES]; VECS];
                    for c in 0..VECS {
                        _mm256_storeu_ps(lanes[c].as_mut_ptr(), a[c]);
                    }
                    std::ptr::copy_nonoverlapping(lanes.as_ptr() as *const f32, sp.add(r * t + j0), n);
                }
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; `q` holds `m · dh` values, `tiles` every tile of
    /// `t` keys, `scores` `m · t` values.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn tiled_scores<E: Elem>(m: usize, q: &[f32], dh: usize, tiles: &[E], t: usize, scores: &mut [f32]) {
        const WHOLE: usize = super::KEY_TILE / LANES;
        match m {
            1 => scores_m::<1, WHOLE, E>(q, dh, tiles, t, scores),
            2 => scores_m::<2, WHOLE, E>(q, dh, tiles, t, scores),
            3 => scores_m::<3, WHOLE, E>(q, dh, tiles, t, scores),
            4 => scores_m::<4, WHOLE, E>(q, dh, tiles, t, scores),
            5 => scores_m::<5, WHOLE, E>(q, dh, tiles, t, scores),
            6 => scores_m::<6, WHOLE, E>(q, dh, tiles, t, scores),
            7 => scores_m::<7, 1, E>(q, dh, tiles, t, scores),
            8 => scores_m::<8, 1, E>(q, dh, tiles, t, scores),
            _ => unreachable!("tiled scores take 1..=8 query rows"),
        }
    }

    /// Whether this CPU has F16C beside the AVX2 level's AVX2 and FMA.
    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("f16c")
    }
}

/// Whether an attention of `rows` query rows per key head over `t` keys uses the tiles: only
/// when they will be reused (long key sets are the cross-attention of decoder steps).
pub fn worth_tiling(rows: usize, t: usize, level: SimdLevel) -> bool {
    rows <= TILED_MAX_ROWS && t >= MIN_TILED_KEYS && level != SimdLevel::Portable
}

/// Shorter key sets (the growing self-attention cache) change every step: no reuse.
const MIN_TILED_KEYS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every SIMD level's tiled scores give the same bits (multiplies then adds, in order of the
    /// features), over f32 keys and over f16 ones, which give the bits of their widened values;
    /// and those are the plain dot products (each summed in the same order).
    #[test]
    fn tiled_scores_agree_bit_for_bit_and_with_plain_dots() {
        let mut seed = 7u32;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % 2001) as f32 / 1000.0 - 1.0
        };
        // Row counts on every tile width of the AVX2 kernel (whole tiles to 6 rows, halves for 7
        // and 8), with key counts ending inside either half of a tile.
        for &(b, t, heads, dh, m) in &[
            (1, 1, 1, 1, 1),
            (2, 301, 3, 64, 5),
            (1, 16, 2, 8, 8),
            (3, 257, 6, 64, 3),
            (2, 45, 2, 16, 7),
            (1, 40, 1, 32, 6),
            (1, 35, 2, 64, 8),
            (1, 24, 1, 8, 2),
            (2, 50, 2, 16, 4),
        ] {
            let d = heads * dh;
            let k16: Vec<half::f16> = (0..b * t * d).map(|_| half::f16::from_f32(rnd())).collect();
            let k32: Vec<f32> = k16.iter().map(|v| v.to_f32()).collect();
            let q: Vec<f32> = (0..m * dh).map(|_| rnd()).collect();
            let tiles16 = KeyTiles::build(Weight::F16(&k16), b, t, heads, dh);
            let tiles32 = KeyTiles::build(Weight::F32(&k32), b, t, heads, dh);
            for (bi, h) in [(0, 0), (b - 1, heads - 1)] {
                let mut want = vec![0.0f32; m * t];
                for r in 0..m {
                    for j in 0..t {
                        let key = &k32[(bi * t + j) * d + h * dh..][..dh];
                        want[r * t + j] = (0..dh).fold(0.0f32, |acc, p| acc + q[r * dh + p] * key[p]);
                    }
                }
                for level in [SimdLevel::Portable, SimdLevel::Avx2.min(SimdLevel::detect()), SimdLevel::detect()] {
                    for tiles in [&tiles16, &tiles32] {
                        let mut got = vec![f32::NAN; m * t];
                        tiles.scores(level, (bi, h, heads), m, &q, dh, t, &mut got);
                        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                        assert_eq!(bits(&got), bits(&want), "{level:?} b {b} t {t} heads {heads} dh {dh} m {m}");
                    }
                }
            }
        }
    }
}
