//! `nn.Conv1d` and `nn.Conv2d` with a bf16 weight ([`MemoryOps::round_bfloat16`] of the weight
//! viewed as `[C_out, C_in / groups · kernel]`) where the direct kernel's bf16 form
//! ([`super::conv2d_direct::conv2d_bf16`]) does not apply: per (sample, group), the group's weight rows are
//! the broadcast operand of the bf16 GEMM ([`Bf16Matrix::row_pairs`]) and the im2col columns,
//! rounded to bf16 and packed in panels of output positions ([`Bf16Matrix::from_columns`]), the
//! streamed one, so the product lands in the output's own `[C_out, T]` layout. The sums are f32,
//! as for `nn.Linear` with a bf16 weight.
//!
//! [`MemoryOps::round_bfloat16`]: crate::backend::kernels::MemoryOps::round_bfloat16

use rayon::prelude::*;

use super::bf16::{self, Bf16Matrix};
use super::conv::im2col_1d;
use super::simd::SimdLevel;
use crate::backend::shape_checks::ConvDims;
use crate::backend::Conv1dParams;
use crate::error::{Error, Result};

/// Refuse a bf16 weight whose matrix is not the conv's `[c_out, rows]`.
pub(crate) fn check_matrix(op: &'static str, w: &Bf16Matrix, c_out: usize, rows: usize) -> Result<()> {
    if w.rows() != c_out || w.cols() != rows {
        return Err(Error::shape(
            op,
            format!(
                "a bf16 weight packed as [{}, {}] for {c_out} output channels of {rows} inputs",
                w.rows(),
                w.cols()
            ),
        ));
    }
    Ok(())
}

/// `o[cg_out, n] = bias + w[group gi] · cols`, with `cols[rows, n]` stored with rows `ld` apart.
#[allow(clippy::too_many_arguments)]
pub(crate) fn group_product(
    level: SimdLevel,
    w: &Bf16Matrix,
    gi: usize,
    cg_out: usize,
    cols: &[f32],
    ld: usize,
    n: usize,
    bias: Option<&[f32]>,
    o: &mut [f32],
    parallel: bool,
) {
    let pairs = w.pairs();
    let rows = &w.row_pairs()[gi * cg_out * pairs..(gi + 1) * cg_out * pairs];
    let packed = Bf16Matrix::from_columns(level, cols, ld, w.cols(), n);
    if let Some(b) = bias {
        super::conv::fill_rows(o, n, &b[gi * cg_out..]);
    }
    bf16::gemm(level, cg_out, rows, &packed, o, None, bias.is_some(), parallel);
}

/// [`super::conv::conv1d`] with a bf16 weight (checked by [`check_matrix`]) into `out[batch,
/// c_out, t_out]`.
pub(crate) fn conv1d(
    level: SimdLevel,
    d: &ConvDims,
    p: Conv1dParams,
    xd: &[f32],
    w: &Bf16Matrix,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let &ConvDims { batch, c_in, t_in, c_out, cg_in, kernel, t_out } = d;
    let g = p.groups;
    let cg_out = c_out / g;
    let tasks = batch * g;
    // The input channels are the im2col matrix itself (a 1×1 conv), or seen with rows 1 apart
    // (one input channel, stride 1, no padding or dilation: column t, row kk is x[t + kk]).
    let pointwise = kernel == 1 && p.stride == 1 && p.padding == 0;
    let sliding = cg_in == 1 && p.stride == 1 && p.padding == 0 && p.dilation == 1;
    let run = |task: usize, o: &mut [f32]| {
        let (bi, gi) = (task / g, task % g);
        let src = &xd[(bi * c_in + gi * cg_in) * t_in..][..cg_in * t_in];
        if pointwise {
            group_product(level, w, gi, cg_out, src, t_in, t_out, bias, o, tasks == 1);
        } else if sliding {
            group_product(level, w, gi, cg_out, src, 1, t_out, bias, o, tasks == 1);
        } else {
            let col = im2col_1d(src, cg_in, t_in, kernel, p, t_out);
            group_product(level, w, gi, cg_out, &col, t_out, t_out, bias, o, tasks == 1);
        }
    };
    if tasks > 1 {
        out.par_chunks_mut(cg_out * t_out).enumerate().for_each(|(task, o)| run(task, o));
    } else {
        run(0, out);
    }
}
