//! Conv1d and conv2d as im2col (kernels/conv.cu) + one strided-batched cuBLAS GEMM per group,
//! the weight broadcast over the batch; max-pool.

use super::backend::{int, Arg, CudaBackend};
use super::gemm::{GemmInput, RowMajorGemm};
use super::storage::{address, f32_ptr};
use crate::backend::kernels::ConvOps;
use crate::backend::shape_checks::{self, Conv2dDims};
use crate::backend::{Conv1dParams, Conv2dParams, Tensor};
use crate::error::{Error, Result};

impl CudaBackend {
    /// A convolution's product from its column matrix `cols[b, ci·K + k, n]` (`K` kernel
    /// positions, `n` output positions): one strided-batched GEMM per group, the group's weights
    /// broadcast over the batch, then the bias per output channel. `dims` is
    /// `[batch, c_in, c_out, groups, K, n]`.
    fn grouped_gemm(
        &self,
        cols: &cudarc::driver::CudaSlice<f32>,
        w: &Tensor,
        b: Option<&Tensor>,
        [batch, c_in, c_out, g, kernel, n]: [usize; 6],
        shape: Vec<usize>,
    ) -> Result<Tensor> {
        let cols_ptr = address(cols);
        let (cg_out, rows) = (c_out / g, c_in / g * kernel);
        let ck = c_in * kernel;
        // With no input channels the product is zeros (then the bias).
        let (y, yp) = if rows == 0 { self.output_zeroed(shape)? } else { self.output(shape)? };
        let wp = f32_ptr(w)?;
        let f32_bytes = std::mem::size_of::<f32>() as u64;
        let blas = self.blas.lock().map_err(|_| Error::Cuda("cuBLAS handle poisoned".into()))?;
        for gi in 0..g {
            // out[b, gi*cg_out.., :] = W[gi*cg_out.., :] · cols[b, gi*rows.., :]
            RowMajorGemm {
                m: cg_out,
                n,
                k: rows,
                transpose_b: false,
                batch,
                a: wp + (gi * cg_out * rows) as u64 * f32_bytes,
                stride_a: 0,
                b: cols_ptr + (gi * rows * n) as u64 * f32_bytes,
                stride_b: ck * n,
                c: yp + (gi * cg_out * n) as u64 * f32_bytes,
                stride_c: c_out * n,
                input: GemmInput::F32,
            }
            .run(&blas)?;
        }
        drop(blas);
        if let Some(b) = b {
            let total = batch * c_out * n;
            self.launch_elementwise(
                "bias_channels",
                total,
                &[
                    Arg::Ptr(yp),
                    Arg::Ptr(f32_ptr(b)?),
                    Arg::Ptr(yp),
                    Arg::I64(total as i64),
                    Arg::I32(int(c_out, "channels")?),
                    Arg::I32(int(n, "time")?),
                ],
            )?;
        }
        Ok(y)
    }
}

impl ConvOps for CudaBackend {
    fn conv1d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv1dParams) -> Result<Tensor> {
        let shape_checks::ConvDims { batch, c_in, t_in, c_out, kernel, t_out, .. } = shape_checks::conv1d(x, w, b, p)?;
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
        let y = self.grouped_gemm(&cols, w, b, [batch, c_in, c_out, g, kernel, t_out], vec![batch, c_out, t_out])?;
        drop(cols);
        Ok(y)
    }

    fn conv2d(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: Conv2dParams) -> Result<Tensor> {
        let Conv2dDims { batch, c_in, h_in, w_in, c_out, kh, kw, h_out, w_out, .. } = shape_checks::conv2d(x, w, b, p)?;
        let plane = h_out * w_out;
        if plane == 0 || batch == 0 {
            return Ok(self.output_zeroed(vec![batch, c_out, h_out, w_out])?.0);
        }
        let n_cols = batch * c_in * kh * kw * plane;
        let cols = self.alloc(n_cols)?;
        self.launch_elementwise(
            "im2col2d",
            n_cols,
            &[
                Arg::Ptr(f32_ptr(x)?),
                Arg::Ptr(address(&cols)),
                Arg::I64(n_cols as i64),
                Arg::I32(int(h_in, "height")?),
                Arg::I32(int(w_in, "width")?),
                Arg::I32(int(kh, "kernel height")?),
                Arg::I32(int(kw, "kernel width")?),
                Arg::I32(int(p.stride.0, "stride")?),
                Arg::I32(int(p.stride.1, "stride")?),
                Arg::I32(int(p.padding.0, "padding")?),
                Arg::I32(int(p.padding.1, "padding")?),
                Arg::I32(int(p.dilation.0, "dilation")?),
                Arg::I32(int(p.dilation.1, "dilation")?),
                Arg::I32(int(h_out, "output height")?),
                Arg::I32(int(w_out, "output width")?),
            ],
        )?;
        let y = self.grouped_gemm(
            &cols,
            w,
            b,
            [batch, c_in, c_out, p.groups, kh * kw, plane],
            vec![batch, c_out, h_out, w_out],
        )?;
        drop(cols);
        Ok(y)
    }

    fn max_pool1d(&self, x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
        let (b, c, t, t_out) = shape_checks::max_pool1d(x, kernel, stride)?;
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

    fn windows_abs_max_pool(
        &self,
        x: &Tensor,
        hop: usize,
        len: usize,
        scale: &Tensor,
        shift: &Tensor,
        pool: usize,
    ) -> Result<Tensor> {
        let (c, t, w, pooled) = shape_checks::windows_abs_max_pool(x, hop, len, scale, shift, pool)?;
        let (y, yp) = self.output(vec![w, c, pooled])?;
        let n = w * c * pooled;
        self.launch_elementwise(
            "windows_abs_max_pool",
            n,
            &[
                Arg::Ptr(f32_ptr(x)?),
                Arg::Ptr(f32_ptr(scale)?),
                Arg::Ptr(f32_ptr(shift)?),
                Arg::Ptr(yp),
                Arg::I64(n as i64),
                Arg::I32(int(c, "channels")?),
                Arg::I64(t as i64),
                Arg::I64(hop as i64),
                Arg::I32(int(pooled.max(1), "pooled frames")?),
                Arg::I32(int(pool, "pool")?),
            ],
        )?;
        Ok(y)
    }
}
