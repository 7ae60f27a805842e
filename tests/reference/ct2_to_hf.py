"""Independent reader for CTranslate2 Whisper `model.bin` -> transformers model.

Reads the CTranslate2 binary (format version 6 as written by
ctranslate2/specs/model_spec.py) without using ctranslate2 itself, rebuilds a
`WhisperForConditionalGeneration` state dict and loads it in float32 with
strict key checking.

Binary layout (all little-endian, no alignment padding):
    u32 binary_version
    str spec_name                 (str = u16 byte length incl. NUL, bytes, NUL)
    u32 spec_revision
    u32 num_variables
    num_variables x:
        str name
        u8  rank
        u32 dims[rank]
        u8  dtype id   (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16)
        u32 payload byte count
        payload
    u32 num_aliases
    num_aliases x: str alias, str target

Usage (CLI): python ct2_to_hf.py MODEL_DIR   -> prints a summary.
"""

import json
import os
import struct
import sys

import numpy as np

SUPPORTED_BINARY_VERSION = 6
CT2_ACTIVATION_GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU (erf form)
DTYPES = {
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
    # 5 (bfloat16) has no numpy dtype; not used by the fp16 Whisper models.
}


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated model.bin")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def string(self):
        length = self.u16()
        raw = self.take(length)
        if length == 0 or raw[-1] != 0:
            raise ValueError("string is not NUL-terminated")
        return raw[:-1].decode("utf-8")


def read_ct2_model(path):
    """Returns (spec_name, revision, variables: dict name -> np.ndarray, aliases)."""
    with open(path, "rb") as f:
        r = _Reader(f.read())
    version = r.u32()
    if version != SUPPORTED_BINARY_VERSION:
        raise ValueError(f"unsupported CT2 binary version {version}")
    spec = r.string()
    revision = r.u32()
    variables = {}
    for _ in range(r.u32()):
        name = r.string()
        rank = r.u8()
        shape = tuple(r.u32() for _ in range(rank))
        dtype_id = r.u8()
        nbytes = r.u32()
        if dtype_id not in DTYPES:
            raise ValueError(f"{name}: unsupported dtype id {dtype_id}")
        dtype = np.dtype(DTYPES[dtype_id])
        if nbytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ValueError(f"{name}: payload size {nbytes} does not match {shape} {dtype}")
        variables[name] = np.frombuffer(r.take(nbytes), dtype=dtype).reshape(shape).copy()
    aliases = {}
    for _ in range(r.u32()):
        alias = r.string()
        aliases[alias] = r.string()
    if r.pos != len(r.data):
        raise ValueError(f"{len(r.data) - r.pos} trailing bytes in model.bin")
    return spec, revision, variables, aliases


def _count_layers(variables, prefix):
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


def build_hf_state_dict(variables, aliases):
    """Maps CT2 Whisper variables to transformers WhisperForConditionalGeneration keys."""
    v = dict(variables)
    for alias, target in aliases.items():
        v[alias] = variables[target]

    def t(name):
        import torch

        return torch.from_numpy(v[name].astype(np.float32))

    sd = {}

    def linear(dst, src, bias=True):
        sd[f"{dst}.weight"] = t(f"{src}/weight")
        if bias:
            sd[f"{dst}.bias"] = t(f"{src}/bias")

    def layer_norm(dst, src):
        sd[f"{dst}.weight"] = t(f"{src}/gamma")
        sd[f"{dst}.bias"] = t(f"{src}/beta")

    def split_rows(name, parts):
        w = t(name)
        return list(w.chunk(parts, dim=0))

    def drop_key_bias(name, bk):
        # Whisper's key projections have no bias; CT2 stores zeros in the fused bias.
        if bk.abs().max().item() != 0.0:
            raise ValueError(f"{name}: non-zero key bias cannot be dropped")

    def attention_qkv(dst, src):
        # Fused [3D, D] self-attention projection in q, k, v order; k has no bias.
        wq, wk, wv = split_rows(f"{src}/linear_0/weight", 3)
        bq, bk, bv = split_rows(f"{src}/linear_0/bias", 3)
        drop_key_bias(f"{src}/linear_0/bias", bk)
        sd[f"{dst}.q_proj.weight"], sd[f"{dst}.q_proj.bias"] = wq, bq
        sd[f"{dst}.k_proj.weight"] = wk
        sd[f"{dst}.v_proj.weight"], sd[f"{dst}.v_proj.bias"] = wv, bv
        linear(f"{dst}.out_proj", f"{src}/linear_1")

    def cross_attention(dst, src):
        # Query [D, D] in linear_0, fused [2D, D] key/value in linear_1.
        linear(f"{dst}.q_proj", f"{src}/linear_0")
        wk, wv = split_rows(f"{src}/linear_1/weight", 2)
        bk, bv = split_rows(f"{src}/linear_1/bias", 2)
        drop_key_bias(f"{src}/linear_1/bias", bk)
        sd[f"{dst}.k_proj.weight"] = wk
        sd[f"{dst}.v_proj.weight"], sd[f"{dst}.v_proj.bias"] = wv, bv
        linear(f"{dst}.out_proj", f"{src}/linear_2")

    def ffn(dst, src):
        linear(f"{dst}.fc1", f"{src}/linear_0")
        linear(f"{dst}.fc2", f"{src}/linear_1")
        layer_norm(f"{dst}.final_layer_norm", f"{src}/layer_norm")

    enc, dec = "model.encoder", "model.decoder"
    linear(f"{enc}.conv1", "encoder/conv1")
    linear(f"{enc}.conv2", "encoder/conv2")
    sd[f"{enc}.embed_positions.weight"] = t("encoder/position_encodings/encodings")
    layer_norm(f"{enc}.layer_norm", "encoder/layer_norm")
    for i in range(_count_layers(v, "encoder")):
        src, dst = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        attention_qkv(f"{dst}.self_attn", f"{src}/self_attention")
        layer_norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        ffn(dst, f"{src}/ffn")

    sd[f"{dec}.embed_tokens.weight"] = t("decoder/embeddings/weight")
    sd[f"{dec}.embed_positions.weight"] = t("decoder/position_encodings/encodings")
    layer_norm(f"{dec}.layer_norm", "decoder/layer_norm")
    for i in range(_count_layers(v, "decoder")):
        src, dst = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        attention_qkv(f"{dst}.self_attn", f"{src}/self_attention")
        layer_norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        cross_attention(f"{dst}.encoder_attn", f"{src}/attention")
        layer_norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        ffn(dst, f"{src}/ffn")
    return sd


def build_hf_config(variables):
    from transformers import WhisperConfig

    d_model = variables["encoder/conv2/weight"].shape[0]
    n_mels = variables["encoder/conv1/weight"].shape[1]
    return WhisperConfig(
        vocab_size=variables["decoder/embeddings/weight"].shape[0],
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=_count_layers(variables, "encoder"),
        decoder_layers=_count_layers(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        # Suppression is done explicitly by make_whisper_reference.py.
        suppress_tokens=None,
        begin_suppress_tokens=None,
    )


def check_ct2_hyperparameters(variables):
    """Fails if the CT2 spec uses options this converter does not model."""
    expected_scalars = {
        "decoder/activation": CT2_ACTIVATION_GELU,
        "decoder/scale_embeddings": 0,
        "decoder/pre_norm": 1,
        "decoder/alibi": 0,
        "decoder/start_from_zero_embedding": 0,
    }
    for name, want in expected_scalars.items():
        if name in variables and int(variables[name]) != want:
            raise ValueError(f"{name} = {variables[name]} (expected {want})")


def load_whisper_from_ct2(model_dir):
    """Returns (WhisperForConditionalGeneration in fp32 eval mode, raw CT2 variables)."""
    import torch
    from transformers import WhisperForConditionalGeneration

    _spec, _rev, variables, aliases = read_ct2_model(os.path.join(model_dir, "model.bin"))
    check_ct2_hyperparameters(variables)
    config = build_hf_config(variables)
    model = WhisperForConditionalGeneration(config).to(torch.float32)
    sd = build_hf_state_dict(variables, aliases)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    allowed_missing = {"proj_out.weight"}  # tied to model.decoder.embed_tokens.weight
    if set(missing) - allowed_missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    if not torch.equal(model.proj_out.weight, sd["model.decoder.embed_tokens.weight"]):
        raise RuntimeError("proj_out is not tied to embed_tokens")
    # CT2 stores an output projection; it must equal the embedding (tied in Whisper).
    if "decoder/projection/weight" in variables or "decoder/projection/weight" in aliases:
        proj = aliases.get("decoder/projection/weight", "decoder/projection/weight")
        if not np.array_equal(variables[proj], variables["decoder/embeddings/weight"]):
            raise RuntimeError("CT2 projection differs from embeddings")
    model.eval()
    return model, variables


def main():
    model_dir = sys.argv[1]
    spec, rev, variables, aliases = read_ct2_model(os.path.join(model_dir, "model.bin"))
    print(f"spec={spec} revision={rev} variables={len(variables)} aliases={aliases}")
    for name, arr in variables.items():
        print(f"  {name:60s} {str(arr.dtype):8s} {arr.shape}" + (f" = {arr.tolist()}" if arr.size <= 4 else ""))
    if len(sys.argv) > 2 and sys.argv[2] == "--load":
        model, _ = load_whisper_from_ct2(model_dir)
        print(json.dumps(model.config.to_diff_dict(), indent=1, default=str)[:2000])


if __name__ == "__main__":
    main()
