//! Layer, group/instance and batch norm. Kernels: kernels/layer_norm.cu, group_norm.cu.

use super::backend::{int, Arg, CudaBackend, ROW_THREADS};
use super::storage::f32_ptr;
use crate::backend::kernels::NormOps;
use crate::backend::{shape_checks, Tensor};
use crate::error::{Error, Result};
use cudarc::driver::LaunchConfig;

impl NormOps for CudaBackend {
    fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        let (rows, d) = x.rows_cols();
        let (y, yp) = self.output(x.shape().to_vec())?;
        if d > 0 {
            self.launch_rows(
                "layer_norm",
                rows,
                d,
                &[
                    Arg::Ptr(f32_ptr(x)?),
                    Arg::Ptr(f32_ptr(gamma)?),
                    Arg::Ptr(f32_ptr(beta)?),
                    Arg::Ptr(yp),
                    Arg::I32(int(d, "layer_norm width")?),
                    Arg::F32(eps),
                ],
            )?;
        }
        Ok(y)
    }

    /// `nn.GroupNorm`; `groups == C` with optional affine is `nn.InstanceNorm1d`.
    fn group_norm(
        &self,
        x: &Tensor,
        groups: usize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        let (b, c, t) = crate::backend::shape_checks::group_norm(x, groups, gamma, beta)?;
        let (y, yp) = self.output(x.shape().to_vec())?;
        if b * c * t > 0 {
            let blocks = u32::try_from(b * groups).map_err(|_| Error::Cuda("group_norm: too many groups".into()))?;
            let cfg =
                LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (ROW_THREADS as u32, 1, 1), shared_mem_bytes: 0 };
            self.launch(
                "group_norm",
                cfg,
                &[
                    Arg::Ptr(f32_ptr(x)?),
                    Arg::Ptr(gamma.map(f32_ptr).transpose()?.unwrap_or(0)),
                    Arg::Ptr(beta.map(f32_ptr).transpose()?.unwrap_or(0)),
                    Arg::Ptr(yp),
                    Arg::I32(int(c, "channels")?),
                    Arg::I32(int(t, "time")?),
                    Arg::I32(int(groups, "groups")?),
                    Arg::F32(eps),
                ],
            )?;
        }
        Ok(y)
    }

    fn batch_norm(
        &self,
        x: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        relu: bool,
    ) -> Result<Tensor> {
        // Channel c's values are the `t` elements after it, in every sample.
        let (c, t) = shape_checks::batch_norm(x, [mean, var, gamma, beta])?;
        let (y, yp) = self.output(x.shape().to_vec())?;
        let n = x.numel();
        self.launch_elementwise(
            "batch_norm",
            n,
            &[
                Arg::Ptr(f32_ptr(x)?),
                Arg::Ptr(f32_ptr(mean)?),
                Arg::Ptr(f32_ptr(var)?),
                Arg::Ptr(f32_ptr(gamma)?),
                Arg::Ptr(f32_ptr(beta)?),
                Arg::Ptr(yp),
                Arg::I64(n as i64),
                Arg::I32(int(c, "channels")?),
                Arg::I32(int(t, "time")?),
                Arg::F32(eps),
                Arg::I32(relu as i32),
            ],
        )?;
        Ok(y)
    }
}
