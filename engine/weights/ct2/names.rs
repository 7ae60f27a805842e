//! CTranslate2 Whisper variable names -> Hugging Face `WhisperForConditionalGeneration` names.
//!
//! CTranslate2's converter (python/ctranslate2/converters/transformers.py, `WhisperLoader`
//! built on `BartLoader.set_attention`) renames modules and fuses projections:
//!
//! | CTranslate2                                   | Hugging Face                                   |
//! |-----------------------------------------------|------------------------------------------------|
//! | `{enc,dec}/layer_N/self_attention/linear_0`   | `self_attn.{q,k,v}_proj`, fused as rows [q; k; v] |
//! | `{enc,dec}/layer_N/self_attention/linear_1`   | `self_attn.out_proj`                           |
//! | `{enc,dec}/layer_N/self_attention/layer_norm` | `self_attn_layer_norm`                         |
//! | `decoder/layer_N/attention/linear_0`          | `encoder_attn.q_proj`                          |
//! | `decoder/layer_N/attention/linear_1`          | `encoder_attn.{k,v}_proj`, fused as rows [k; v] |
//! | `decoder/layer_N/attention/linear_2`          | `encoder_attn.out_proj`                        |
//! | `decoder/layer_N/attention/layer_norm`        | `encoder_attn_layer_norm`                      |
//! | `{enc,dec}/layer_N/ffn/linear_0`, `linear_1`  | `fc1`, `fc2`                                   |
//! | `{enc,dec}/layer_N/ffn/layer_norm`            | `final_layer_norm`                             |
//! | `encoder/conv1`, `encoder/conv2`              | `model.encoder.conv1`, `conv2`                 |
//! | `{enc,dec}/position_encodings/encodings`      | `embed_positions.weight`                       |
//! | `{enc,dec}/layer_norm`                        | `model.{encoder,decoder}.layer_norm`           |
//! | `decoder/embeddings/weight`                   | `model.decoder.embed_tokens.weight`            |
//! | `decoder/projection/weight` (an alias)        | `proj_out.weight`                              |
//!
//! Layer norms use `gamma`/`beta` for `weight`/`bias`. HF's `k_proj` has no bias; when fusing,
//! CTranslate2 fills that slot with zeros, so the k-bias rows of a fused bias are dropped after
//! checking that they are zero.

/// Which rows of a (possibly fused) CT2 tensor an HF tensor takes: chunk `index` of `count`
/// equal chunks along dim 0. Row-major storage makes each chunk one contiguous byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub index: usize,
    pub count: usize,
}

impl Chunk {
    pub const WHOLE: Chunk = Chunk { index: 0, count: 1 };
}

/// What becomes of one chunk of a CT2 variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Exposed under this HF name.
    Tensor { hf: String, chunk: Chunk },
    /// A bias HF does not have (`k_proj.bias`): must be all zeros, then dropped.
    ZeroBias { hf: String, chunk: Chunk },
}

/// HF's name for the output projection, which CT2 stores as an alias of the token embedding.
pub const HF_PROJ_OUT: &str = "proj_out.weight";

/// The HF targets of a CT2 tensor variable, or `None` for a name this mapping does not know.
/// Scalar attributes (`decoder/num_heads`, ...) are not tensors and are not passed here.
pub fn hf_targets(ct2: &str) -> Option<Vec<Target>> {
    let (stack, rest) = ct2.split_once('/')?;
    let hf_stack = match stack {
        "encoder" => "model.encoder",
        "decoder" => "model.decoder",
        _ => return None,
    };
    let whole = |hf: String| Some(vec![Target::Tensor { hf, chunk: Chunk::WHOLE }]);

    // `layer_3/...` is a layer; `layer_norm/...` (the final norm) shares the prefix.
    let layer = rest
        .strip_prefix("layer_")
        .and_then(|r| r.split_once('/'))
        .and_then(|(index, inner)| Some((index.parse::<usize>().ok()?, inner)));
    if let Some((index, inner)) = layer {
        let prefix = format!("{hf_stack}.layers.{index}");
        return layer_targets(stack == "decoder", &prefix, inner);
    }

    match (stack, rest) {
        ("encoder", "conv1/weight" | "conv1/bias" | "conv2/weight" | "conv2/bias") => {
            whole(format!("{hf_stack}.{}", rest.replace('/', ".")))
        }
        (_, "position_encodings/encodings") => whole(format!("{hf_stack}.embed_positions.weight")),
        (_, "layer_norm/gamma" | "layer_norm/beta") => whole(format!("{hf_stack}.layer_norm.{}", norm_param(rest)?)),
        ("decoder", "embeddings/weight") => whole(format!("{hf_stack}.embed_tokens.weight")),
        ("decoder", "projection/weight") => whole(HF_PROJ_OUT.to_string()),
        _ => None,
    }
}

/// `gamma` -> `weight`, `beta` -> `bias` (the last path component of a layer-norm variable).
fn norm_param(ct2_rest: &str) -> Option<&'static str> {
    match ct2_rest.rsplit('/').next()? {
        "gamma" => Some("weight"),
        "beta" => Some("bias"),
        _ => None,
    }
}

/// Targets for `inner`, the part of a name after `layer_N/`.
fn layer_targets(is_decoder: bool, prefix: &str, inner: &str) -> Option<Vec<Target>> {
    let (module, param) = inner.rsplit_once('/')?;
    let whole = |hf: String| Some(vec![Target::Tensor { hf, chunk: Chunk::WHOLE }]);
    if module.ends_with("layer_norm") {
        let hf_param = norm_param(param)?;
        let hf_module = match module {
            "self_attention/layer_norm" => "self_attn_layer_norm",
            "attention/layer_norm" if is_decoder => "encoder_attn_layer_norm",
            "ffn/layer_norm" => "final_layer_norm",
            _ => return None,
        };
        return whole(format!("{prefix}.{hf_module}.{hf_param}"));
    }
    if param != "weight" && param != "bias" {
        return None;
    }
    match module {
        "self_attention/linear_0" => fused(prefix, "self_attn", &["q_proj", "k_proj", "v_proj"], param),
        "self_attention/linear_1" => whole(format!("{prefix}.self_attn.out_proj.{param}")),
        "attention/linear_0" if is_decoder => whole(format!("{prefix}.encoder_attn.q_proj.{param}")),
        "attention/linear_1" if is_decoder => fused(prefix, "encoder_attn", &["k_proj", "v_proj"], param),
        "attention/linear_2" if is_decoder => whole(format!("{prefix}.encoder_attn.out_proj.{param}")),
        "ffn/linear_0" => whole(format!("{prefix}.fc1.{param}")),
        "ffn/linear_1" => whole(format!("{prefix}.fc2.{param}")),
        _ => None,
    }
}

/// Split a fused projection into its parts; the `k_proj` bias becomes a [`Target::ZeroBias`].
fn fused(prefix: &str, attn: &str, parts: &[&str], param: &str) -> Option<Vec<Target>> {
    let count = parts.len();
    Some(
        parts
            .iter()
            .enumerate()
            .map(|(index, part)| {
                let hf = format!("{prefix}.{attn}.{part}.{param}");
                let chunk = Chunk { index, count };
                if *part == "k_proj" && param == "bias" {
                    Target::ZeroBias { hf, chunk }
                } else {
                    Target::Tensor { hf, chunk }
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(hf: &str, index: usize, count: usize) -> Target {
        Target::Tensor { hf: hf.into(), chunk: Chunk { index, count } }
    }

    #[test]
    fn self_attention_fusion_splits_in_q_k_v_order_and_drops_the_k_bias() {
        let w = hf_targets("encoder/layer_2/self_attention/linear_0/weight").unwrap();
        assert_eq!(
            w,
            vec![
                tensor("model.encoder.layers.2.self_attn.q_proj.weight", 0, 3),
                tensor("model.encoder.layers.2.self_attn.k_proj.weight", 1, 3),
                tensor("model.encoder.layers.2.self_attn.v_proj.weight", 2, 3),
            ]
        );
        let b = hf_targets("decoder/layer_0/self_attention/linear_0/bias").unwrap();
        assert!(matches!(&b[1], Target::ZeroBias { hf, .. } if hf == "model.decoder.layers.0.self_attn.k_proj.bias"));
    }

    #[test]
    fn cross_attention_maps_k_v_fusion_and_only_exists_in_the_decoder() {
        let w = hf_targets("decoder/layer_3/attention/linear_1/weight").unwrap();
        assert_eq!(w[1], tensor("model.decoder.layers.3.encoder_attn.v_proj.weight", 1, 2));
        assert_eq!(hf_targets("encoder/layer_3/attention/linear_1/weight"), None);
    }

    #[test]
    fn layer_norms_and_top_level_names() {
        assert_eq!(
            hf_targets("decoder/layer_1/attention/layer_norm/gamma").unwrap()[0],
            tensor("model.decoder.layers.1.encoder_attn_layer_norm.weight", 0, 1)
        );
        assert_eq!(hf_targets("encoder/layer_norm/beta").unwrap()[0], tensor("model.encoder.layer_norm.bias", 0, 1));
        assert_eq!(
            hf_targets("encoder/position_encodings/encodings").unwrap()[0],
            tensor("model.encoder.embed_positions.weight", 0, 1)
        );
        assert_eq!(hf_targets("decoder/projection/weight").unwrap()[0], tensor(HF_PROJ_OUT, 0, 1));
        assert_eq!(hf_targets("decoder/num_heads"), None);
    }
}
