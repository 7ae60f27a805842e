//! Statistics pooling over time: kernels/pooling.cu, one block per (sample, channel) row.

use super::backend::{int, Arg, CudaBackend};
use super::storage::f32_ptr;
use crate::backend::kernels::PoolingOps;
use crate::backend::{shape_checks, Tensor};
use crate::error::Result;

impl PoolingOps for CudaBackend {
    fn stats_pool(&self, x: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
        let (b, c, t) = shape_checks::stats_pool(x, weights)?;
        let (y, yp) = self.output(vec![b, 2 * c])?;
        // A null pointer: no weights.
        let w = weights.map(f32_ptr).transpose()?.unwrap_or(0);
        self.launch_rows(
            "stats_pool",
            b * c,
            t,
            &[
                Arg::Ptr(f32_ptr(x)?),
                Arg::Ptr(w),
                Arg::Ptr(yp),
                Arg::I32(int(c, "channels")?),
                Arg::I32(int(t, "time")?),
            ],
        )?;
        Ok(y)
    }
}
