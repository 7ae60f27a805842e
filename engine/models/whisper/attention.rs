//! Whisper's multi-head attention (openai/whisper model.py `MultiHeadAttention`; transformers
//! `WhisperAttention`): q, k, v and out projections, k without bias.

use crate::backend::{Device, Tensor};
use crate::error::Result;
use crate::models::common::layers::Linear;
use crate::weights::WeightStore;

pub struct MultiHeadAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    pub heads: usize,
    /// Self-attention's products in bf16 ([`Device::attention_bf16`]), with the projections.
    pub bf16_products: bool,
}

/// Keys and values of one attention layer, `[B, T, D]` each; grows by one step per decoded token
/// (self-attention) or is computed once per window (cross-attention, then possibly kept in f16:
/// `Decoder::keep_cross_kv_float16`).
#[derive(Clone)]
pub struct KvCache {
    pub k: Tensor,
    pub v: Tensor,
}

impl MultiHeadAttention {
    pub fn load(dev: &Device, store: &dyn WeightStore, prefix: &str, d: usize, heads: usize) -> Result<Self> {
        Ok(MultiHeadAttention {
            q_proj: Linear::load(dev, store, &format!("{prefix}.q_proj"), d, d, true)?,
            k_proj: Linear::load(dev, store, &format!("{prefix}.k_proj"), d, d, false)?,
            v_proj: Linear::load(dev, store, &format!("{prefix}.v_proj"), d, d, true)?,
            out_proj: Linear::load(dev, store, &format!("{prefix}.out_proj"), d, d, true)?,
            heads,
            bf16_products: false,
        })
    }

    /// The four projections in int8 where the backend computes int8 products.
    pub fn quantize_int8(&mut self, dev: &Device) -> Result<()> {
        for proj in [&mut self.q_proj, &mut self.k_proj, &mut self.v_proj, &mut self.out_proj] {
            proj.quantize_int8(dev)?;
        }
        Ok(())
    }

    /// The four projections in bfloat16 where the backend computes bf16 products, and the
    /// self-attention's own products ([`Self::self_attention`]).
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.round_projections_bfloat16(dev)?;
        self.bf16_products = true;
        Ok(())
    }

    /// The four projections in bfloat16 where the backend computes bf16 products; attention's
    /// own products stay as they are (the decoder's steps).
    pub fn round_projections_bfloat16(&mut self, dev: &Device) -> Result<()> {
        for proj in [&mut self.q_proj, &mut self.k_proj, &mut self.v_proj, &mut self.out_proj] {
            proj.round_bfloat16(dev)?;
        }
        Ok(())
    }

    /// Keys and values of `source` `[B, T, D]`.
    pub fn kv(&self, dev: &Device, source: &Tensor) -> Result<KvCache> {
        Ok(KvCache { k: self.k_proj.forward(dev, source)?, v: self.v_proj.forward(dev, source)? })
    }

    /// `residual` + attention of `x` over itself (encoder); the skip connection is fused into
    /// the output projection where the backend can.
    pub fn self_attention(&self, dev: &Device, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let q = self.q_proj.forward(dev, x)?;
        let kv = self.kv(dev, x)?;
        let o = if self.bf16_products {
            dev.attention_bf16(&q, &kv.k, &kv.v, self.heads, false)?
        } else {
            dev.attention(&q, &kv.k, &kv.v, self.heads, false)?
        };
        self.out_proj.forward_residual(dev, &o, residual)
    }

    /// `residual` + causal self-attention of new positions `x` `[B, n, D]`, appending their keys
    /// and values to `cache` (decoder), whose row `i` is first replaced by its row `sources[i]`
    /// when a beam search has reordered the hypotheses since the last step.
    pub fn cached_self_attention(
        &self,
        dev: &Device,
        x: &Tensor,
        cache: &mut Option<KvCache>,
        sources: Option<&[usize]>,
        residual: &Tensor,
    ) -> Result<Tensor> {
        let q = self.q_proj.forward(dev, x)?;
        let new = self.kv(dev, x)?;
        let kv = match (cache.take(), sources) {
            (None, _) => new,
            (Some(old), None) => KvCache { k: dev.concat(&[&old.k, &new.k], 1)?, v: dev.concat(&[&old.v, &new.v], 1)? },
            (Some(old), Some(s)) => {
                KvCache { k: dev.gather_append(&old.k, s, &new.k)?, v: dev.gather_append(&old.v, s, &new.v)? }
            }
        };
        let o = dev.attention(&q, &kv.k, &kv.v, self.heads, true)?;
        *cache = Some(kv);
        self.out_proj.forward_residual(dev, &o, residual)
    }

    /// Scaled scores `q·kᵀ/√Dh` of one hypothesis `x[1, n, D]` over `kv[1, T, D]`, per head:
    /// `[heads, n, T]` (what openai's cross-attention QK hooks see).
    pub fn cross_scores(&self, dev: &Device, x: &Tensor, kv: &KvCache) -> Result<Tensor> {
        let q = self.q_proj.forward(dev, x)?;
        let (n, t, d) = (q.dim(1), kv.k.dim(1), q.dim(2));
        let dh = d / self.heads;
        let q = dev.permute(&q.reshape(&[n, self.heads, dh])?, &[1, 0, 2])?;
        // Keys kept in half precision are widened (exactly) for the product.
        let keys = match kv.k.dtype() {
            "float16" => dev.to_float32(&dev.index_select(&kv.k, &[0])?)?,
            _ => dev.slice(&kv.k, 0, 0, 1)?,
        };
        let k = dev.permute(&keys.reshape(&[t, self.heads, dh])?, &[1, 0, 2])?;
        let scores = dev.matmul(&q, &k, true)?;
        dev.scale(&scores, 1.0 / (dh as f32).sqrt())
    }

    /// `residual` + attention of `x` over precomputed keys and values (decoder cross-attention).
    pub fn cross_attention(&self, dev: &Device, x: &Tensor, kv: &KvCache, residual: &Tensor) -> Result<Tensor> {
        let q = self.q_proj.forward(dev, x)?;
        let o = dev.attention(&q, &kv.k, &kv.v, self.heads, false)?;
        self.out_proj.forward_residual(dev, &o, residual)
    }
}
