//! One direction of `nn.LSTM`: the input projection of every step in one GEMM, then per step a
//! GEMM for the recurrent projection and the gate kernel (kernels/lstm.cu).

use std::sync::Arc;

use super::backend::{int, Arg, CudaBackend};
use super::elementwise::NO_ACTIVATION;
use super::storage::{address, f32_ptr, CudaStorage};
use crate::backend::kernels::RecurrentOps;
use crate::backend::Tensor;
use crate::error::Result;

impl RecurrentOps for CudaBackend {
    #[allow(clippy::too_many_arguments)]
    fn lstm(
        &self,
        x: &Tensor,
        w_ih: &Tensor,
        w_hh: &Tensor,
        b_ih: &Tensor,
        b_hh: &Tensor,
        reverse: bool,
    ) -> Result<Tensor> {
        let (batch, steps, hidden) = crate::backend::shape_checks::lstm(x, w_ih, w_hh, b_ih, b_hh)?;
        let gx = self.fused_linear(x, w_ih, Some(b_ih), NO_ACTIVATION)?; // [B, T, 4H]
        let c = self.zeros(batch * hidden)?;
        let h = Tensor::from_storage(vec![batch, hidden], Arc::new(CudaStorage::F32(self.zeros(batch * hidden)?)));
        let (out, op) = self.output(vec![batch, steps, hidden])?;
        for s in 0..steps {
            let t = if reverse { steps - 1 - s } else { s };
            let gh = self.fused_linear(&h, w_hh, Some(b_hh), NO_ACTIVATION)?; // [B, 4H]
            self.launch_elementwise(
                "lstm_cell",
                batch * hidden,
                &[
                    Arg::Ptr(f32_ptr(&gx)?),
                    Arg::Ptr(f32_ptr(&gh)?),
                    Arg::Ptr(address(&c)),
                    Arg::Ptr(f32_ptr(&h)?),
                    Arg::Ptr(op),
                    Arg::I32(int(batch, "batch")?),
                    Arg::I32(int(steps, "steps")?),
                    Arg::I32(int(hidden, "hidden")?),
                    Arg::I32(int(t, "step")?),
                ],
            )?;
        }
        Ok(out)
    }
}
