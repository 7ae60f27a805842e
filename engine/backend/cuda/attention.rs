//! Multi-head attention with the flash-style kernel of kernels/attention.cu (keys and values f32,
//! or f16 in `attention_f16kv`): no score matrix,
//! one launch per call for the encoder, the decoder's self-attention over its KV cache and its
//! cross-attention over the encoder output alike, and for a padded batch with key lengths
//! (wav2vec2 over segments of different lengths).

use cudarc::driver::LaunchConfig;

use super::backend::{int, Arg, CudaBackend};
use super::storage::{address, f32_ptr, storage, CudaStorage};
use crate::backend::kernels::AttentionOps;
use crate::backend::Tensor;
use crate::error::{Error, Result};

/// kernels/attention.cu KEY_TILE and DH_MAX.
pub const KEY_TILE: usize = 32;
pub const DH_MAX: usize = 128;
/// Query rows (warps) per block: they share every key tile staged in shared memory
/// (kernels/attention.cu MAX_WARPS, its launch bound).
const QUERIES_PER_BLOCK: usize = 16;

/// Dynamic shared memory of one block: a padded key tile, a value tile and the block's queries.
pub fn shared_bytes(dh: usize, warps: usize) -> usize {
    (KEY_TILE * (dh + 1) + KEY_TILE * dh + warps * dh) * std::mem::size_of::<f32>()
}

impl AttentionOps for CudaBackend {
    fn softmax(&self, x: &Tensor, log: bool) -> Result<Tensor> {
        let (rows, d) = x.rows_cols();
        let (y, yp) = self.output(x.shape().to_vec())?;
        if d > 0 {
            self.launch_rows(
                "softmax_rows",
                rows,
                d,
                &[Arg::Ptr(f32_ptr(x)?), Arg::Ptr(yp), Arg::I32(int(d, "softmax width")?), Arg::I32(log as i32)],
            )?;
        }
        Ok(y)
    }

    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
        let dims = crate::backend::shape_checks::attention(q, k, v, heads, causal)?;
        self.launch_attention(q, k, v, heads, dims, causal, None)
    }

    fn attention_kv_lens(&self, q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, kv_lens: &[usize]) -> Result<Tensor> {
        let dims = crate::backend::shape_checks::attention_kv_lens(q, k, v, heads, kv_lens)?;
        self.launch_attention(q, k, v, heads, dims, false, Some(kv_lens))
    }
}

impl CudaBackend {
    /// One launch of kernels/attention.cu; `dims` = `(B, Tq, D, B_kv, Tk)` from the op's shape
    /// rule, `kv_lens` one length per key/value row (None: all `Tk`).
    #[allow(clippy::too_many_arguments)]
    fn launch_attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        (b, tq, d, bk, tk): (usize, usize, usize, usize, usize),
        causal: bool,
        kv_lens: Option<&[usize]>,
    ) -> Result<Tensor> {
        let dh = d / heads;
        if dh > DH_MAX {
            return Err(Error::Cuda(format!("attention: head size {dh} above the kernel's {DH_MAX}")));
        }
        if tq == 0 || tk == 0 || b == 0 {
            return Ok(self.output_zeroed(vec![b, tq, d])?.0);
        }
        // The lengths as the kernel's ints; freed in stream order after the launch.
        let lens = kv_lens
            .map(|lens| lens.iter().map(|&n| int(n, "key length")).collect::<Result<Vec<i32>>>())
            .transpose()?
            .map(|lens| self.to_device(&lens))
            .transpose()?;
        let (y, yp) = self.output(vec![b, tq, d])?;
        let warps = tq.min(QUERIES_PER_BLOCK);
        let grid = (
            u32::try_from(tq.div_ceil(warps)).map_err(|_| Error::Cuda("attention: too many queries".into()))?,
            u32::try_from(heads).map_err(|_| Error::Cuda("attention: too many heads".into()))?,
            u32::try_from(b).map_err(|_| Error::Cuda("attention: batch above 65535".into()))?,
        );
        if grid.1 > 65_535 || grid.2 > 65_535 {
            return Err(Error::Cuda(format!("attention: {heads} heads x batch {b} exceed the grid")));
        }
        let cfg = LaunchConfig {
            grid_dim: grid,
            block_dim: (32, warps as u32, 1),
            shared_mem_bytes: shared_bytes(dh, warps) as u32,
        };
        // Keys and values in f32, or both in f16 (the op's shape rule).
        let (kernel, kp, vp) = match (storage(k)?, storage(v)?) {
            (CudaStorage::F32(ks), CudaStorage::F32(vs)) => ("attention", address(ks), address(vs)),
            (CudaStorage::F16(ks), CudaStorage::F16(vs)) => ("attention_f16kv", address(ks), address(vs)),
            _ => return Err(Error::Cuda(format!("attention: k is {} but v is {}", k.dtype(), v.dtype()))),
        };
        self.launch(
            kernel,
            cfg,
            &[
                Arg::Ptr(f32_ptr(q)?),
                Arg::Ptr(kp),
                Arg::Ptr(vp),
                Arg::Ptr(yp),
                Arg::I32(int(tq, "queries")?),
                Arg::I32(int(tk, "keys")?),
                Arg::I32(int(heads, "heads")?),
                Arg::I32(int(dh, "head size")?),
                Arg::I32(int(b / bk, "group")?),
                Arg::I32(causal as i32),
                // A null pointer: every row has all its keys.
                Arg::Ptr(lens.as_ref().map_or(0, address)),
                Arg::F32(1.0 / (dh as f32).sqrt()),
            ],
        )?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_block_fits_the_default_shared_memory() {
        // 48 KiB is available to every launch without an opt-in attribute.
        assert!(shared_bytes(DH_MAX, QUERIES_PER_BLOCK) <= 48 * 1024, "{}", shared_bytes(DH_MAX, QUERIES_PER_BLOCK));
    }
}
