//! Whisper's text decoder (openai/whisper model.py `TextDecoder`): token + learned positional
//! embeddings, pre-norm blocks of causal self-attention, cross-attention over the audio
//! features and an MLP, then logits through the (tied) token embedding.

use crate::backend::{Device, Tensor};
use crate::error::{Error, Result};
use crate::models::common::layers::{load, load_matrix, LayerNorm, Linear};
use crate::weights::WeightStore;

use super::attention::{KvCache, MultiHeadAttention};
use super::config::WhisperConfig;

pub struct DecoderLayer {
    self_attn: MultiHeadAttention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: MultiHeadAttention,
    encoder_attn_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_layer_norm: LayerNorm,
}

impl DecoderLayer {
    fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &WhisperConfig) -> Result<Self> {
        let (d, h) = (c.d_model, c.decoder_attention_heads);
        Ok(DecoderLayer {
            self_attn: MultiHeadAttention::load(dev, store, &format!("{p}.self_attn"), d, h)?,
            self_attn_layer_norm: LayerNorm::load(dev, store, &format!("{p}.self_attn_layer_norm"), d)?,
            encoder_attn: MultiHeadAttention::load(dev, store, &format!("{p}.encoder_attn"), d, h)?,
            encoder_attn_layer_norm: LayerNorm::load(dev, store, &format!("{p}.encoder_attn_layer_norm"), d)?,
            fc1: Linear::load(dev, store, &format!("{p}.fc1"), d, c.decoder_ffn_dim, true)?,
            fc2: Linear::load(dev, store, &format!("{p}.fc2"), c.decoder_ffn_dim, d, true)?,
            final_layer_norm: LayerNorm::load(dev, store, &format!("{p}.final_layer_norm"), d)?,
        })
    }

    fn quantize_int8(&mut self, dev: &Device) -> Result<()> {
        self.self_attn.quantize_int8(dev)?;
        self.encoder_attn.quantize_int8(dev)?;
        self.fc1.quantize_int8(dev)?;
        self.fc2.quantize_int8(dev)
    }

    /// The products each decoded token runs (not the cross-attention's keys and values).
    fn round_step_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.self_attn.round_projections_bfloat16(dev)?;
        self.encoder_attn.q_proj.round_bfloat16(dev)?;
        self.encoder_attn.out_proj.round_bfloat16(dev)?;
        self.fc1.round_bfloat16(dev)?;
        self.fc2.round_bfloat16(dev)
    }
}

/// Per-window decoder state: the cross-attention keys/values (computed once from the audio
/// features, one row per audio) and the self-attention cache (one row per hypothesis, one
/// entry per layer, growing with each token). Hypotheses of one audio are contiguous rows.
pub struct DecoderState {
    cross: Vec<KvCache>,
    self_kv: Vec<Option<KvCache>>,
    /// A beam search's reordering not yet applied to `self_kv`: row `i` continues row
    /// `reordered[i]`. The next step gathers the rows as it appends to them
    /// ([`Device::gather_append`]), one copy of the cache instead of two.
    reordered: Option<Vec<usize>>,
    /// Number of positions already in the self-attention cache.
    pub offset: usize,
    /// Hypotheses (token rows) per audio.
    group: usize,
    n_audio: usize,
}

impl DecoderState {
    /// Token rows this state expects: audios × hypotheses per audio.
    pub fn rows(&self) -> usize {
        self.n_audio * self.group
    }

    /// Continue row `sources[i]`'s self-attention cache as row `i` (beam search reordering;
    /// decoding.py `rearrange_kv_cache`). Sources must stay within their audio's rows. The rows
    /// are gathered by the next step as it appends to them (or by [`Self::retain_audios`]).
    pub fn reorder(&mut self, sources: &[usize]) -> Result<()> {
        if sources.len() != self.rows() || sources.iter().enumerate().any(|(i, &s)| s / self.group != i / self.group) {
            return Err(Error::shape("decoder", format!("reorder {sources:?} across audios of {} rows", self.group)));
        }
        if sources.iter().enumerate().all(|(i, &s)| i == s) || self.self_kv.iter().all(Option::is_none) {
            return Ok(());
        }
        // Row i is the old row sources[i], itself the stored row reordered[sources[i]].
        self.reordered = Some(match self.reordered.take() {
            Some(earlier) => sources.iter().map(|&s| earlier[s]).collect(),
            None => sources.to_vec(),
        });
        Ok(())
    }

    /// How the cross-attention keys and values are stored (`float16` or `float32`).
    pub fn cross_kv_dtype(&self) -> &'static str {
        self.cross.first().map_or("float32", |kv| kv.k.dtype())
    }

    /// Keep only the audios whose `keep` is true (a batch whose windows finish at different
    /// steps): their cross-attention rows and their hypotheses' cache rows, in order.
    pub fn retain_audios(&mut self, dev: &Device, keep: &[bool]) -> Result<()> {
        if keep.len() != self.n_audio {
            return Err(Error::shape("decoder", format!("retain {} of {} audios", keep.len(), self.n_audio)));
        }
        let audios: Vec<usize> = (0..self.n_audio).filter(|&a| keep[a]).collect();
        if audios.len() == self.n_audio {
            return Ok(());
        }
        let mut rows: Vec<usize> = audios.iter().flat_map(|&a| a * self.group..(a + 1) * self.group).collect();
        // A pending reordering is applied by the same gather.
        if let Some(reordered) = self.reordered.take() {
            rows = rows.iter().map(|&r| reordered[r]).collect();
        }
        if !audios.is_empty() {
            for kv in self.cross.iter_mut() {
                *kv = KvCache { k: dev.index_select(&kv.k, &audios)?, v: dev.index_select(&kv.v, &audios)? };
            }
            for kv in self.self_kv.iter_mut().flatten() {
                *kv = KvCache { k: dev.index_select(&kv.k, &rows)?, v: dev.index_select(&kv.v, &rows)? };
            }
        }
        self.n_audio = audios.len();
        Ok(())
    }
}

/// Which positions of the fed tokens to compute logits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogitPositions {
    All,
    Last,
    /// Positions relative to the tokens of this call, in order.
    At(Vec<usize>),
}

pub struct Decoder {
    embed_tokens: Tensor,
    /// The (tied) output projection: `embed_tokens` itself, or its int8 copy.
    logits_weight: Tensor,
    embed_positions: Tensor,
    layers: Vec<DecoderLayer>,
    layer_norm: LayerNorm,
    n_ctx: usize,
    /// Whether each window's cross-attention keys and values are kept in half precision
    /// ([`Self::keep_cross_kv_float16`]).
    cross_kv_float16: bool,
}

impl Decoder {
    pub fn load(dev: &Device, store: &dyn WeightStore, c: &WhisperConfig) -> Result<Self> {
        let p = "model.decoder";
        let d = c.d_model;
        // Laid out for the logits, a step's few rows against every token, where the backend has
        // such a form (`pack_for_few_rows`); the token lookup reads the same values from it.
        let embed_tokens =
            dev.pack_for_few_rows(&load_matrix(dev, store, &format!("{p}.embed_tokens.weight"), &[c.vocab_size, d])?)?;
        Ok(Decoder {
            logits_weight: embed_tokens.clone(),
            embed_tokens,
            embed_positions: load(dev, store, &format!("{p}.embed_positions.weight"), &[c.max_target_positions, d])?,
            layers: (0..c.decoder_layers)
                .map(|i| DecoderLayer::load(dev, store, &format!("{p}.layers.{i}"), c))
                .collect::<Result<_>>()?,
            layer_norm: LayerNorm::load(dev, store, &format!("{p}.layer_norm"), d)?,
            n_ctx: c.max_target_positions,
            cross_kv_float16: false,
        })
    }

    /// The cross-attention's key and value projections in bfloat16 where the backend computes
    /// bf16 products: they run once per window over its 1500 audio frames, a GEMM like the
    /// encoder's (`compute_type=default`; [`Self::round_bfloat16`] rounds the per-token products
    /// too).
    pub fn round_cross_kv_bfloat16(&mut self, dev: &Device) -> Result<()> {
        for l in &mut self.layers {
            l.encoder_attn.k_proj.round_bfloat16(dev)?;
            l.encoder_attn.v_proj.round_bfloat16(dev)?;
        }
        Ok(())
    }

    /// Every linear product in bfloat16 where the backend computes bf16 products (`compute_type
    /// bfloat16`): the cross-attention's keys and values as [`Self::round_cross_kv_bfloat16`],
    /// and the per-token products — each block's projections and MLP and the output projection
    /// (a bf16 copy of the tied embedding; the token lookup keeps the checkpoint's values). At a
    /// step's few rows these read the weight once either way, but `vdpbf16ps` multiplies twice
    /// the pairs an f32 FMA does, the products' cost on this CPU (the f16 weights' conversion
    /// and FMAs run at 48 GFLOP/s, under the memory's bandwidth). Attention's products stay f32.
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.round_cross_kv_bfloat16(dev)?;
        self.layers.iter_mut().try_for_each(|l| l.round_step_bfloat16(dev))?;
        self.logits_weight = dev.round_bfloat16(&self.embed_tokens)?;
        Ok(())
    }

    /// Every block's linear weights and the output projection in int8 where the backend
    /// computes int8 products; the token lookup keeps the checkpoint's values (as CTranslate2,
    /// which quantises the projection and keeps the embedding).
    pub fn quantize_int8(&mut self, dev: &Device) -> Result<()> {
        self.layers.iter_mut().try_for_each(|l| l.quantize_int8(dev))?;
        self.logits_weight = dev.quantize_int8(&self.embed_tokens)?;
        Ok(())
    }

    /// Keep each window's cross-attention keys and values in f16 ([`Device::to_float16`]), or in
    /// f32 (`keep` false, the default): every
    /// decoding step reads all of them, once per layer (at 7 chunks of 5 beams, 32 MB a layer in
    /// f32), so half the bytes is most of half the cross-attention's time. Rounding them moved
    /// no WER figure and no transcript of the side-by-side benchmark (benches/README.md).
    pub fn keep_cross_kv_float16(&mut self, keep: bool) {
        self.cross_kv_float16 = keep;
    }

    /// How each window's cross-attention keys and values are stored (`float16` once
    /// [`Self::keep_cross_kv_float16`] took, else `float32`).
    pub fn cross_kv_dtype(&self) -> &'static str {
        if self.cross_kv_float16 {
            "float16"
        } else {
            "float32"
        }
    }

    /// How the per-token products' weights are stored (`int8` once quantised, `bfloat16` once
    /// rounded).
    pub fn weight_dtype(&self) -> &'static str {
        self.logits_weight.dtype()
    }

    /// Maximum number of tokens in one window (prompt included).
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Start a window: cross-attention keys and values of the encoder output `[A, T, D]`,
    /// computed once per audio and shared by its `group` hypotheses.
    pub fn start(&self, dev: &Device, audio_features: &Tensor, group: usize) -> Result<DecoderState> {
        Ok(DecoderState {
            cross: self
                .layers
                .iter()
                .map(|l| {
                    let kv = l.encoder_attn.kv(dev, audio_features)?;
                    if !self.cross_kv_float16 {
                        return Ok(kv);
                    }
                    Ok(KvCache { k: dev.to_float16(&kv.k)?, v: dev.to_float16(&kv.v)? })
                })
                .collect::<Result<_>>()?,
            self_kv: self.layers.iter().map(|_| None).collect(),
            reordered: None,
            offset: 0,
            group: group.max(1),
            n_audio: audio_features.dim(0),
        })
    }

    /// Feed `tokens` (one row per hypothesis, equal lengths) and return logits
    /// `[rows, positions, V]` for the requested positions.
    pub fn forward(
        &self,
        dev: &Device,
        tokens: &[Vec<u32>],
        state: &mut DecoderState,
        positions: LogitPositions,
    ) -> Result<Tensor> {
        self.forward_capturing(dev, tokens, state, positions, &mut [])
    }

    /// [`Decoder::forward`] that also records the scaled cross-attention scores (before
    /// softmax) of the given `(layer, head)` pairs, for one hypothesis: `captured[j]` receives
    /// `[n_tokens, n_audio_frames]` of `heads[j]` (openai timing.py's QK hooks).
    pub fn forward_capturing(
        &self,
        dev: &Device,
        tokens: &[Vec<u32>],
        state: &mut DecoderState,
        positions: LogitPositions,
        captured: &mut [((usize, usize), Vec<f32>)],
    ) -> Result<Tensor> {
        let n = tokens.first().map_or(0, Vec::len);
        let rows = state.rows();
        if tokens.len() != rows || n == 0 || tokens.iter().any(|t| t.len() != n) {
            return Err(Error::shape("decoder", format!("{} rows of tokens for {rows} hypotheses", tokens.len())));
        }
        if state.offset + n > self.n_ctx {
            return Err(Error::shape(
                "decoder",
                format!("{} positions exceed the context of {}", state.offset + n, self.n_ctx),
            ));
        }
        let d = self.embed_tokens.dim(1);
        let ids: Vec<u32> = tokens.iter().flatten().copied().collect();
        let mut x = dev
            .embedding_with_positions(&ids, &self.embed_tokens, &self.embed_positions, state.offset, n)?
            .reshape(&[rows, n, d])?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.self_attn_layer_norm.forward(dev, &x)?;
            x = layer.self_attn.cached_self_attention(
                dev,
                &h,
                &mut state.self_kv[i],
                state.reordered.as_deref(),
                &x,
            )?;
            let h = layer.encoder_attn_layer_norm.forward(dev, &x)?;
            if captured.iter().any(|((l, _), _)| *l == i) {
                let scores = dev.download(&layer.encoder_attn.cross_scores(dev, &h, &state.cross[i])?)?;
                let per_head = scores.len() / layer.encoder_attn.heads;
                for ((l, head), out) in captured.iter_mut() {
                    if *l == i {
                        *out = scores[*head * per_head..(*head + 1) * per_head].to_vec();
                    }
                }
            }
            x = layer.encoder_attn.cross_attention(dev, &h, &state.cross[i], &x)?;
            let h = layer.final_layer_norm.forward(dev, &x)?;
            let h = layer.fc1.forward_gelu(dev, &h)?;
            x = layer.fc2.forward_residual(dev, &h, &x)?;
        }
        state.offset += n;
        state.reordered = None;
        x = match positions {
            LogitPositions::All => x,
            LogitPositions::Last if n == 1 => x,
            LogitPositions::Last => dev.slice(&x, 1, n - 1, 1)?,
            LogitPositions::At(p) => {
                if let Some(bad) = p.iter().find(|&&i| i >= n) {
                    return Err(Error::shape("decoder", format!("logit position {bad} of {n} tokens")));
                }
                let picked: Vec<usize> = (0..rows).flat_map(|r| p.iter().map(move |&i| r * n + i)).collect();
                dev.index_select(&x.reshape(&[rows * n, d])?, &picked)?.reshape(&[rows, p.len(), d])?
            }
        };
        let x = self.layer_norm.forward(dev, &x)?;
        dev.linear(&x, &self.logits_weight, None)
    }
}
