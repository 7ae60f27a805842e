//! One direction of `nn.LSTM`: the input projection for all steps is one GEMM, then each step
//! adds `h·W_hhᵀ` and applies the gates (PyTorch order: input, forget, cell, output). With
//! bfloat16 weights ([`MemoryOps::round_bfloat16`](crate::backend::kernels::MemoryOps)) both
//! products run on the bf16 kernel (`h` rounded each step, f32 sums); the gates, the cell and
//! `h` itself stay f32.

use rayon::prelude::*;

use super::bf16::{self, Bf16Matrix};
use super::math;
use super::simd::{multiversion, SimdLevel};
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
        // `W_hhᵀ` packed once for every task.
        _ => Recurrent::Packed(PackedRecurrent::new(&stored.rows_f32(level, 0..g4, hsz), hsz)),
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
    /// `W_hhᵀ` packed for [`recurrent_product`].
    Packed(PackedRecurrent),
    /// bf16, packed for the `vdpbf16ps` kernel.
    Bf16(&'a Bf16Matrix),
}

/// The time loop for `rows` sequences: `pre[rows, t, 4H]` input projections (biases folded
/// in) → `out[rows, t, H]`. The recurrent product runs on `W_hhᵀ` packed once per call
/// ([`recurrent_product`]: register tiles, no reductions, on the calling thread), with bf16
/// weights on the bf16 kernel.
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
        Recurrent::Packed(p) => p.stride,
        Recurrent::Bf16(_) => g4,
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
            Recurrent::Packed(p) => recurrent_product(level, p, &h, rows, &mut gates),
            Recurrent::Bf16(w) => {
                bf16::rows_into_pairs(level, &h, hsz, &mut h_pairs);
                bf16::gemm(level, rows, &h_pairs, w, &mut gates, None, false, false);
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

/// Gates of one block of packed `W_hhᵀ`: the AVX-512 kernel's register tile is a block wide
/// (four registers of 16), the AVX2 kernel's a quarter of one.
pub const GATE_BLOCK: usize = 64;

/// `W_hhᵀ` `[H, stride]` row-major, each row padded with zeros to whole blocks of
/// [`GATE_BLOCK`]: each step's product is then a small GEMM whose register tiles broadcast `h`
/// and read a row of gates at a time (no horizontal sums), the block's `H` rows (32 KiB at
/// H = 128) from L1 for every tile.
pub struct PackedRecurrent {
    wt: Vec<f32>,
    hsz: usize,
    stride: usize,
}

impl PackedRecurrent {
    /// From `W_hh` `[4H, H]` row-major.
    pub fn new(whh: &[f32], hsz: usize) -> Self {
        let g4 = 4 * hsz;
        assert!(whh.len() >= g4 * hsz, "packed recurrent weight: {} values for [{g4}, {hsz}]", whh.len());
        let stride = g4.div_ceil(GATE_BLOCK) * GATE_BLOCK;
        let mut wt = vec![0.0f32; hsz * stride];
        for (j, row) in whh.chunks_exact(hsz.max(1)).take(g4).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                wt[k * stride + j] = v;
            }
        }
        PackedRecurrent { wt, hsz, stride }
    }
}

/// `gates[r, ..4H] = h[r, ..] · W_hhᵀ` for `rows` rows of `h` (`gates` rows `p.stride` apart),
/// on the calling thread (each task of the recurrence runs its own rows). With AVX2 or AVX-512
/// each gate is summed by fused multiply-adds in order of k from zero, so both levels give the
/// same bits ([`reference_product`]); the portable level multiplies and adds.
pub fn recurrent_product(level: SimdLevel, p: &PackedRecurrent, h: &[f32], rows: usize, gates: &mut [f32]) {
    assert!(h.len() >= rows * p.hsz && gates.len() >= rows * p.stride, "recurrent product: operand sizes");
    assert_eq!(p.wt.len(), p.hsz * p.stride);
    #[cfg(target_arch = "x86_64")]
    match level {
        // SAFETY (both): the level was detected on this CPU (AVX-512F; AVX2 with FMA); the
        // operand sizes were checked above.
        SimdLevel::Avx512 => return unsafe { avx512::recurrent_product(p, h, rows, gates) },
        SimdLevel::Avx2 => return unsafe { avx2::recurrent_product(p, h, rows, gates) },
        SimdLevel::Portable => {}
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    portable_product(p, h, rows, gates);
}

/// Each gate as the AVX2 and AVX-512 kernels sum it: `f32::mul_add` in order of k from zero.
#[cfg(test)]
fn reference_product(p: &PackedRecurrent, h: &[f32], rows: usize, gates: &mut [f32]) {
    for r in 0..rows {
        for j in 0..p.stride {
            gates[r * p.stride + j] =
                (0..p.hsz).fold(0.0f32, |acc, k| h[r * p.hsz + k].mul_add(p.wt[k * p.stride + j], acc));
        }
    }
}

/// Rows of the portable product's tile.
const PORTABLE_TILE_ROWS: usize = 4;

/// [`recurrent_product`] on baseline instructions: tiles of up to [`PORTABLE_TILE_ROWS`] rows
/// against a row of packed gates at a time (multiplies then adds, which the compiler
/// vectorises).
fn portable_product(p: &PackedRecurrent, h: &[f32], rows: usize, gates: &mut [f32]) {
    if p.hsz == 0 {
        return;
    }
    for r0 in (0..rows).step_by(PORTABLE_TILE_ROWS) {
        let tile = (rows - r0).min(PORTABLE_TILE_ROWS);
        let out = &mut gates[r0 * p.stride..(r0 + tile) * p.stride];
        out.fill(0.0);
        for (k, w) in p.wt.chunks_exact(p.stride).enumerate() {
            for (r, g) in out.chunks_exact_mut(p.stride).enumerate() {
                let x = h[(r0 + r) * p.hsz + k];
                for (g, &w) in g.iter_mut().zip(w) {
                    *g += x * w;
                }
            }
        }
    }
}

/// The recurrent product on AVX-512: tiles of up to [`avx512::TILE_ROWS`] rows × one block of
/// 64 gates in 16 registers, one broadcast of `h` and four fused multiply-adds per k.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PackedRecurrent, GATE_BLOCK};

    /// Rows of one register tile (16 accumulators).
    pub const TILE_ROWS: usize = 4;
    // A tile is a whole block wide: the block loop never reads past a row's `stride`.
    const _: () = assert!(GATE_BLOCK == 64);

    /// # Safety
    /// The CPU must have AVX-512F; `h` holds `rows` rows of `p.hsz`, `gates` `rows` rows of
    /// `p.stride` ([`super::recurrent_product`] checks it).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn recurrent_product(p: &PackedRecurrent, h: &[f32], rows: usize, gates: &mut [f32]) {
        for block in (0..p.stride).step_by(GATE_BLOCK) {
            for r0 in (0..rows).step_by(TILE_ROWS) {
                let (hp, wp) = (h.as_ptr().add(r0 * p.hsz), p.wt.as_ptr().add(block));
                let gp = gates.as_mut_ptr().add(r0 * p.stride + block);
                let tile_rows = (rows - r0).min(TILE_ROWS);
                crate::backend::cpu::simd::for_rows!(tile_rows, [1 2 3 4], tile(hp, p.hsz, wp, p.stride, gp));
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

/// The recurrent product on AVX2 (with FMA): tiles of up to [`avx2::TILE_ROWS`] rows × 16 gates
/// (two registers of 8 a row), one broadcast of `h` and two fused multiply-adds per row and k;
/// with the broadcast and the two weight registers, 15 of the 16 registers.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::PackedRecurrent;

    /// Gates of one register tile.
    pub const TILE_GATES: usize = 16;
    /// Rows of one register tile (12 accumulators).
    pub const TILE_ROWS: usize = 6;
    // Blocks hold whole tiles: the tile loop never reads past a row's `stride`.
    const _: () = assert!(super::GATE_BLOCK.is_multiple_of(TILE_GATES));

    /// # Safety
    /// The CPU must have AVX2 and FMA; `h` holds `rows` rows of `p.hsz`, `gates` `rows` rows of
    /// `p.stride` ([`super::recurrent_product`] checks it).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn recurrent_product(p: &PackedRecurrent, h: &[f32], rows: usize, gates: &mut [f32]) {
        for block in (0..p.stride).step_by(TILE_GATES) {
            for r0 in (0..rows).step_by(TILE_ROWS) {
                let (hp, wp) = (h.as_ptr().add(r0 * p.hsz), p.wt.as_ptr().add(block));
                let gp = gates.as_mut_ptr().add(r0 * p.stride + block);
                let tile_rows = (rows - r0).min(TILE_ROWS);
                crate::backend::cpu::simd::for_rows!(tile_rows, [1 2 3 4 5 6], tile(hp, p.hsz, wp, p.stride, gp));
            }
        }
    }

    /// `R` rows × 16 gates: `gates = Σ_k h[r, k] · wt[k, ..]`.
    ///
    /// # Safety
    /// As the AVX-512 tile, 16 floats a row of `wt` and of `gates`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)]
    unsafe fn tile<const R: usize>(h: *const f32, hsz: usize, wt: *const f32, stride: usize, gates: *mut f32) {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for k in 0..hsz {
            let w = wt.add(k * stride);
            let ws = [_mm256_loadu_ps(w), _mm256_loadu_ps(w.add(8))];
            for r in 0..R {
                let x = _mm256_broadcast_ss(&*h.add(r * hsz + k));
                for c in 0..2 {
                    acc[r][c] = _mm256_fmadd_ps(x, ws[c], acc[r][c]);
                }
            }
        }
        for r in 0..R {
            for c in 0..2 {
                _mm256_storeu_ps(gates.add(r * stride + 8 * c), acc[r][c]);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Shapes around the tiles: H whose 4H is not a whole block (5, 9, 33: padded gates), rows
    /// that fill no tile, one tile and a ragged last one of every height of both kernels' tiles
    /// (AVX-512 up to 4 rows, AVX2 up to 6: 8 rows are 6 + 2).
    const SHAPES: [(usize, usize); 9] =
        [(1, 1), (1, 5), (3, 33), (4, 16), (5, 128), (6, 7), (7, 128), (13, 20), (16, 128)];

    #[test]
    fn packing_pads_each_row_of_gates_to_whole_blocks_with_zeros() {
        let hsz = 5;
        let whh: Vec<f32> = (0..4 * hsz * hsz).map(|v| v as f32).collect();
        let p = PackedRecurrent::new(&whh, hsz);
        assert_eq!(p.stride, GATE_BLOCK);
        for k in 0..hsz {
            for j in 0..p.stride {
                let want = if j < 4 * hsz { whh[j * hsz + k] } else { 0.0 };
                assert_eq!(p.wt[k * p.stride + j], want, "k {k} gate {j}");
            }
        }
    }

    #[test]
    fn every_level_computes_the_recurrent_product_and_simd_levels_give_the_reference_bits() {
        let best = SimdLevel::detect();
        for (case, &(rows, hsz)) in SHAPES.iter().enumerate() {
            let p = PackedRecurrent::new(&values(4 * hsz * hsz, case as u32 + 1), hsz);
            let h = values(rows * hsz, case as u32 + 100);
            let mut want = vec![0.0f32; rows * p.stride];
            reference_product(&p, &h, rows, &mut want);
            for level in [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512] {
                if level > best {
                    continue;
                }
                let mut got = vec![f32::NAN; rows * p.stride];
                recurrent_product(level, &p, &h, rows, &mut got);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let at = format!("{level:?} rows {rows} H {hsz}: row {} gate {}", i / p.stride, i % p.stride);
                    if level == SimdLevel::Portable {
                        // Multiplies then adds: within rounding of the fused sums.
                        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{at}: {g} vs {w}");
                    } else {
                        assert_eq!(g.to_bits(), w.to_bits(), "{at}: {g} vs {w}");
                    }
                }
            }
        }
    }
}
