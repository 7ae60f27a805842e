//! One direction of `nn.LSTM`: the input projection for all steps is one GEMM, then each step
//! adds `h·W_hhᵀ` and applies the gates (PyTorch order: input, forget, cell, output). With
//! bfloat16 weights ([`MemoryOps::round_bfloat16`](crate::backend::kernels::MemoryOps)) both
//! products run on the bf16 kernel (`h` rounded each step, f32 sums); the gates, the cell and
//! `h` itself stay f32.

use rayon::prelude::*;

use super::bf16::{self, Bf16Matrix};
use super::math;
use super::simd::{multiversion, SimdLevel};
use super::skinny::{skinny_nt, SKINNY_MAX_ROWS};
use super::{data, linear, tensor, weight, CpuBackend, Weight};
use crate::backend::kernels::RecurrentOps;
use crate::backend::Tensor;
use crate::error::Result;

pub fn lstm(
    level: SimdLevel,
    x: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
    reverse: bool,
) -> Result<Tensor> {
    let (b, t, hsz) = crate::backend::shape_checks::lstm(x, w_ih, w_hh, b_ih, b_hh)?;
    let g4 = 4 * hsz;
    let bias: Vec<f32> = data(b_ih)?.iter().zip(data(b_hh)?).map(|(a, c)| a + c).collect();
    let mut out = vec![0.0f32; b * t * hsz];
    if b == 0 || t == 0 || hsz == 0 {
        return Ok(tensor(vec![b, t, hsz], out));
    }
    let stored = weight(w_hh)?;
    let recurrent = match stored {
        Weight::Bf16(w) if bf16::kernel_available(level) => Recurrent::Bf16(w),
        _ => {
            let whh = stored.rows_f32(level, 0..g4, hsz);
            // `W_hhᵀ` packed once for every task (AVX-512).
            #[cfg(target_arch = "x86_64")]
            if level >= SimdLevel::Avx512 {
                Recurrent::Packed(avx512::PackedRecurrent::new(&whh, hsz))
            } else {
                Recurrent::Skinny(whh)
            }
            #[cfg(not(target_arch = "x86_64"))]
            Recurrent::Skinny(whh)
        }
    };
    let (xd, input, w_in) = (data(x)?, x.dim(2), weight(w_ih)?);
    let threads = rayon::current_num_threads().max(1);
    // A group of sequences at a time: the input projection for every step of the group,
    // `[G, T, 4H] = x·W_ihᵀ + b_ih (+ b_hh folded in)`, then its recurrence, so the projections
    // are read back from the caches, not from memory.
    let group = SEQUENCES_PER_PROJECTION.max(threads);
    for (g, out) in out.chunks_mut(group * t * hsz).enumerate() {
        let rows = out.len() / (t * hsz);
        let first = g * group;
        let xg = &xd[first * t * input..(first + rows) * t * input];
        let pre = linear::linear_rows(level, xg, rows * t, input, w_in, g4, Some(&bias));
        // The recurrence is sequential in time but independent across the sequences: each
        // thread runs every step for its own rows.
        let rows_per_task = rows.div_ceil(threads).max(1);
        out.par_chunks_mut(rows_per_task * t * hsz).enumerate().for_each(|(task, out)| {
            let first = task * rows_per_task;
            let rows = out.len() / (t * hsz);
            let pre = &pre[first * t * g4..(first + rows) * t * g4];
            recurrence(level, pre, &recurrent, out, rows, t, hsz, reverse);
        });
    }
    Ok(tensor(vec![b, t, hsz], out))
}

/// Sequences whose input projections are computed and then consumed together (no fewer than
/// the threads). A pyannote window's projections are 293 steps × 512 gates (600 KB a
/// sequence): those of 8 can stay in the caches between the GEMM that writes them and the
/// recurrence that reads them, those of a whole batch of 32 (19 MB) likely cannot. The VAD's
/// LSTMs in 32-window batches on the long benchmark file: 0.63–0.68 s with the whole batch at
/// once, 0.57–0.60 s in groups of 8 sequences (the same bits: each sequence's sums do not
/// depend on the others while its projection is a GEMM, more than 64 steps).
const SEQUENCES_PER_PROJECTION: usize = super::CPU_SEQUENCES_PER_PASS;

/// `W_hh` in the form each step's product reads.
enum Recurrent<'a> {
    /// Row-major `[4H, H]`, read in place by the skinny product.
    Skinny(std::borrow::Cow<'a, [f32]>),
    /// `W_hhᵀ` packed for the AVX-512 recurrent product.
    #[cfg(target_arch = "x86_64")]
    Packed(avx512::PackedRecurrent),
    /// bf16, packed for the `vdpbf16ps` kernel.
    Bf16(&'a Bf16Matrix),
}

/// The time loop for `rows` sequences: `pre[rows, t, 4H]` input projections (biases folded
/// in) → `out[rows, t, H]`. With AVX-512 the recurrent product runs on `W_hhᵀ` packed once per
/// call ([`avx512::recurrent_product`], no reductions), with bf16 weights on the bf16 kernel;
/// elsewhere it is a skinny one (at most [`SKINNY_MAX_ROWS`] rows against `W_hh` read in place:
/// `gemm` would pack `W_hh` every step).
#[allow(clippy::too_many_arguments)]
fn recurrence(
    level: SimdLevel,
    pre: &[f32],
    recurrent: &Recurrent<'_>,
    out: &mut [f32],
    rows: usize,
    t: usize,
    hsz: usize,
    reverse: bool,
) {
    let g4 = 4 * hsz;
    // Gates of one row are `stride` apart (the packed product's padded width).
    let stride = match recurrent {
        #[cfg(target_arch = "x86_64")]
        Recurrent::Packed(p) => p.stride(),
        _ => g4,
    };
    let mut h = vec![0.0f32; rows * hsz];
    // `h` rounded to bf16 pairs for the bf16 product.
    let mut h_pairs = match recurrent {
        Recurrent::Bf16(_) => vec![0u32; rows * hsz.div_ceil(2)],
        _ => Vec::new(),
    };
    let mut c = vec![0.0f32; rows * hsz];
    let mut gates = vec![0.0f32; rows * stride];
    for step in 0..t {
        let ti = if reverse { t - 1 - step } else { step };
        // gates = h·W_hhᵀ; the input projections are added as the cell reads them.
        match recurrent {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: packed only when the level (detected on this CPU) has AVX-512.
            Recurrent::Packed(p) => unsafe { avx512::recurrent_product(p, &h, rows, &mut gates) },
            Recurrent::Bf16(w) => {
                bf16::rows_into_pairs(level, &h, hsz, &mut h_pairs);
                bf16::gemm(level, rows, &h_pairs, w, &mut gates, None, false, false);
            }
            Recurrent::Skinny(whh) => {
                gates.fill(0.0);
                for r0 in (0..rows).step_by(SKINNY_MAX_ROWS) {
                    let m = SKINNY_MAX_ROWS.min(rows - r0);
                    let (x, g) = (&h[r0 * hsz..(r0 + m) * hsz], &mut gates[r0 * g4..(r0 + m) * g4]);
                    skinny_nt(level, m, g4, hsz, x, whh, hsz, g);
                }
            }
        }
        for bi in 0..rows {
            let o_row = &mut out[(bi * t + ti) * hsz..][..hsz];
            cell_update(
                level,
                &gates[bi * stride..bi * stride + g4],
                &pre[(bi * t + ti) * g4..][..g4],
                &mut c[bi * hsz..(bi + 1) * hsz],
                &mut h[bi * hsz..(bi + 1) * hsz],
                o_row,
            );
        }
    }
}

/// The recurrent product on AVX-512: `gates[r, :] = h[r, :] · W_hhᵀ` with `W_hhᵀ` packed
/// row-major (`[H, 4H]`, each row padded to whole blocks of [`GATE_BLOCK`]), so each step is a
/// small GEMM whose tiles of up to [`TILE_ROWS`] rows × 64 gates stay in 16 registers, one
/// broadcast of `h` and four fused multiply-adds per k: no horizontal sums, and a block of
/// `W_hhᵀ` (H × 64 floats, 32 KiB at H = 128) read from L1 by every tile.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Gates of one register tile: four registers of 16.
    pub const GATE_BLOCK: usize = 64;
    /// Rows of one register tile (16 accumulators).
    pub const TILE_ROWS: usize = 4;

    /// `W_hhᵀ` `[H, stride]`, zero beyond column 4H.
    pub struct PackedRecurrent {
        wt: Vec<f32>,
        hsz: usize,
        stride: usize,
    }

    impl PackedRecurrent {
        pub fn new(whh: &[f32], hsz: usize) -> Self {
            let g4 = 4 * hsz;
            let stride = g4.div_ceil(GATE_BLOCK) * GATE_BLOCK;
            let mut wt = vec![0.0f32; hsz * stride];
            for (j, row) in whh.chunks_exact(hsz).take(g4).enumerate() {
                for (k, &v) in row.iter().enumerate() {
                    wt[k * stride + j] = v;
                }
            }
            PackedRecurrent { wt, hsz, stride }
        }

        pub fn stride(&self) -> usize {
            self.stride
        }
    }

    /// `gates[r, ..] = h[r, ..] · W_hhᵀ` for `rows` rows (`gates` rows `p.stride` apart).
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn recurrent_product(p: &PackedRecurrent, h: &[f32], rows: usize, gates: &mut [f32]) {
        assert!(h.len() >= rows * p.hsz && gates.len() >= rows * p.stride, "recurrent product: operand sizes");
        assert_eq!(p.wt.len(), p.hsz * p.stride);
        for block in (0..p.stride).step_by(GATE_BLOCK) {
            for r0 in (0..rows).step_by(TILE_ROWS) {
                let (hp, wp) = (h.as_ptr().add(r0 * p.hsz), p.wt.as_ptr().add(block));
                let gp = gates.as_mut_ptr().add(r0 * p.stride + block);
                match (rows - r0).min(TILE_ROWS) {
                    1 => tile::<1>(hp, p.hsz, wp, p.stride, gp),
                    2 => tile::<2>(hp, p.hsz, wp, p.stride, gp),
                    3 => tile::<3>(hp, p.hsz, wp, p.stride, gp),
                    _ => tile::<4>(hp, p.hsz, wp, p.stride, gp),
                }
            }
        }
    }

    /// `R` rows × one block of 64 gates: `gates = Σ_k h[r, k] · wt[k, ..]`.
    ///
    /// # Safety
    /// `h` must hold `R` rows of `hsz`, `wt` `hsz` rows of 64 readable floats `stride` apart,
    /// `gates` `R` rows of 64 `stride` apart (the caller's asserts and block loop ensure it).
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)]
    unsafe fn tile<const R: usize>(h: *const f32, hsz: usize, wt: *const f32, stride: usize, gates: *mut f32) {
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        for k in 0..hsz {
            let w = wt.add(k * stride);
            let ws = [
                _mm512_loadu_ps(w),
                _mm512_loadu_ps(w.add(16)),
                _mm512_loadu_ps(w.add(32)),
                _mm512_loadu_ps(w.add(48)),
            ];
            for r in 0..R {
                let x = _mm512_set1_ps(*h.add(r * hsz + k));
                for c in 0..4 {
                    acc[r][c] = _mm512_fmadd_ps(x, ws[c], acc[r][c]);
                }
            }
        }
        for r in 0..R {
            for c in 0..4 {
                _mm512_storeu_ps(gates.add(r * stride + 16 * c), acc[r][c]);
            }
        }
    }
}

multiversion! {
    /// One row's gates `[i, f, g, o]` (pre-activation, `4H`: the recurrent product `gates`
    /// plus the input projection `pre`) → the new cell `c` and hidden `h` (also written to
    /// `out`): `c = σ(f)·c + σ(i)·tanh(g)`, `h = σ(o)·tanh(c)`.
    fn cell_update(gates: &[f32], pre: &[f32], c: &mut [f32], h: &mut [f32], out: &mut [f32]) {
        let hsz = c.len();
        let gate = |k: usize| gates[k * hsz..(k + 1) * hsz].iter().zip(&pre[k * hsz..(k + 1) * hsz]);
        // Two passes, so that each iteration's chain of exponentials and divisions is half as
        // long and more iterations overlap; `h` (already read by the recurrent product) holds
        // σ(o) in between. The same operations on each element: the same bits.
        for ((((i, f), g), o), (cv, hv)) in
            gate(0).zip(gate(1)).zip(gate(2)).zip(gate(3)).zip(c.iter_mut().zip(h.iter_mut()))
        {
            let (i, f, g, o) = (i.0 + i.1, f.0 + f.1, g.0 + g.1, o.0 + o.1);
            *cv = math::sigmoid(f) * *cv + math::sigmoid(i) * math::tanh(g);
            *hv = math::sigmoid(o);
        }
        for ((hv, ov), &cell) in h.iter_mut().zip(out.iter_mut()).zip(c.iter()) {
            let hidden = *hv * math::tanh(cell);
            *hv = hidden;
            *ov = hidden;
        }
    }
}

impl RecurrentOps for CpuBackend {
    fn lstm(
        &self,
        x: &Tensor,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        reverse: bool,
    ) -> Result<Tensor> {
        lstm(self.simd, x, w_ih, w_hh, b_ih, b_hh, reverse)
    }
}
