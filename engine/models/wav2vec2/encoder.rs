//! The transformer encoder (HFM `Wav2Vec2PositionalConvEmbedding`, `Wav2Vec2Attention`,
//! `Wav2Vec2FeedForward`, `Wav2Vec2EncoderLayer` (post-LN), `Wav2Vec2EncoderLayerStableLayerNorm`
//! (pre-LN), `Wav2Vec2Encoder`, `Wav2Vec2EncoderStableLayerNorm`).

use crate::backend::{Activation, Conv1dParams, Device, Tensor};
use crate::error::Result;
use crate::models::common::layers::{Conv1d, LayerNorm, Linear};
use crate::weights::WeightStore;

use super::config::Wav2Vec2Config;

/// The positional convolution: `x + GELU(conv(x))` with "same" padding (an even kernel's extra
/// last frame dropped: HFM `Wav2Vec2SamePadLayer`). Its weight norm is folded at load
/// (`checkpoint`), so here it is a plain grouped conv.
struct PositionalConv {
    conv: Conv1d,
    kernel: usize,
}

impl PositionalConv {
    fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &Wav2Vec2Config) -> Result<Self> {
        let k = c.num_conv_pos_embeddings;
        let params = Conv1dParams { padding: k / 2, groups: c.num_conv_pos_embedding_groups, ..Default::default() };
        let conv =
            Conv1d::load(dev, store, &format!("{p}.pos_conv_embed.conv"), (c.hidden_size, c.hidden_size, k), params)?;
        Ok(PositionalConv { conv, kernel: k })
    }

    /// `x[B, T, D]` → `x + pos(x)`.
    fn add_to(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let frames = x.shape()[1];
        let t = dev.permute(x, &[0, 2, 1])?;
        let y = self.conv.forward(dev, &t)?;
        // Wav2Vec2SamePadLayer: one frame too many when the kernel is even.
        let y = if self.kernel.is_multiple_of(2) { dev.slice(&y, 2, 0, frames)? } else { y };
        let y = dev.activation(&y, Activation::Gelu)?;
        let y = dev.permute(&y, &[0, 2, 1])?;
        dev.binary(x, &y, crate::backend::BinaryOp::Add)
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
}

impl Attention {
    fn load(dev: &Device, store: &dyn WeightStore, p: &str, d: usize, heads: usize) -> Result<Self> {
        let proj = |name: &str| Linear::load(dev, store, &format!("{p}.{name}"), d, d, true);
        Ok(Attention {
            q_proj: proj("q_proj")?,
            k_proj: proj("k_proj")?,
            v_proj: proj("v_proj")?,
            out_proj: proj("out_proj")?,
            heads,
        })
    }

    /// The projections in bfloat16 and attention's products too ([`Device::attention_bf16`])
    /// where the device computes bf16 products.
    fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        for proj in [&mut self.q_proj, &mut self.k_proj, &mut self.v_proj, &mut self.out_proj] {
            proj.round_bfloat16(dev)?;
        }
        Ok(())
    }

    /// Whether the projections took bf16 ([`Attention::round_bfloat16`]): then attention's
    /// products run in bf16 too.
    fn bf16_products(&self) -> bool {
        self.q_proj.weight.dtype() == "bfloat16"
    }

    /// `residual + out(softmax(q·kᵀ/√Dh)·v)` of `x[B, T, D]` over itself; of packed inputs
    /// (`x[1, ΣT, D]`), each over its own frames only.
    fn forward_residual(
        &self,
        dev: &Device,
        x: &Tensor,
        residual: &Tensor,
        packing: Option<&Packing>,
    ) -> Result<Tensor> {
        let q = self.q_proj.forward(dev, x)?;
        let k = self.k_proj.forward(dev, x)?;
        let v = self.v_proj.forward(dev, x)?;
        let o = match (packing, self.bf16_products()) {
            (None, false) => dev.attention(&q, &k, &v, self.heads, false)?,
            (None, true) => dev.attention_bf16(&q, &k, &v, self.heads, false)?,
            (Some(p), bf16) => {
                let (q, k, v) = (p.padded(dev, &q)?, p.padded(dev, &k)?, p.padded(dev, &v)?);
                let o = if bf16 {
                    dev.attention_kv_lens_bf16(&q, &k, &v, self.heads, &p.frames)?
                } else {
                    dev.attention_kv_lens(&q, &k, &v, self.heads, &p.frames)?
                };
                p.packed(dev, &o)?
            }
        };
        self.out_proj.forward_residual(dev, &o, residual)
    }
}

struct FeedForward {
    intermediate_dense: Linear,
    output_dense: Linear,
}

impl FeedForward {
    fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &Wav2Vec2Config) -> Result<Self> {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        Ok(FeedForward {
            intermediate_dense: Linear::load(dev, store, &format!("{p}.intermediate_dense"), d, f, true)?,
            output_dense: Linear::load(dev, store, &format!("{p}.output_dense"), f, d, true)?,
        })
    }

    fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.intermediate_dense.round_bfloat16(dev)?;
        self.output_dense.round_bfloat16(dev)
    }

    /// `residual + W₂·GELU(W₁·x)`.
    fn forward_residual(&self, dev: &Device, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let h = self.intermediate_dense.forward_gelu(dev, x)?;
        self.output_dense.forward_residual(dev, &h, residual)
    }
}

struct EncoderLayer {
    attention: Attention,
    layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &Wav2Vec2Config) -> Result<Self> {
        let d = c.hidden_size;
        let ln = |name: &str| -> Result<LayerNorm> {
            let mut ln = LayerNorm::load(dev, store, &format!("{p}.{name}"), d)?;
            ln.eps = c.layer_norm_eps;
            Ok(ln)
        };
        Ok(EncoderLayer {
            attention: Attention::load(dev, store, &format!("{p}.attention"), d, c.num_attention_heads)?,
            layer_norm: ln("layer_norm")?,
            feed_forward: FeedForward::load(dev, store, &format!("{p}.feed_forward"), c)?,
            final_layer_norm: ln("final_layer_norm")?,
        })
    }

    fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.attention.round_bfloat16(dev)?;
        self.feed_forward.round_bfloat16(dev)
    }

    /// Post-LN (`Wav2Vec2EncoderLayer`): `h = LN(h + Attn(h))`, `h = LN_f(h + FFN(h))`.
    fn forward_post_ln(&self, dev: &Device, h: &Tensor, packing: Option<&Packing>) -> Result<Tensor> {
        let h = self.attention.forward_residual(dev, h, h, packing)?;
        let h = self.layer_norm.forward(dev, &h)?;
        let h = self.feed_forward.forward_residual(dev, &h, &h)?;
        self.final_layer_norm.forward(dev, &h)
    }

    /// Pre-LN (`Wav2Vec2EncoderLayerStableLayerNorm`): `h += Attn(LN(h))`, `h += FFN(LN_f(h))`.
    fn forward_pre_ln(&self, dev: &Device, h: &Tensor, packing: Option<&Packing>) -> Result<Tensor> {
        let a = self.layer_norm.forward(dev, h)?;
        let h = self.attention.forward_residual(dev, &a, h, packing)?;
        let f = self.final_layer_norm.forward(dev, &h)?;
        self.feed_forward.forward_residual(dev, &f, &h)
    }
}

pub struct Encoder {
    pos_conv_embed: PositionalConv,
    layer_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    stable_layer_norm: bool,
}

impl Encoder {
    /// `{p}.encoder.{pos_conv_embed, layer_norm, layers.{i}}`.
    pub fn load(dev: &Device, store: &dyn WeightStore, p: &str, c: &Wav2Vec2Config) -> Result<Self> {
        let p = format!("{p}.encoder");
        let mut layer_norm = LayerNorm::load(dev, store, &format!("{p}.layer_norm"), c.hidden_size)?;
        layer_norm.eps = c.layer_norm_eps;
        Ok(Encoder {
            pos_conv_embed: PositionalConv::load(dev, store, &p, c)?,
            layer_norm,
            layers: (0..c.num_hidden_layers)
                .map(|i| EncoderLayer::load(dev, store, &format!("{p}.layers.{i}"), c))
                .collect::<Result<_>>()?,
            stable_layer_norm: c.do_stable_layer_norm,
        })
    }

    /// Every layer's projections and feed-forward matrices in bfloat16 where the device
    /// computes bf16 products ([`Linear::round_bfloat16`]).
    pub fn round_bfloat16(&mut self, dev: &Device) -> Result<()> {
        self.layers.iter_mut().try_for_each(|l| l.round_bfloat16(dev))
    }

    /// The first layer's feed-forward weight's element type (None without layers).
    pub fn weight_dtype(&self) -> Option<&'static str> {
        self.layers.first().map(|l| l.feed_forward.intermediate_dense.weight.dtype())
    }

    /// `x[B, T, D]` → `[B, T, D]`.
    pub fn forward(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let h = self.pos_conv_embed.add_to(dev, x)?;
        self.layers(dev, h, None)
    }

    /// Inputs of different lengths in one pass, `xs[b]` being `[1, T_b, D]` → their outputs
    /// packed, `[1, ΣT_b, D]` (input `b`'s rows after those of the inputs before it), each what
    /// [`Self::forward`] gives that input alone. The positional conv runs per input (its zero
    /// padding is each input's own edges, as HFM zeroes a padded batch's padded frames before
    /// it); every later step but attention is per frame and runs on the packed rows, with no
    /// padding to compute; attention pads them to `[B, T_longest, D]` and each input's queries
    /// see its own frames only (HFM's attention mask, [`Device::attention_kv_lens`]).
    pub fn forward_packed(&self, dev: &Device, xs: &[Tensor]) -> Result<Tensor> {
        let frames: Vec<usize> = xs.iter().map(|x| x.dim(1)).collect();
        let embedded = xs.iter().map(|x| self.pos_conv_embed.add_to(dev, x)).collect::<Result<Vec<_>>>()?;
        let h = dev.concat(&embedded.iter().collect::<Vec<_>>(), 1)?;
        self.layers(dev, h, Some(&Packing::new(frames)))
    }

    /// The layers (and the encoder's layer norm) after the positional conv.
    fn layers(&self, dev: &Device, h: Tensor, packing: Option<&Packing>) -> Result<Tensor> {
        if self.stable_layer_norm {
            let mut h = h;
            for layer in &self.layers {
                h = layer.forward_pre_ln(dev, &h, packing)?;
            }
            self.layer_norm.forward(dev, &h)
        } else {
            let mut h = self.layer_norm.forward(dev, &h)?;
            for layer in &self.layers {
                h = layer.forward_post_ln(dev, &h, packing)?;
            }
            Ok(h)
        }
    }
}

/// Where the frames of packed inputs lie: input `b`'s `frames[b]` rows follow those of the
/// inputs before it in `[1, ΣT, D]`; attention takes them padded to `[B, T_longest, D]`.
struct Packing {
    frames: Vec<usize>,
    longest: usize,
    /// Packed row of each padded row. A padded position repeats its input's last frame: as a key
    /// or value the key lengths hide it, as a query its output is dropped.
    to_padded: Vec<usize>,
    /// Padded row of each packed row.
    to_packed: Vec<usize>,
}

impl Packing {
    fn new(frames: Vec<usize>) -> Self {
        let longest = frames.iter().copied().max().unwrap_or(0);
        let (mut to_padded, mut to_packed) = (Vec::new(), Vec::new());
        let mut first = 0;
        for (b, &n) in frames.iter().enumerate() {
            to_padded.extend((0..longest).map(|t| first + t.min(n.saturating_sub(1))));
            to_packed.extend((0..n).map(|t| b * longest + t));
            first += n;
        }
        Packing { frames, longest, to_padded, to_packed }
    }

    /// `x[1, ΣT, D]` → `[B, T_longest, D]`.
    fn padded(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(-1);
        let rows = x.reshape(&[self.to_packed.len(), d])?;
        dev.index_select(&rows, &self.to_padded)?.reshape(&[self.frames.len(), self.longest, d])
    }

    /// `x[B, T_longest, D]` → `[1, ΣT, D]`.
    fn packed(&self, dev: &Device, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(-1);
        let rows = x.reshape(&[self.to_padded.len(), d])?;
        dev.index_select(&rows, &self.to_packed)?.reshape(&[1, self.to_packed.len(), d])
    }
}
