//! [`Backend::choose_tokens`](crate::backend::Backend::choose_tokens) on the GPU
//! (kernels/token_choice.cu): per row, the masks go up as a small plan, and only the argmax,
//! the top-k and the sample, with their log-probabilities, come back.

use cudarc::driver::{DeviceRepr, LaunchConfig};

use super::backend::{int, Arg, CudaBackend, ROW_THREADS};
use super::storage::{address, f32_ptr};
use crate::backend::kernels::{AttentionOps, LayoutOps, TokenOps};
use crate::backend::token_choice::choose_rows_on_host;
use crate::backend::{shape_checks, RowMask, Sampling, Tensor, TokenChoice};
use crate::error::{Error, Result};

/// kernels/token_choice.cu limits: beyond them a call takes the host path.
pub const MAX_RANGES: usize = 8;
pub const MAX_TOP_K: usize = 16;
pub const MAX_MASK_IDS: usize = 2048;

/// kernels/token_choice.cu `RowPlan`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowPlan {
    pub uniform: f64,
    pub ids_offset: i32,
    pub n_ids: i32,
    pub n_ranges: i32,
    pub split: i32,
    pub range_lo: [i32; MAX_RANGES],
    pub range_hi: [i32; MAX_RANGES],
}

// SAFETY: plain #[repr(C)] numbers, laid out as the CUDA struct.
unsafe impl DeviceRepr for RowPlan {}

/// The kernel's plan of each row (ids sorted, deduplicated and clamped to the row; empty ranges
/// dropped) and the concatenated ids, or None when a row exceeds the kernel's limits.
pub fn plans(masks: &[RowMask], vocab: usize, sampling: Option<&Sampling>) -> Option<(Vec<RowPlan>, Vec<u32>)> {
    let mut all_ids = Vec::new();
    let mut out = Vec::with_capacity(masks.len());
    for (r, m) in masks.iter().enumerate() {
        let mut ids: Vec<u32> = m.ids.iter().copied().filter(|&i| (i as usize) < vocab).collect();
        ids.sort_unstable();
        ids.dedup();
        let ranges: Vec<(i32, i32)> = m
            .ranges
            .iter()
            .map(|&(lo, hi)| ((lo as usize).min(vocab) as i32, (hi as usize).min(vocab) as i32))
            .filter(|(lo, hi)| lo < hi)
            .collect();
        if ids.len() > MAX_MASK_IDS || ranges.len() > MAX_RANGES {
            return None;
        }
        let mut p = RowPlan {
            uniform: sampling.map_or(0.0, |s| s.uniforms[r]),
            ids_offset: all_ids.len() as i32,
            n_ids: ids.len() as i32,
            n_ranges: ranges.len() as i32,
            split: m.dominance_split.map_or(-1, |s| (s as usize).min(vocab) as i32),
            ..Default::default()
        };
        for (j, (lo, hi)) in ranges.into_iter().enumerate() {
            p.range_lo[j] = lo;
            p.range_hi[j] = hi;
        }
        all_ids.extend(ids);
        out.push(p);
    }
    Some((out, all_ids))
}

impl TokenOps for CudaBackend {
    fn choose_tokens(
        &self,
        logits: &Tensor,
        masks: &[RowMask],
        k: usize,
        sampling: Option<&Sampling>,
    ) -> Result<Vec<TokenChoice>> {
        let (rows, vocab) = shape_checks::choose_tokens(logits, masks, sampling)?;
        let planned = plans(masks, vocab, sampling).filter(|_| k <= MAX_TOP_K);
        let Some((plans, ids)) = planned else {
            // Beyond the kernel's limits: the reference path (downloads the rows).
            tracing::debug!("choose_tokens: k = {k} or a mask beyond the kernel's limits; choosing on the host");
            let data = self.to_host(super::storage::f32_slice(logits)?, rows * vocab)?;
            return Ok(choose_rows_on_host(&data, vocab, masks, k, sampling));
        };
        let dev_plans = self.to_device(&plans)?;
        let dev_ids = self.to_device(&ids)?;
        let slots = k + 2;
        // SAFETY: the kernel writes every slot it is asked for; unasked sample slots are not read.
        let out_ids =
            unsafe { self.stream.alloc::<u32>(rows * slots) }.map_err(|e| super::backend::driver_error("alloc", e))?;
        let out_lp = self.alloc(rows * slots)?;
        let blocks = u32::try_from(rows).map_err(|_| Error::Cuda("choose_tokens: too many rows".into()))?;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (ROW_THREADS as u32, 1, 1), shared_mem_bytes: 0 };
        self.launch(
            "token_choice",
            cfg,
            &[
                Arg::Ptr(f32_ptr(logits)?),
                Arg::I32(int(vocab, "vocabulary")?),
                Arg::Ptr(address(&dev_plans)),
                Arg::Ptr(address(&dev_ids)),
                Arg::I32(k as i32),
                Arg::F32(sampling.map_or(0.0, |s| s.temperature)),
                Arg::Ptr(address(&out_ids)),
                Arg::Ptr(address(&out_lp)),
            ],
        )?;
        let (got_ids, got_lp) = (self.to_host(&out_ids, rows * slots)?, self.to_host(&out_lp, rows * slots)?);
        Ok((0..rows)
            .map(|r| {
                let at = |j: usize| (got_ids[r * slots + j], got_lp[r * slots + j]);
                TokenChoice { best: at(0), top: (1..=k).map(at).collect(), sampled: sampling.map(|_| at(k + 1)) }
            })
            .collect())
    }

    /// `log_softmax(logits[row])[id]`: slice, log-softmax and slice on the device, one value back.
    fn logprob_of(&self, logits: &Tensor, row: usize, id: u32) -> Result<f32> {
        let (rows, v) = logits.rows_cols();
        if row >= rows || id as usize >= v {
            return Err(Error::shape("logprob_of", format!("row {row}, id {id} of {:?}", logits.shape())));
        }
        let one_row = self.slice(&logits.reshape(&[rows, v])?, 0, row, 1)?;
        let lp = self.softmax(&one_row, true)?;
        let value = self.slice(&lp, 1, id as usize, 1)?;
        Ok(self.to_host(super::storage::f32_slice(&value)?, 1)?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_sort_clamp_and_concatenate_each_rows_mask() {
        let masks = vec![
            RowMask { ids: vec![9, 3, 3, 500], ranges: vec![(2, 2), (7, u32::MAX)], dominance_split: Some(8) },
            RowMask { ids: vec![1], ranges: vec![], dominance_split: None },
        ];
        let sampling = Sampling { temperature: 0.5, uniforms: vec![0.25, 0.75] };
        let (p, ids) = plans(&masks, 10, Some(&sampling)).unwrap();
        assert_eq!(ids, vec![3, 9, 1]);
        assert_eq!((p[0].ids_offset, p[0].n_ids, p[1].ids_offset, p[1].n_ids), (0, 2, 2, 1));
        assert_eq!((p[0].n_ranges, p[0].range_lo[0], p[0].range_hi[0]), (1, 7, 10));
        assert_eq!((p[0].split, p[1].split), (8, -1));
        assert_eq!((p[0].uniform, p[1].uniform), (0.25, 0.75));
        let too_many = RowMask { ranges: (0..9).map(|i| (i, i + 1)).collect(), ..Default::default() };
        assert!(plans(&[too_many], 100, None).is_none());
        // The CUDA struct: a double then 4 + 2·8 ints.
        assert_eq!(std::mem::size_of::<RowPlan>(), 8 + 4 * (4 + 2 * MAX_RANGES));
    }
}
