//! Multi-head scaled dot-product attention on packed heads (`[B, T, H·Dh]`), with an optional
//! length per key/value row (key padding: a batch of sequences of different lengths padded to
//! one `Tk`, each row's scores taken over its own keys only, so a padded row's result is the
//! unpadded sequence's, the same sums in the same query blocks).
//!
//! Two schedules, same arithmetic:
//! - few query rows per key/value head (a decoder step: the beams of one audio share its
//!   cross-attention keys): one task per (key/value batch, head) gathers every query row that
//!   reads those keys and streams each key and value row once ([`super::skinny`]);
//! - many query rows (the encoder, a prompt): one task per (batch, head, block of
//!   `QUERY_BLOCK` rows), so the block's scores stay in L2 between Q·Kᵀ, softmax and ·V.
//!
//! Keys and values may be f16 (a decoder's cross-attention, `to_float16`): the skinny schedule
//! widens them as it reads them and takes up to 64 query rows a head for them (8 for f32); the
//! blocked one widens them first. Either gives the bits of the same schedule over the widened
//! values.

use rayon::prelude::*;

use super::bf16;
use super::gemm::{sgemm, MatRef};
use super::key_tiles::{worth_tiling, KeyTileCache, KeyTiles, ValueCache};
use super::simd::SimdLevel;
use super::skinny::{skinny_nn, skinny_nt, Elem, Threads, SKINNY_BATCH_MAX_ROWS, SKINNY_MAX_ROWS};
use super::softmax::{softmax_row_scaled, softmax_row_scaled_into_pairs};
use super::{data, floats, tensor, CpuBackend, Weight};
use crate::backend::kernels::AttentionOps;
use crate::backend::Tensor;
use crate::error::{Error, Result};

/// Query rows per task on the blocked schedule: 64 rows × 1500 keys of scores is 384 KB.
const QUERY_BLOCK: usize = 64;

/// One task's output rows: `rows` query rows of batch `bi`'s head `h` starting at `row0`, or,
/// on the skinny schedule, every query row of every batch in a key/value group.
struct Piece {
    h: usize,
    /// (batch, first query row, rows) covered, in the order their outputs lie in `out`.
    spans: Vec<(usize, usize, usize)>,
    out: Vec<f32>,
}

/// A step's values: the tensor's rows `[Bk, Tk, H·Dh]`, and the same values a head at a time
/// (`[Bk, H, Tk, Dh]`) where the cache laid them out.
#[derive(Clone, Copy)]
struct Values<'a, E> {
    rows: &'a [E],
    head_major: Option<&'a [E]>,
}

/// `kv_lens`: keys of each key/value batch row (all `Tk` when None), with `causal` false (the
/// rule of [`shape_checks::attention_kv_lens`](crate::backend::shape_checks::attention_kv_lens)).
/// `bf16`: on the blocked schedule, where the CPU has AVX-512 BF16, both products take their
/// operands rounded to bf16 (f32 sums; the softmax in f32).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    level: SimdLevel,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
    kv_lens: Option<&[usize]>,
    tile_cache: &KeyTileCache,
    value_cache: &ValueCache,
    bf16: bool,
) -> Result<Tensor> {
    let (b, tq, d, bk, tk) = match kv_lens {
        Some(lens) => crate::backend::shape_checks::attention_kv_lens(q, k, v, heads, lens)?,
        None => crate::backend::shape_checks::attention(q, k, v, heads, causal)?,
    };
    let mut out = vec![0.0f32; b * tq * d];
    if tq == 0 || tk == 0 {
        return Ok(tensor(vec![b, tq, d], out));
    }
    let geo = Geometry {
        tq,
        tk,
        d,
        dh: d / heads,
        // Query rows share key/value rows in contiguous groups (beams of one audio share its
        // cross-attention keys and values).
        group: b / bk,
        scale: 1.0 / ((d / heads) as f32).sqrt(),
        causal,
        kv_lens,
    };
    let qd = data(q)?;
    let (kf, vf) = (floats(k, "attention")?, floats(v, "attention")?);
    // Half-precision keys and values take the skinny schedule up to SKINNY_BATCH_MAX_ROWS query
    // rows a key/value head (a prompt pass over the beams, more than 8 beams), where they are
    // read as they are stored; the blocked schedules would widen them all at every call.
    let skinny_rows = match kf {
        Weight::F16(_) => SKINNY_BATCH_MAX_ROWS,
        _ => SKINNY_MAX_ROWS,
    };
    let pieces: Vec<Piece> = if geo.group * tq <= skinny_rows {
        // The cached key tiles and head-major values hold every key and value of a tensor that
        // later steps read again: the cross-attention's (lengths take the plain path). A causal
        // call is the decoder's self-attention, whose keys and values are new tensors every step
        // (past 256 of them with a long prompt, each would be laid out once and never reused).
        let reused = !causal && kv_lens.is_none() && worth_tiling(geo.group * tq, tk, level);
        let tiles = reused.then(|| tile_cache.get(k, kf, heads, geo.dh));
        let values = reused.then(|| value_cache.get(v, vf, heads, geo.dh));
        let values = values.as_deref();
        // Half-precision keys and values are widened as they are read.
        match (kf, vf) {
            (Weight::F32(kd), Weight::F32(vd)) => {
                let vd = Values { rows: vd, head_major: values.and_then(|v| v.f32()) };
                geo.skinny_tasks(level, qd, kd, vd, tiles.as_deref(), bk, heads)
            }
            (Weight::F16(kd), Weight::F16(vd)) => {
                let vd = Values { rows: vd, head_major: values.and_then(|v| v.f16()) };
                geo.skinny_tasks(level, qd, kd, vd, tiles.as_deref(), bk, heads)
            }
            _ => return Err(Error::shape("attention", format!("k is {} but v is {}", k.dtype(), v.dtype()))),
        }
    } else {
        // The blocked schedules read f32: half-precision keys and values (a long prompt over the
        // cross-attention's) are widened once, here.
        let (kw, vw) = (kf.rows_f32(level, 0..k.numel(), 1), vf.rows_f32(level, 0..v.numel(), 1));
        let (kd, vd) = (&kw[..], &vw[..]);
        if bf16 && bf16::kernel_available(level) {
            // Each key/value head rounded and packed once, then the blocks of query rows as on the
            // f32 schedule.
            let packed: Vec<(bf16::Bf16Matrix, bf16::Bf16Matrix)> =
                (0..bk * heads).into_par_iter().map(|t| geo.pack_bf16(level, kd, vd, t / heads, t % heads)).collect();
            let blocks = tq.div_ceil(QUERY_BLOCK);
            (0..b * heads * blocks)
                .into_par_iter()
                .map(|task| {
                    let (bh, blk) = (task / blocks, task % blocks);
                    let (bi, h) = (bh / heads, bh % heads);
                    let row0 = blk * QUERY_BLOCK;
                    let kv = &packed[(bi / geo.group) * heads + h];
                    geo.blocked_bf16(level, qd, kv, bi, h, row0, QUERY_BLOCK.min(tq - row0))
                })
                .collect()
        } else {
            let blocks = tq.div_ceil(QUERY_BLOCK);
            (0..b * heads * blocks)
                .into_par_iter()
                .map(|task| {
                    let (bh, blk) = (task / blocks, task % blocks);
                    let row0 = blk * QUERY_BLOCK;
                    geo.blocked(level, qd, kd, vd, bh / heads, bh % heads, row0, QUERY_BLOCK.min(tq - row0))
                })
                .collect()
        }
    };
    let dh = geo.dh;
    for piece in &pieces {
        let mut src = piece.out.chunks_exact(dh);
        for &(bi, row0, rows) in &piece.spans {
            for i in row0..row0 + rows {
                let o = src.next().expect("one output row per query row");
                out[(bi * tq + i) * d + piece.h * dh..][..dh].copy_from_slice(o);
            }
        }
    }
    Ok(tensor(vec![b, tq, d], out))
}

struct Geometry<'a> {
    tq: usize,
    tk: usize,
    d: usize,
    dh: usize,
    group: usize,
    scale: f32,
    causal: bool,
    kv_lens: Option<&'a [usize]>,
}

impl Geometry<'_> {
    /// Keys of key/value batch row `kb`: the first `kv_lens[kb]`, or all `tk`. Scores are taken
    /// over these only, as the unpadded sequence's would be.
    fn keys(&self, kb: usize) -> usize {
        self.kv_lens.map_or(self.tk, |lens| lens[kb])
    }

    /// Of a row's `keys`, those visible to query row `i` (all of them unless causal; causal
    /// allows tq ≤ tk, the queries being the last `tq` positions).
    fn visible(&self, keys: usize, i: usize) -> usize {
        if self.causal {
            (i + self.tk - self.tq + 1).min(keys)
        } else {
            keys
        }
    }

    /// Scores `[rows, keys]` (unscaled) → probabilities in place, row `r` being query row
    /// `i0 + r`.
    fn softmax_rows(&self, level: SimdLevel, scores: &mut [f32], keys: usize, i0: usize) {
        for (r, s) in scores.chunks_exact_mut(keys).enumerate() {
            self.mask_row(s, i0 + r);
            softmax_row_scaled(level, s, self.scale);
        }
    }

    /// Query row `i`'s scores over a row's keys with those it may not see set to −∞.
    fn mask_row(&self, scores: &mut [f32], i: usize) {
        let visible = self.visible(scores.len(), i);
        scores[visible..].fill(f32::NEG_INFINITY);
    }

    /// [`Self::skinny`] for every key/value batch and head, one task each.
    #[allow(clippy::too_many_arguments)]
    fn skinny_tasks<E: Elem>(
        &self,
        level: SimdLevel,
        qd: &[f32],
        kd: &[E],
        vd: Values<'_, E>,
        tiles: Option<&KeyTiles>,
        bk: usize,
        heads: usize,
    ) -> Vec<Piece> {
        (0..bk * heads)
            .into_par_iter()
            .map(|task| self.skinny(level, qd, kd, vd, tiles, task / heads, task % heads))
            .collect()
    }

    /// Every query row of key/value batch `kb`'s group, head `h`.
    #[allow(clippy::too_many_arguments)]
    fn skinny<E: Elem>(
        &self,
        level: SimdLevel,
        qd: &[f32],
        kd: &[E],
        vd: Values<'_, E>,
        tiles: Option<&KeyTiles>,
        kb: usize,
        h: usize,
    ) -> Piece {
        let (tq, tk, d, dh) = (self.tq, self.tk, self.d, self.dh);
        let keys = self.keys(kb);
        let rows = self.group * tq;
        let mut qs = Vec::with_capacity(rows * dh);
        let mut spans = Vec::with_capacity(self.group);
        for g in 0..self.group {
            let bi = kb * self.group + g;
            for i in 0..tq {
                qs.extend_from_slice(&qd[(bi * tq + i) * d + h * dh..][..dh]);
            }
            spans.push((bi, 0, tq));
        }
        let kh = &kd[kb * tk * d + h * dh..];
        // The head's values: rows `d` apart in the tensor, `dh` apart laid out a head at a time.
        let (vh, ldv) = match vd.head_major {
            Some(v) => (&v[(kb * (d / dh) + h) * tk * dh..], dh),
            None => (&vd.rows[kb * tk * d + h * dh..], d),
        };
        let mut scores = vec![0.0f32; rows * keys];
        match tiles {
            // Tiles are only used without lengths: `keys == tk`.
            Some(t) => t.scores(level, (kb, h, d / dh), rows, &qs, dh, tk, &mut scores),
            None => skinny_nt(level, Threads::Caller, rows, keys, dh, &qs, kh, d, &mut scores),
        }
        for s in scores.chunks_exact_mut(tq * keys) {
            self.softmax_rows(level, s, keys, 0);
        }
        let mut out = vec![0.0f32; rows * dh];
        skinny_nn(level, rows, keys, dh, &scores, vh, ldv, &mut out);
        Piece { h, spans, out }
    }

    /// Query rows `row0..row0 + rows` of batch `bi`, head `h`.
    #[allow(clippy::too_many_arguments)]
    fn blocked(
        &self,
        level: SimdLevel,
        qd: &[f32],
        kd: &[f32],
        vd: &[f32],
        bi: usize,
        h: usize,
        row0: usize,
        rows: usize,
    ) -> Piece {
        let (tq, tk, d, dh) = (self.tq, self.tk, self.d, self.dh);
        let kb = bi / self.group;
        let keys = self.keys(kb);
        let qh = &qd[(bi * tq + row0) * d + h * dh..];
        let kh = &kd[kb * tk * d + h * dh..];
        let vh = &vd[kb * tk * d + h * dh..];
        let mut scores = vec![0.0f32; rows * keys];
        // scores[i, j] = q_i · k_j
        sgemm(
            level,
            rows,
            keys,
            dh,
            MatRef { data: qh, rs: d, cs: 1 },
            MatRef { data: kh, rs: 1, cs: d },
            &mut scores,
            keys,
            false,
            false,
        );
        self.softmax_rows(level, &mut scores, keys, row0);
        let mut out = vec![0.0f32; rows * dh];
        sgemm(
            level,
            rows,
            dh,
            keys,
            MatRef::row_major(&scores, keys),
            MatRef { data: vh, rs: d, cs: 1 },
            &mut out,
            dh,
            false,
            false,
        );
        Piece { h, spans: vec![(bi, row0, rows)], out }
    }
}

impl Geometry<'_> {
    /// Key/value batch `kb`'s head `h` rounded to bf16 and packed: `K` as the packed operand of
    /// `Q·Kᵀ` (`[keys, dh]`), `Vᵀ` as that of `P·V` (`[dh, keys]`).
    fn pack_bf16(
        &self,
        level: SimdLevel,
        kd: &[f32],
        vd: &[f32],
        kb: usize,
        h: usize,
    ) -> (bf16::Bf16Matrix, bf16::Bf16Matrix) {
        let (tk, d, dh) = (self.tk, self.d, self.dh);
        let keys = self.keys(kb);
        let at = kb * tk * d + h * dh;
        (
            bf16::Bf16Matrix::from_rows(level, &kd[at..], d, keys, dh),
            bf16::Bf16Matrix::from_columns(level, &vd[at..], d, keys, dh),
        )
    }

    /// [`Self::blocked`] with `Q·Kᵀ` and `P·V` on bf16 operands with f32 sums ([`bf16::gemm_new`];
    /// `kv` from [`Self::pack_bf16`]), the softmax in f32 as there.
    #[allow(clippy::too_many_arguments)]
    fn blocked_bf16(
        &self,
        level: SimdLevel,
        qd: &[f32],
        kv: &(bf16::Bf16Matrix, bf16::Bf16Matrix),
        bi: usize,
        h: usize,
        row0: usize,
        rows: usize,
    ) -> Piece {
        let (tq, d, dh) = (self.tq, self.d, self.dh);
        let (k_packed, v_packed) = kv;
        let keys = k_packed.rows();
        let mut q_rows = vec![0.0f32; rows * dh];
        for (r, dst) in q_rows.chunks_exact_mut(dh).enumerate() {
            dst.copy_from_slice(&qd[(bi * tq + row0 + r) * d + h * dh..][..dh]);
        }
        let q_pairs = bf16::rows_to_pairs(level, &q_rows, rows, dh);
        let mut scores = bf16::gemm_new(level, rows, &q_pairs, k_packed, None, false);
        let mut p_pairs = vec![0u32; rows * keys.div_ceil(2)];
        for ((r, s), p) in scores.chunks_exact_mut(keys).enumerate().zip(p_pairs.chunks_exact_mut(keys.div_ceil(2))) {
            self.mask_row(s, row0 + r);
            softmax_row_scaled_into_pairs(level, s, self.scale, p);
        }
        let out = bf16::gemm_new(level, rows, &p_pairs, v_packed, None, false);
        Piece { h, spans: vec![(bi, row0, rows)], out }
    }
}

impl AttentionOps for CpuBackend {
    fn softmax(&self, x: &Tensor, log: bool) -> Result<Tensor> {
        super::softmax::softmax(self.simd, x, log)
    }

    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        attention(self.simd, q, k, v, heads, causal, None, &self.key_tiles, &self.values, false)
    }

    fn attention_bf16(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        attention(self.simd, q, k, v, heads, causal, None, &self.key_tiles, &self.values, true)
    }

    fn attention_kv_lens(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, kv_lens: &[usize]) -> Result<Tensor> {
        attention(self.simd, q, k, v, heads, false, Some(kv_lens), &self.key_tiles, &self.values, false)
    }

    fn attention_kv_lens_bf16(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        kv_lens: &[usize],
    ) -> Result<Tensor> {
        attention(self.simd, q, k, v, heads, false, Some(kv_lens), &self.key_tiles, &self.values, true)
    }
}
