//! Embedding lookups, layout copies (permute, slice, concat, row gathers), reductions and argmax.
//! Kernels: kernels/embedding.cu, layout.cu, reduce.cu.

use std::sync::Arc;

use cudarc::driver::DeviceRepr;

use super::backend::{int, Arg, CudaBackend};
use super::storage::{address, f32_ptr, storage, CudaStorage};
use crate::backend::kernels::LayoutOps;
use crate::backend::{shape_checks, Padding, Reduce, Tensor};
use crate::error::{Error, Result};

/// kernels/layout.cu MAX_RANK.
pub const MAX_RANK: usize = 6;

/// kernels/layout.cu `PermuteShape`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PermuteShape {
    pub rank: i32,
    pub pad: i32,
    pub out_dims: [i64; MAX_RANK],
    pub in_strides: [i64; MAX_RANK],
}

// SAFETY: plain #[repr(C)] integers, laid out as the CUDA struct.
unsafe impl DeviceRepr for PermuteShape {}

fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Output shape and kernel description of `x.permute(perm)`; size-1 dimensions are dropped so
/// any rank folds into the kernel's six as long as six dimensions are not all larger than one.
pub fn permute_shape(shape: &[usize], perm: &[usize]) -> Result<(Vec<usize>, PermuteShape)> {
    shape_checks::permutation(shape, perm)?;
    let strides = row_major_strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let kept: Vec<(usize, usize)> =
        perm.iter().map(|&p| (shape[p], strides[p])).filter(|&(size, _)| size != 1).collect();
    if kept.len() > MAX_RANK {
        return Err(Error::shape("permute", format!("{shape:?} has more than {MAX_RANK} dimensions above 1")));
    }
    let mut s = PermuteShape { rank: kept.len().max(1) as i32, ..Default::default() };
    s.out_dims[0] = 1;
    for (i, (size, stride)) in kept.into_iter().enumerate() {
        s.out_dims[i] = size as i64;
        s.in_strides[i] = stride as i64;
    }
    Ok((out_shape, s))
}

/// kernels/reduce.cu RED_* codes.
fn reduce_code(op: Reduce) -> i32 {
    match op {
        Reduce::Sum => 0,
        Reduce::Mean => 1,
        Reduce::Max => 2,
        Reduce::Std => 3,
    }
}

impl CudaBackend {
    /// `dst[dst_offset + r·dst_stride + c] = src[src_offset + r·src_stride + c]`.
    #[allow(clippy::too_many_arguments)]
    fn copy_2d(
        &self,
        src: u64,
        dst: u64,
        rows: usize,
        cols: usize,
        src_stride: usize,
        dst_stride: usize,
        src_offset: usize,
        dst_offset: usize,
    ) -> Result<()> {
        self.launch_elementwise(
            "copy_2d",
            rows * cols,
            &[
                Arg::Ptr(src),
                Arg::Ptr(dst),
                Arg::I64(rows as i64),
                Arg::I64(cols as i64),
                Arg::I64(src_stride as i64),
                Arg::I64(dst_stride as i64),
                Arg::I64(src_offset as i64),
                Arg::I64(dst_offset as i64),
            ],
        )
    }
}

impl LayoutOps for CudaBackend {
    fn pad(&self, x: &Tensor, dim: usize, before: usize, after: usize, padding: Padding) -> Result<Tensor> {
        let (outer, len, inner, shape) = shape_checks::pad(x.shape(), dim, before, after, padding)?;
        let (y, yp) = self.output(shape)?;
        let out_len = len + before + after;
        let n = outer * out_len * inner;
        let (reflect, value) = match padding {
            Padding::Reflect => (1, 0.0),
            Padding::Constant(v) => (0, v),
        };
        self.launch_elementwise(
            "pad_dim",
            n,
            &[
                Arg::Ptr(f32_ptr(x)?),
                Arg::Ptr(yp),
                Arg::I64(n as i64),
                Arg::I32(int(len, "padded dimension")?),
                Arg::I32(int(before, "padding")?),
                Arg::I32(int(out_len, "padded dimension")?),
                Arg::I64(inner.max(1) as i64),
                Arg::I32(reflect),
                Arg::F32(value),
            ],
        )?;
        Ok(y)
    }

    fn embedding(&self, ids: &[u32], table: &Tensor) -> Result<Tensor> {
        let (_, d) = shape_checks::embedding(ids, table)?;
        let dev_ids = self.to_device(ids)?;
        let (y, yp) = self.output(vec![ids.len(), d])?;
        let n = ids.len() * d;
        let (name, tp) = match storage(table)? {
            CudaStorage::F32(s) => ("embedding_f32", address(s)),
            CudaStorage::F16(s) => ("embedding_f16", address(s)),
        };
        self.launch_elementwise(
            name,
            n,
            &[Arg::Ptr(address(&dev_ids)), Arg::Ptr(tp), Arg::Ptr(yp), Arg::I64(n as i64), Arg::I32(int(d, "width")?)],
        )?;
        Ok(y)
    }

    fn embedding_with_positions(
        &self,
        ids: &[u32],
        table: &Tensor,
        positions: &Tensor,
        offset: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        let (_, d) = shape_checks::embedding(ids, table)?;
        let p = positions.dim(0);
        if positions.shape() != [p, d] || seq_len == 0 || !ids.len().is_multiple_of(seq_len) || offset + seq_len > p {
            return Err(Error::shape(
                "embedding_with_positions",
                format!(
                    "{} ids in rows of {seq_len} at {offset} of positions {:?}, table {:?}",
                    ids.len(),
                    positions.shape(),
                    table.shape()
                ),
            ));
        }
        let dev_ids = self.to_device(ids)?;
        let (y, yp) = self.output(vec![ids.len(), d])?;
        let n = ids.len() * d;
        let (name, tp) = match storage(table)? {
            CudaStorage::F32(s) => ("embedding_positions_f32", address(s)),
            CudaStorage::F16(s) => ("embedding_positions_f16", address(s)),
        };
        self.launch_elementwise(
            name,
            n,
            &[
                Arg::Ptr(address(&dev_ids)),
                Arg::Ptr(tp),
                Arg::Ptr(f32_ptr(positions)?),
                Arg::Ptr(yp),
                Arg::I64(n as i64),
                Arg::I32(int(d, "width")?),
                Arg::I32(int(seq_len, "sequence length")?),
                Arg::I32(int(offset, "offset")?),
            ],
        )?;
        Ok(y)
    }

    fn permute(&self, x: &Tensor, perm: &[usize]) -> Result<Tensor> {
        let (out_shape, s) = permute_shape(x.shape(), perm)?;
        let (y, yp) = self.output(out_shape)?;
        let n = x.numel();
        self.launch_elementwise(
            "permute",
            n,
            &[Arg::Ptr(f32_ptr(x)?), Arg::Ptr(yp), Arg::I64(n as i64), Arg::Permute(s)],
        )?;
        Ok(y)
    }

    fn slice(&self, x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        let sh = x.shape();
        let (outer, inner, shape) = shape_checks::slice(sh, dim, start, len)?;
        let (y, yp) = self.output(shape)?;
        self.copy_2d(f32_ptr(x)?, yp, outer, len * inner, sh[dim] * inner, len * inner, start * inner, 0)?;
        Ok(y)
    }

    fn concat(&self, xs: &[&Tensor], dim: usize) -> Result<Tensor> {
        let (outer, inner, shape) = shape_checks::concat(xs, dim)?;
        let total = shape[dim];
        let (y, yp) = self.output(shape)?;
        let mut offset = 0;
        for x in xs {
            let run = x.shape()[dim] * inner;
            self.copy_2d(f32_ptr(x)?, yp, outer, run, run, total * inner, 0, offset)?;
            offset += run;
        }
        Ok(y)
    }

    fn index_select(&self, x: &Tensor, indices: &[usize]) -> Result<Tensor> {
        let (inner, shape) = shape_checks::index_select(x.shape(), indices)?;
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let dev_idx = self.to_device(&idx)?;
        let n = indices.len() * inner;
        // f32 rows, or f16 ones (keys and values kept in half precision) as f16.
        let (kernel, src, y, yp) = match storage(x)? {
            CudaStorage::F32(s) => {
                let (y, yp) = self.output(shape)?;
                ("gather_rows", address(s), y, yp)
            }
            CudaStorage::F16(s) => {
                // SAFETY: the gather writes all n values.
                let out = unsafe { self.stream.alloc::<half::f16>(n.max(1)) }
                    .map_err(|e| super::backend::driver_error("alloc", e))?;
                let yp = address(&out);
                ("gather_rows_f16", address(s), Tensor::from_storage(shape, Arc::new(CudaStorage::F16(out))), yp)
            }
        };
        self.launch_elementwise(
            kernel,
            n,
            &[Arg::Ptr(src), Arg::Ptr(address(&dev_idx)), Arg::Ptr(yp), Arg::I64(n as i64), Arg::I64(inner as i64)],
        )?;
        Ok(y)
    }

    fn gather_append(&self, cache: &Tensor, sources: &[usize], new: &Tensor) -> Result<Tensor> {
        let (old_run, new_run, shape) = shape_checks::gather_append(cache.shape(), sources, new.shape())?;
        let (y, yp) = self.output(shape)?;
        let idx: Vec<u32> = sources.iter().map(|&i| i as u32).collect();
        let dev_idx = self.to_device(&idx)?;
        let n = sources.len() * (old_run + new_run);
        self.launch_elementwise(
            "gather_append",
            n,
            &[
                Arg::Ptr(f32_ptr(cache)?),
                Arg::Ptr(address(&dev_idx)),
                Arg::Ptr(f32_ptr(new)?),
                Arg::Ptr(yp),
                Arg::I64(n as i64),
                Arg::I64(old_run as i64),
                Arg::I64(new_run as i64),
            ],
        )?;
        Ok(y)
    }

    fn reduce(&self, x: &Tensor, op: Reduce) -> Result<Tensor> {
        let (rows, d) = x.rows_cols();
        if x.rank() == 0 || d == 0 {
            return Err(Error::shape("reduce", format!("empty last dimension in {:?}", x.shape())));
        }
        let (y, yp) = self.output(x.shape()[..x.rank() - 1].to_vec())?;
        self.launch_rows(
            "reduce_rows",
            rows,
            d,
            &[Arg::Ptr(f32_ptr(x)?), Arg::Ptr(yp), Arg::I32(int(d, "width")?), Arg::I32(reduce_code(op))],
        )?;
        Ok(y)
    }

    /// Only the ids cross to the host.
    fn argmax(&self, x: &Tensor) -> Result<Vec<u32>> {
        let (rows, d) = x.rows_cols();
        if d == 0 {
            return Err(Error::shape("argmax", format!("empty last dimension in {:?}", x.shape())));
        }
        // SAFETY: argmax_rows writes one index per row.
        let out =
            unsafe { self.stream.alloc::<u32>(rows.max(1)) }.map_err(|e| super::backend::driver_error("alloc", e))?;
        self.launch_rows(
            "argmax_rows",
            rows,
            d,
            &[Arg::Ptr(f32_ptr(x)?), Arg::Ptr(address(&out)), Arg::I32(int(d, "width")?)],
        )?;
        self.to_host(&out, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Source index of each output element, by the kernel's rule.
    fn kernel_sources(s: &PermuteShape, n: usize) -> Vec<i64> {
        (0..n as i64)
            .map(|i| {
                let (mut rest, mut src) = (i, 0);
                for d in (0..s.rank as usize).rev() {
                    src += (rest % s.out_dims[d]) * s.in_strides[d];
                    rest /= s.out_dims[d];
                }
                src
            })
            .collect()
    }

    #[test]
    fn permute_shapes_gather_what_the_cpu_permute_gathers() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4], &[0, 2, 1]),
            (&[2, 3, 4], &[2, 0, 1]),
            (&[1, 5, 1, 3], &[3, 2, 1, 0]),
            (&[2, 3, 1, 2, 2, 1, 3, 1], &[7, 6, 5, 4, 3, 2, 1, 0]),
            (&[7], &[0]),
        ];
        let cpu = crate::backend::Device::cpu();
        for &(shape, perm) in cases {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let want = cpu.download(&cpu.permute(&cpu.upload(&values, shape).unwrap(), perm).unwrap()).unwrap();
            let (out_shape, s) = permute_shape(shape, perm).unwrap();
            assert_eq!(out_shape, perm.iter().map(|&p| shape[p]).collect::<Vec<_>>());
            let got: Vec<f32> = kernel_sources(&s, n).into_iter().map(|i| i as f32).collect();
            assert_eq!(got, want, "{shape:?} permuted by {perm:?}");
        }
        assert!(permute_shape(&[2, 3], &[0, 0]).is_err());
    }
}
