"""CTranslate2 Whisper `model.bin` -> openai-whisper model / checkpoint.

Reuses ct2_to_hf.py's independent reader (no ctranslate2 import) and maps the
CT2 variables to openai-whisper's parameter names (whisper/model.py):

    encoder.conv1/conv2, encoder.positional_embedding (buffer),
    encoder.blocks.N.{attn.{query,key,value,out}, attn_ln, mlp.0, mlp.2, mlp_ln},
    encoder.ln_post,
    decoder.token_embedding, decoder.positional_embedding,
    decoder.blocks.N.{attn..., attn_ln, cross_attn.{query,key,value,out},
                      cross_attn_ln, mlp.0, mlp.2, mlp_ln},
    decoder.ln

The model is built with `whisper.model.Whisper(dims)` and loaded with
`load_state_dict(strict=True)` in float32. The alignment heads are set from the
CT2 `config.json` `alignment_heads` list ([layer, head] pairs).

Usage (CLI):
    python ct2_to_openai.py MODEL_DIR [OUT.pt]
prints a summary, cross-checks the encoder against the transformers model of
ct2_to_hf.py on one log-mel, and optionally saves an openai checkpoint
`{"dims": ..., "model_state_dict": ...}` loadable by `whisper.load_model(OUT.pt)`.
"""

import base64
import dataclasses
import gzip
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ct2_to_hf import _count_layers, check_ct2_hyperparameters, read_ct2_model  # noqa: E402


def build_openai_dims(variables):
    from whisper.model import ModelDimensions

    return ModelDimensions(
        n_mels=int(variables["encoder/conv1/weight"].shape[1]),
        n_audio_ctx=int(variables["encoder/position_encodings/encodings"].shape[0]),
        n_audio_state=int(variables["encoder/conv2/weight"].shape[0]),
        n_audio_head=int(variables["encoder/num_heads"]),
        n_audio_layer=_count_layers(variables, "encoder"),
        n_vocab=int(variables["decoder/embeddings/weight"].shape[0]),
        n_text_ctx=int(variables["decoder/position_encodings/encodings"].shape[0]),
        n_text_state=int(variables["decoder/embeddings/weight"].shape[1]),
        n_text_head=int(variables["decoder/num_heads"]),
        n_text_layer=_count_layers(variables, "decoder"),
    )


def build_openai_state_dict(variables, aliases):
    """Maps CT2 Whisper variables to openai-whisper `Whisper` state-dict keys."""
    import torch

    v = dict(variables)
    for alias, target in aliases.items():
        v[alias] = variables[target]

    def t(name):
        return torch.from_numpy(np.ascontiguousarray(v[name].astype(np.float32)))

    sd = {}

    def linear(dst, src):
        sd[f"{dst}.weight"] = t(f"{src}/weight")
        sd[f"{dst}.bias"] = t(f"{src}/bias")

    def layer_norm(dst, src):
        sd[f"{dst}.weight"] = t(f"{src}/gamma")
        sd[f"{dst}.bias"] = t(f"{src}/beta")

    def check_zero_key_bias(name, bk):
        # openai's key projections have no bias; CT2 stores zeros in the fused bias.
        if bk.abs().max().item() != 0.0:
            raise ValueError(f"{name}: non-zero key bias cannot be dropped")

    def self_attention(dst, src):
        # Fused [3D, D] projection, q, k, v order.
        wq, wk, wv = t(f"{src}/linear_0/weight").chunk(3, dim=0)
        bq, bk, bv = t(f"{src}/linear_0/bias").chunk(3, dim=0)
        check_zero_key_bias(f"{src}/linear_0/bias", bk)
        sd[f"{dst}.query.weight"], sd[f"{dst}.query.bias"] = wq.contiguous(), bq.contiguous()
        sd[f"{dst}.key.weight"] = wk.contiguous()
        sd[f"{dst}.value.weight"], sd[f"{dst}.value.bias"] = wv.contiguous(), bv.contiguous()
        linear(f"{dst}.out", f"{src}/linear_1")

    def cross_attention(dst, src):
        # Query in linear_0, fused [2D, D] key/value in linear_1, output in linear_2.
        linear(f"{dst}.query", f"{src}/linear_0")
        wk, wv = t(f"{src}/linear_1/weight").chunk(2, dim=0)
        bk, bv = t(f"{src}/linear_1/bias").chunk(2, dim=0)
        check_zero_key_bias(f"{src}/linear_1/bias", bk)
        sd[f"{dst}.key.weight"] = wk.contiguous()
        sd[f"{dst}.value.weight"], sd[f"{dst}.value.bias"] = wv.contiguous(), bv.contiguous()
        linear(f"{dst}.out", f"{src}/linear_2")

    def block(dst, src, cross):
        self_attention(f"{dst}.attn", f"{src}/self_attention")
        layer_norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        if cross:
            cross_attention(f"{dst}.cross_attn", f"{src}/attention")
            layer_norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        layer_norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = t("encoder/position_encodings/encodings")
    for i in range(_count_layers(v, "encoder")):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    layer_norm("encoder.ln_post", "encoder/layer_norm")

    sd["decoder.token_embedding.weight"] = t("decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = t("decoder/position_encodings/encodings")
    for i in range(_count_layers(v, "decoder")):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    layer_norm("decoder.ln", "decoder/layer_norm")
    return sd


def alignment_heads_dump(heads, n_text_layer, n_text_head):
    """[layer, head] pairs -> the gzip+base85 bool array of `Whisper.set_alignment_heads`."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def load_openai_whisper_from_ct2(model_dir):
    """Returns (whisper.model.Whisper in fp32 eval mode, checkpoint dict, info dict)."""
    import torch
    from whisper.model import Whisper

    _spec, _rev, variables, aliases = read_ct2_model(os.path.join(model_dir, "model.bin"))
    check_ct2_hyperparameters(variables)
    # CT2 may store a separate output projection; Whisper ties it to the embedding.
    if "decoder/projection/weight" in variables:
        if not np.array_equal(variables["decoder/projection/weight"], variables["decoder/embeddings/weight"]):
            raise RuntimeError("CT2 projection differs from embeddings")
    dims = build_openai_dims(variables)
    sd = build_openai_state_dict(variables, aliases)
    model = Whisper(dims).to(torch.float32)
    model.load_state_dict(sd, strict=True)
    model.eval()

    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    heads = config["alignment_heads"]
    dump = alignment_heads_dump(heads, dims.n_text_layer, dims.n_text_head)
    model.set_alignment_heads(dump)
    got = model.alignment_heads.to_dense().nonzero().tolist()
    if sorted(got) != sorted(list(map(list, heads))):
        raise RuntimeError(f"alignment heads {got} != config {heads}")

    # The encoder's positional embedding is a fixed sinusoid in openai-whisper;
    # CT2 stores it as a tensor. Record how far it is from openai's sinusoids().
    from whisper.model import sinusoids

    pos_dev = float((sd["encoder.positional_embedding"] - sinusoids(dims.n_audio_ctx, dims.n_audio_state)).abs().max())
    info = {
        "dims": dataclasses.asdict(dims),
        "alignment_heads": [list(h) for h in heads],
        "alignment_heads_b85": dump.decode("ascii"),
        "encoder_positional_vs_sinusoids_max_abs": pos_dev,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
    }
    checkpoint = {"dims": dataclasses.asdict(dims), "model_state_dict": sd}
    return model, checkpoint, info


def encoder_cross_check(model_dir, model, audio):
    """Max abs difference of openai vs transformers encoder output on the openai log-mel."""
    import torch
    import whisper
    from ct2_to_hf import load_whisper_from_ct2

    hf, _ = load_whisper_from_ct2(model_dir)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)), model.dims.n_mels)
    with torch.no_grad():
        a = model.embed_audio(mel[None])
        b = hf.model.encoder(mel[None]).last_hidden_state
    return float((a - b).abs().max())


def main():
    import soundfile
    import torch

    torch.set_num_threads(2)
    model_dir = sys.argv[1]
    model, checkpoint, info = load_openai_whisper_from_ct2(model_dir)
    print(json.dumps(info, indent=1))
    audio, sr = soundfile.read("/work/shared/data/speech/two_speakers.wav", dtype="float32")
    assert sr == 16000
    diff = encoder_cross_check(model_dir, model, audio)
    print(f"encoder openai vs transformers max abs: {diff:.3e}")
    if diff > 1e-3:
        sys.exit("encoder cross-check failed")
    if len(sys.argv) > 2:
        torch.save(checkpoint, sys.argv[2])
        print("saved", sys.argv[2])


if __name__ == "__main__":
    main()
