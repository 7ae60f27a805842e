//! One direction of `nn.LSTM`: the input projection for all steps is one GEMM, then each step
//! adds `h·W_hhᵀ` and applies the gates (PyTorch order: input, forget, cell, output).

use super::gemm::{sgemm, MatRef};
use super::math;
use super::simd::SimdLevel;
use super::{data, linear, tensor};
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
    let mut h = vec![0.0f32; b * hsz];
    let mut c = vec![0.0f32; b * hsz];
    let mut gates = vec![0.0f32; b * g4];
    for step in 0..t {
        let ti = if reverse { t - 1 - step } else { step };
        for bi in 0..b {
            gates[bi * g4..(bi + 1) * g4].copy_from_slice(&pre[(bi * t + ti) * g4..][..g4]);
        }
        sgemm(level, b, g4, hsz, MatRef::row_major(&h, hsz), MatRef::transposed(whh, hsz), &mut gates, g4, true, true);
        for bi in 0..b {
            let gt = &gates[bi * g4..(bi + 1) * g4];
            for j in 0..hsz {
                let i_g = math::sigmoid(gt[j]);
                let f_g = math::sigmoid(gt[hsz + j]);
                let c_g = math::tanh(gt[2 * hsz + j]);
                let o_g = math::sigmoid(gt[3 * hsz + j]);
                let cv = f_g * c[bi * hsz + j] + i_g * c_g;
                c[bi * hsz + j] = cv;
                let hv = o_g * math::tanh(cv);
                h[bi * hsz + j] = hv;
                out[(bi * t + ti) * hsz + j] = hv;
            }
        }
    }
    Ok(tensor(vec![b, t, hsz], out))
}
