//! Multi-head scaled dot-product attention on packed heads (`[B, T, H·Dh]`).
//!
//! Two schedules, same arithmetic:
//! - few query rows per key/value head (a decoder step: the beams of one audio share its
//!   cross-attention keys): one task per (key/value batch, head) gathers every query row that
//!   reads those keys and streams each key and value row once ([`super::skinny`]);
//! - many query rows (the encoder, a prompt): one task per (batch, head, block of
//!   `QUERY_BLOCK` rows), so the block's scores stay in L2 between Q·Kᵀ, softmax and ·V.

use rayon::prelude::*;

use super::gemm::{sgemm, MatRef};
use super::key_tiles::{tiled_scores, worth_tiling, KeyTileCache, KeyTiles};
use super::simd::SimdLevel;
use super::skinny::{skinny_nn, skinny_nt, SKINNY_MAX_ROWS};
use super::softmax::softmax_row_scaled;
use super::{data, tensor, CpuBackend};
use crate::backend::kernels::AttentionOps;
use crate::backend::Tensor;
use crate::error::Result;

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

pub fn attention(
    level: SimdLevel,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
    tile_cache: &KeyTileCache,
) -> Result<Tensor> {
    let (b, tq, d, bk, tk) = crate::backend::shape_checks::attention(q, k, v, heads, causal)?;
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
    };
    let (qd, kd, vd) = (data(q)?, data(k)?, data(v)?);
    let pieces: Vec<Piece> = if geo.group * tq <= SKINNY_MAX_ROWS {
        let tiles = worth_tiling(geo.group * tq, tk, level).then(|| tile_cache.get(k, kd, heads, geo.dh));
        (0..bk * heads)
            .into_par_iter()
            .map(|task| geo.skinny(level, qd, kd, vd, tiles.as_deref(), task / heads, task % heads))
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

struct Geometry {
    tq: usize,
    tk: usize,
    d: usize,
    dh: usize,
    group: usize,
    scale: f32,
    causal: bool,
}

impl Geometry {
    /// Keys visible to query row `i` (all of them unless causal; causal allows tq ≤ tk, the
    /// queries being the last `tq` positions).
    fn visible(&self, i: usize) -> usize {
        if self.causal {
            i + self.tk - self.tq + 1
        } else {
            self.tk
        }
    }

    /// Scores `[rows, tk]` (unscaled) → probabilities in place, row `r` being query row `i0 + r`.
    fn softmax_rows(&self, level: SimdLevel, scores: &mut [f32], i0: usize) {
        let tk = self.tk;
        for (r, s) in scores.chunks_exact_mut(tk).enumerate() {
            let visible = self.visible(i0 + r);
            s[visible..].fill(f32::NEG_INFINITY);
            softmax_row_scaled(level, s, self.scale);
        }
    }

    /// Every query row of key/value batch `kb`'s group, head `h`.
    #[allow(clippy::too_many_arguments)]
    fn skinny(
        &self,
        level: SimdLevel,
        qd: &[f32],
        kd: &[f32],
        vd: &[f32],
        tiles: Option<&KeyTiles>,
        kb: usize,
        h: usize,
    ) -> Piece {
        let (tq, tk, d, dh) = (self.tq, self.tk, self.d, self.dh);
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
        let vh = &vd[kb * tk * d + h * dh..];
        let mut scores = vec![0.0f32; rows * tk];
        match tiles {
            Some(t) => tiled_scores(level, rows, &qs, dh, t.head(kb, h, d / dh, dh), tk, &mut scores),
            None => skinny_nt(level, rows, tk, dh, &qs, kh, d, &mut scores),
        }
        for s in scores.chunks_exact_mut(tq * tk) {
            self.softmax_rows(level, s, 0);
        }
        let mut out = vec![0.0f32; rows * dh];
        skinny_nn(level, rows, tk, dh, &scores, vh, d, &mut out);
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
        let qh = &qd[(bi * tq + row0) * d + h * dh..];
        let kh = &kd[bi / self.group * tk * d + h * dh..];
        let vh = &vd[bi / self.group * tk * d + h * dh..];
        let mut scores = vec![0.0f32; rows * tk];
        // scores[i, j] = q_i · k_j
        sgemm(
            level,
            rows,
            tk,
            dh,
            MatRef { data: qh, rs: d, cs: 1 },
            MatRef { data: kh, rs: 1, cs: d },
            &mut scores,
            tk,
            false,
            false,
        );
        self.softmax_rows(level, &mut scores, row0);
        let mut out = vec![0.0f32; rows * dh];
        sgemm(
            level,
            rows,
            dh,
            tk,
            MatRef::row_major(&scores, tk),
            MatRef { data: vh, rs: d, cs: 1 },
            &mut out,
            dh,
            false,
            false,
        );
        Piece { h, spans: vec![(bi, row0, rows)], out }
    }
}

impl AttentionOps for CpuBackend {
    fn softmax(&self, x: &Tensor, log: bool) -> Result<Tensor> {
        super::softmax::softmax(self.simd, x, log)
    }

    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        attention(self.simd, q, k, v, heads, causal, &self.key_tiles)
    }
}
