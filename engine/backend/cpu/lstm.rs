//! One direction of `nn.LSTM`: the input projection for all steps is one GEMM, then each step
//! adds `h·W_hhᵀ` and applies the gates (PyTorch order: input, forget, cell, output).

use rayon::prelude::*;

use super::math;
use super::simd::{multiversion, SimdLevel};
use super::skinny::{skinny_nt, SKINNY_MAX_ROWS};
use super::{data, linear, tensor, CpuBackend};
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
    // Input projection for every step: [B, T, 4H] = x·W_ihᵀ + b_ih (+ b_hh folded in).
    let bias: Vec<f32> = data(b_ih)?.iter().zip(data(b_hh)?).map(|(a, c)| a + c).collect();
    let bias_t = tensor(vec![g4], bias);
    let pre = linear::linear(level, x, w_ih, Some(&bias_t))?;
    let pre = data(&pre)?;
    let whh = data(w_hh)?;
    let mut out = vec![0.0f32; b * t * hsz];
    if b == 0 || t == 0 {
        return Ok(tensor(vec![b, t, hsz], out));
    }
    // The recurrence is sequential in time but independent across the batch: each thread runs
    // every step for its own rows.
    let rows_per_task = b.div_ceil(rayon::current_num_threads().max(1)).max(1);
    out.par_chunks_mut(rows_per_task * t * hsz).enumerate().for_each(|(task, out)| {
        let first = task * rows_per_task;
        let rows = out.len() / (t * hsz);
        recurrence(level, &pre[first * t * g4..(first + rows) * t * g4], whh, out, rows, t, hsz, reverse);
    });
    Ok(tensor(vec![b, t, hsz], out))
}

/// The time loop for `rows` sequences: `pre[rows, t, 4H]` input projections (biases folded
/// in) → `out[rows, t, H]`. The recurrent product is a skinny one (at most
/// [`SKINNY_MAX_ROWS`] rows against `W_hh` read in place: `gemm` would pack `W_hh` every step).
#[allow(clippy::too_many_arguments)]
fn recurrence(
    level: SimdLevel,
    pre: &[f32],
    whh: &[f32],
    out: &mut [f32],
    rows: usize,
    t: usize,
    hsz: usize,
    reverse: bool,
) {
    let g4 = 4 * hsz;
    let mut h = vec![0.0f32; rows * hsz];
    let mut c = vec![0.0f32; rows * hsz];
    let mut gates = vec![0.0f32; rows * g4];
    for step in 0..t {
        let ti = if reverse { t - 1 - step } else { step };
        for bi in 0..rows {
            gates[bi * g4..(bi + 1) * g4].copy_from_slice(&pre[(bi * t + ti) * g4..][..g4]);
        }
        for r0 in (0..rows).step_by(SKINNY_MAX_ROWS) {
            let m = SKINNY_MAX_ROWS.min(rows - r0);
            skinny_nt(level, m, g4, hsz, &h[r0 * hsz..(r0 + m) * hsz], whh, hsz, &mut gates[r0 * g4..(r0 + m) * g4]);
        }
        for bi in 0..rows {
            let o_row = &mut out[(bi * t + ti) * hsz..][..hsz];
            cell_update(
                level,
                &gates[bi * g4..(bi + 1) * g4],
                &mut c[bi * hsz..(bi + 1) * hsz],
                &mut h[bi * hsz..(bi + 1) * hsz],
                o_row,
            );
        }
    }
}

multiversion! {
    /// One row's gates `[i, f, g, o]` (pre-activation, `4H`) → the new cell `c` and hidden `h`
    /// (also written to `out`): `c = σ(f)·c + σ(i)·tanh(g)`, `h = σ(o)·tanh(c)`.
    fn cell_update(gates: &[f32], c: &mut [f32], h: &mut [f32], out: &mut [f32]) {
        let hsz = c.len();
        let (ig, rest) = gates.split_at(hsz);
        let (fg, rest) = rest.split_at(hsz);
        let (gg, og) = rest.split_at(hsz);
        for ((((((&i, &f), &g), &o), cv), hv), ov) in
            ig.iter().zip(fg).zip(gg).zip(og).zip(c.iter_mut()).zip(h.iter_mut()).zip(out.iter_mut())
        {
            let cell = math::sigmoid(f) * *cv + math::sigmoid(i) * math::tanh(g);
            *cv = cell;
            let hidden = math::sigmoid(o) * math::tanh(cell);
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
