//! Conv1d as im2col (kernels/conv.cu) + one strided-batched cuBLAS GEMM per group, the weight
//! broadcast over the batch; max-pool.

use super::backend::{int, Arg, CudaBackend};
use super::gemm::{GemmInput, RowMajorGemm};
use super::storage::{address, f32_ptr};
use crate::backend::{Conv1dParams, Tensor};
use crate::error::{Error, Result};

impl CudaBackend {
    pub(crate) fn conv1d_op(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor> {
        let crate::backend::shape_checks::ConvDims { batch, c_in, t_in, c_out, cg_in, kernel, t_out } =
            crate::backend::shape_checks::conv1d(x, w, b, p)?;
        let g = p.groups;
        if t_out == 0 || batch == 0 {
            return Ok(self.output_zeroed(vec![batch, c_out, t_out])?.0);
        }
        // cols[b, ci*K + kk, to]: every group's rows are contiguous within a sample.
        let ck = c_in * kernel;
        let n_cols = batch * ck * t_out;
        let cols = self.alloc(n_cols)?;
        let cols_ptr = address(&cols);
        self.launch_elementwise(
            "im2col",
            n_cols,
            &[
                Arg::Ptr(f32_ptr(x)?),
                Arg::Ptr(cols_ptr),
                Arg::I64(n_cols as i64),
                Arg::I32(int(c_in, "channels")?),
                Arg::I32(int(t_in, "time")?),
                Arg::I32(int(kernel, "kernel")?),
                Arg::I32(int(p.stride, "stride")?),
                Arg::I32(int(p.padding, "padding")?),
                Arg::I32(int(p.dilation, "dilation")?),
                Arg::I32(int(t_out, "output length")?),
            ],
        )?;
        let (cg_out, rows) = (c_out / g, cg_in * kernel);
        // With no input channels the product is zeros (then the bias).
        let (y, yp) = if rows == 0 {
            self.output_zeroed(vec![batch, c_out, t_out])?
        } else {
            self.output(vec![batch, c_out, t_out])?
        };
        let wp = f32_ptr(w)?;
        let f32_bytes = std::mem::size_of::<f32>() as u64;
        let blas = self.blas.lock().map_err(|_| Error::Cuda("cuBLAS handle poisoned".into()))?;
        for gi in 0..g {
            // out[b, gi*cg_out.., :] = W[gi*cg_out.., :] · cols[b, gi*rows.., :]
            RowMajorGemm {
                m: cg_out,
                n: t_out,
                k: rows,
                transpose_b: false,
                batch,
                a: wp + (gi * cg_out * rows) as u64 * f32_bytes,
                stride_a: 0,
                b: cols_ptr + (gi * rows * t_out) as u64 * f32_bytes,
                stride_b: ck * t_out,
                c: yp + (gi * cg_out * t_out) as u64 * f32_bytes,
                stride_c: c_out * t_out,
                input: GemmInput::F32,
            }
            .run(&blas)?;
        }
        drop(blas);
        if let Some(b) = b {
            let n = batch * c_out * t_out;
            self.launch_elementwise(
                "bias_channels",
                n,
                &[
                    Arg::Ptr(yp),
                    Arg::Ptr(f32_ptr(b)?),
                    Arg::Ptr(yp),
                    Arg::I64(n as i64),
                    Arg::I32(int(c_out, "channels")?),
                    Arg::I32(int(t_out, "time")?),
                ],
            )?;
        }
        drop(cols);
        Ok(y)
    }

    pub(crate) fn max_pool1d_op(&self, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
        let (b, c, t) = x.dims3("max_pool1d")?;
        if kernel == 0 || stride == 0 {
            return Err(Error::shape("max_pool1d", "kernel and stride must be positive"));
        }
        let t_out = if t < kernel { 0 } else { (t - kernel) / stride + 1 };
        let (y, yp) = self.output(vec![b, c, t_out])?;
        let n = b * c * t_out;
        self.launch_elementwise(
            "max_pool1d",
            n,
            &[
                Arg::Ptr(f32_ptr(x)?),
                Arg::Ptr(yp),
                Arg::I64(n as i64),
                Arg::I32(int(t, "time")?),
                Arg::I32(int(kernel, "kernel")?),
                Arg::I32(int(stride, "stride")?),
                Arg::I32(int(t_out.max(1), "output length")?),
            ],
        )?;
        Ok(y)
    }
}
