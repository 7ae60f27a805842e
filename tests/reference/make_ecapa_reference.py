"""Reference SpeechBrain ECAPA-TDNN speaker embeddings for Scribe's engine/models/ecapa
(tests/ecapa_reference.rs, tests/cuda_ecapa.rs).

What: SpeechBrain 1.1.2's own pretrained interface, `SpeakerRecognition.from_hparams` on a model
directory laid out as `speechbrain/spkrec-ecapa-voxceleb` is (`hyperparams.yaml` +
`embedding_model.ckpt`), and its `encode_batch(wavs, wav_lens, normalize=False)` — what
`verify_batch` computes: `compute_features` (`lobes/features.py` `Fbank`), `mean_var_norm`
(`processing/features.py` `InputNormalization(norm_type="sentence", std_norm=False)`) with the
relative lengths, then `embedding_model` (`lobes/models/ECAPA_TDNN.py` `ECAPA_TDNN`) with them.
`mean_var_norm_emb` is not applied (`verify_batch` passes `normalize=False`).

The real checkpoint (20.8 M parameters, 83 MB) is not used: small ECAPA_TDNNs are built by
hyperpyyaml from the `hyperparams.yaml` written here (the published file's layout, smaller sizes),
randomly initialised (seed 0; batch norm affine parameters and running statistics drawn at random
too), their state dicts saved with `torch.save` as `embedding_model.ckpt` (what SpeechBrain's
checkpointer writes) and, for `small`, also as `model.safetensors`; then loaded back through
`SpeakerRecognition.from_hparams` (its `Pretrainer`), so the checkpoint is the one SpeechBrain
reads.

Variants (directories under data/ecapa/):
- `small`: the published front end (80 mels), channels [24, 32, 32, 32, 96] (the first SE-Res2Net
  block has a `shortcut` conv, 24 -> 32), kernels [5, 3, 3, 3, 1], dilations [1, 2, 3, 4, 1],
  res2net_scale 8 (as published), se_channels 16, attention_channels 16, lin_neurons 24, global
  context on: every block type, every dilation, SE, MFA, attentive statistics pooling.
- `nogc`: Fbank(n_mels=40, f_min=20, f_max=7600), channels [16, 16, 16, 16, 48], kernels
  [3, 3, 3, 3, 1], dilations [1, 2, 2, 3, 1], groups [1, 2, 2, 2, 1], res2net_scale 4,
  se_channels 8, attention_channels 8, lin_neurons 12, global_context False: the options read
  from the yaml.

Cases: crops of the native 16 kHz recordings in ../shared/data/speech/ (`soundfile`, float32 =
int16 / 32768; only file, range and sum are stored, the Rust test decodes them itself), one at
a time (`wav_lens` = [1.0], as `verify_files` does) and as padded batches (zeros after the
shorter items, `wav_lens = len / max_len` computed as SpeechBrain's `PaddedBatch` does: Python
float division, then a float32 tensor). SpeechBrain's padded batch is not the items one by one
(the convolutions of the last valid frames see the padding, and the frame count of an item
differs by at most one): both are stored. `min_num_samples`: the shortest input the full-size
published model (random weights) embeds without raising (a binary search as pyannote's
`min_num_samples`; the reflect padding of the widest "same" conv needs more frames than it
pads).

Features: the published front end (`real_hyperparams.yaml`'s `compute_features`,
`Fbank(n_mels=80)`: the real model's, which has no weights) on one crop in float32 (`fbank`),
the same SpeechBrain code run in float64 (`fbank64`: the signal, STFT, filter matrix and dB in
float64, the window and filter centres/widths being the float32 values SpeechBrain computes;
its float32 run differs from it by up to ~6e-4 dB in low bins), and after the sentence mean
normalisation (`feats`). Embeddings also in float64 (`embedding64.*`) to show torch's own
float32 error.

Output: tests/reference/data/ecapa/{small/{hyperparams.yaml, embedding_model.ckpt,
model.safetensors}, nogc/{hyperparams.yaml, embedding_model.ckpt}, real_hyperparams.yaml,
reference.safetensors, manifest.json}.

Versions: tests/reference/requirements-ecapa.txt. Regenerate from the repository root:
    python3 -m venv .cache/ecapavenv
    .cache/ecapavenv/bin/pip install -r tests/reference/requirements-ecapa.txt
    .cache/ecapavenv/bin/python tests/reference/make_ecapa_reference.py
"""
import json
import pathlib
import tempfile
import warnings

import numpy as np
import safetensors
import soundfile
import torch
import torchaudio
from safetensors.numpy import save_file

warnings.filterwarnings("ignore")
import speechbrain  # noqa: E402
from hyperpyyaml import load_hyperpyyaml  # noqa: E402
from speechbrain.inference.speaker import SpeakerRecognition  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEECH = pathlib.Path("../shared/data/speech")  # relative to the repository root
OUT = ROOT / "tests/reference/data/ecapa"
SAMPLE_RATE = 16000
SEED = 0

# The published `speechbrain/spkrec-ecapa-voxceleb` hyperparams.yaml: its layout and every value
# Scribe reads (feature, normalisation and embedding blocks); the hub was not reachable from here,
# so this is written from SpeechBrain's recipe (recipes/VoxCeleb/SpeakerRec/hparams/
# verification_ecapa.yaml) and the model card, not downloaded.
REAL_HYPERPARAMS = """\
# ############################################################################
# Model: ECAPA big for Speaker verification
# ############################################################################

# Feature parameters
n_mels: 80

# Pretrain folder (HuggingFace)
pretrained_path: speechbrain/spkrec-ecapa-voxceleb

# Output parameters
out_n_neurons: 7205

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [1024, 1024, 1024, 1024, 3072]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 128
    lin_neurons: 192

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: 192
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder


pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

# The small models' hyperparams.yaml: the published layout (a Pretrainer loading only
# embedding_model.ckpt: the classifier and mean_var_norm_emb are not shipped), smaller sizes.
SMALL_HYPERPARAMS = """\
# ############################################################################
# Model: a small random ECAPA-TDNN in the layout of speechbrain/spkrec-ecapa-voxceleb
# (Scribe's tests/reference/make_ecapa_reference.py, seed 0; not a trained model)
# ############################################################################

# Feature parameters
n_mels: {n_mels}

# Pretrain folder (overridden with the directory when loaded)
pretrained_path: scribe/ecapa-{name}-random

# Output parameters
out_n_neurons: 4

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>{fbank_extra}

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: {kernel_sizes}
    dilations: {dilations}
    attention_channels: {attention_channels}
    lin_neurons: {lin_neurons}{model_extra}

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {lin_neurons}
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
"""

VARIANTS = {
    "small": dict(
        n_mels=80,
        fbank_extra="",
        channels=[24, 32, 32, 32, 96],
        kernel_sizes=[5, 3, 3, 3, 1],
        dilations=[1, 2, 3, 4, 1],
        attention_channels=16,
        lin_neurons=24,
        model_extra="\n    res2net_scale: 8\n    se_channels: 16",
    ),
    "nogc": dict(
        n_mels=40,
        fbank_extra="\n    f_min: 20\n    f_max: 7600",
        channels=[16, 16, 16, 16, 48],
        kernel_sizes=[3, 3, 3, 3, 1],
        dilations=[1, 2, 2, 3, 1],
        attention_channels=8,
        lin_neurons=12,
        model_extra="\n    res2net_scale: 4\n    se_channels: 8\n    global_context: False\n    groups: [1, 2, 2, 2, 1]",
    ),
}


def read_crop(file, start, length):
    audio, sr = soundfile.read(str(ROOT / SPEECH / file), dtype="float32")
    assert sr == SAMPLE_RATE and audio.ndim == 1, (file, sr, audio.shape)
    crop = audio[start : start + length]
    assert len(crop) == length, (file, start, length, len(audio))
    return crop


def randomise(model):
    torch.manual_seed(SEED)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, torch.nn.Conv1d):
                torch.nn.init.kaiming_uniform_(m.weight, a=5**0.5)
                m.bias.normal_(0.0, 0.1)


def write_variant(name, spec):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    text = SMALL_HYPERPARAMS.format(name=name, **{k: v for k, v in spec.items()})
    (d / "hyperparams.yaml").write_text(text)
    with open(d / "hyperparams.yaml") as f:
        hp = load_hyperpyyaml(f, overrides={"pretrained_path": str(d)})
    model = hp["embedding_model"].eval()
    randomise(model)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, str(d / "embedding_model.ckpt"))
    if name == "small":
        save_file({k: np.ascontiguousarray(v.numpy()) for k, v in state.items()}, str(d / "model.safetensors"))
    params = sum(v.numel() for k, v in state.items() if v.dtype == torch.float32)
    return d, params


def load_interface(d, savedir):
    return SpeakerRecognition.from_hparams(
        source=str(d), savedir=savedir, overrides={"pretrained_path": str(d)}, run_opts={"device": "cpu"}
    )


def relative_lengths(lengths):
    m = max(lengths)
    return torch.tensor([n / m for n in lengths])  # float32, as PaddedBatch


def pad(rows):
    m = max(len(r) for r in rows)
    return torch.from_numpy(np.stack([np.pad(r, (0, m - len(r))) for r in rows]))


def fbank64(fbank, wavs):
    """SpeechBrain's own Fbank code in float64 (its window and filter tensors converted)."""
    stft, fb = fbank.compute_STFT, fbank.compute_fbanks
    window, freqs, central, band = stft.window, fb.all_freqs_mat, fb.f_central, fb.band
    stft.window = window.double()
    fb.all_freqs_mat, fb.f_central, fb.band = freqs.double(), central.double(), band.double()
    try:
        return fbank(wavs.double())
    finally:
        stft.window, fb.all_freqs_mat, fb.f_central, fb.band = window, freqs, central, band


def embed64(sr, wavs, wav_lens):
    feats = fbank64(sr.mods.compute_features, wavs)
    feats = sr.mods.mean_var_norm(feats, wav_lens.double())
    model64 = sr.mods.embedding_model.double()
    try:
        return model64(feats, wav_lens.double())
    finally:
        sr.mods.embedding_model.float()


def min_num_samples(model, feats_of):
    lower, upper = 2, SAMPLE_RATE // 2
    middle = (lower + upper) // 2
    with torch.inference_mode():
        while lower + 1 < upper:
            try:
                model(feats_of(torch.randn(1, middle)), torch.ones(1))
                upper = middle
            except Exception:
                lower = middle
            middle = (lower + upper) // 2
    return upper


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    (OUT / "real_hyperparams.yaml").write_text(REAL_HYPERPARAMS)
    with open(OUT / "real_hyperparams.yaml") as f:
        real = load_hyperpyyaml(f)
    real_fbank, real_norm = real["compute_features"], real["mean_var_norm"]

    # name -> list of (file, start, length); a list of several is one padded batch.
    singles = {
        "spk1_snt2_3s": ("spk1_snt2.wav", 1600, 48000),
        "spk2_snt3_1s7": ("spk2_snt3.wav", 800, 27200),
        "two_speakers_4s": ("two_speakers.wav", 16000 * 20, 64000),
        # An odd length: 1 + 16001 // 160 = 101 frames, the last one mostly padding.
        "spk1_snt5_odd": ("spk1_snt5.wav", 3000, 16001),
        # Six frames: the reflect padding of the widest conv (4) needs five.
        "spk2_snt1_800": ("spk2_snt1.wav", 8000, 800),
    }
    batches = {
        "batch_padded": [
            ("spk1_snt4.wav", 0, 40000),
            ("spk2_snt1.wav", 1000, 27200),
            ("two_speakers.wav", 16000 * 5, 14500),
            ("spk1_snt6.wav", 200, 36001),
        ],
        "batch_equal": [("spk1_snt1.wav", 0, 28000), ("spk2_snt2.wav", 0, 28000)],
    }
    fbank_crop = ("spk1_snt2.wav", 8000, 24000)

    tensors = {}
    manifest = {
        "generator": "tests/reference/make_ecapa_reference.py",
        "versions": {
            "torch": torch.__version__,
            "torchaudio": torchaudio.__version__,
            "speechbrain": speechbrain.__version__,
            "numpy": np.__version__,
            "soundfile": soundfile.__version__,
            "safetensors": safetensors.__version__,
        },
        "seed": SEED,
        "speech_dir": str(SPEECH),
        "variants": {},
    }

    # Features of the published front end on one crop.
    crop = read_crop(*fbank_crop)
    x = torch.from_numpy(crop).unsqueeze(0)
    with torch.inference_mode():
        fb32 = real_fbank(x)
        fb64 = fbank64(real_fbank, x)
        feats = real_norm(fb32, torch.ones(1))
    tensors["fbank"] = fb32[0].numpy()
    tensors["fbank64"] = fb64[0].float().numpy()
    tensors["feats"] = feats[0].numpy()
    manifest["fbank_crop"] = {
        "file": fbank_crop[0],
        "start": fbank_crop[1],
        "length": fbank_crop[2],
        "sum": float(crop.astype(np.float64).sum()),
        "frames": int(fb32.shape[1]),
        "float32_vs_float64_max_abs": float((fb32.double() - fb64).abs().max()),
    }
    print(f"fbank {tuple(fb32.shape)}: torch float32 vs float64 max |d| {manifest['fbank_crop']['float32_vs_float64_max_abs']:.2e} dB")

    # The full-size published model: its parameter count and shortest input.
    real_model = real["embedding_model"].eval()
    manifest["real_parameters"] = sum(p.numel() for p in real_model.parameters())
    manifest["real_state_dict_floats"] = sum(
        1 for v in real_model.state_dict().values() if v.dtype == torch.float32
    )
    manifest["min_num_samples"] = min_num_samples(real_model, lambda w: real_norm(real_fbank(w), torch.ones(1)))
    print(f"published model: {manifest['real_parameters']} parameters, min_num_samples {manifest['min_num_samples']}")
    del real_model, real

    for name, spec in VARIANTS.items():
        d, params = write_variant(name, spec)
        with tempfile.TemporaryDirectory() as savedir:
            sr = load_interface(d, savedir)
            sr.eval()
            cases = []

            def run(case_name, items):
                rows = [read_crop(*it) for it in items]
                lengths = [len(r) for r in rows]
                wavs, wav_lens = pad(rows), relative_lengths(lengths)
                with torch.inference_mode():
                    emb = sr.encode_batch(wavs, wav_lens, normalize=False)[:, 0, :]
                    emb64 = embed64(sr, wavs, wav_lens)[:, 0, :]
                    alone = torch.cat(
                        [sr.encode_batch(torch.from_numpy(r).unsqueeze(0), normalize=False)[:, 0, :] for r in rows]
                    )
                assert torch.isfinite(emb).all(), case_name
                tensors[f"{name}.embedding.{case_name}"] = emb.numpy()
                tensors[f"{name}.embedding64.{case_name}"] = emb64.float().numpy()
                entry = {
                    "name": case_name,
                    "inputs": [
                        {"file": f, "start": s, "length": n, "sum": float(r.astype(np.float64).sum())}
                        for (f, s, n), r in zip(items, rows)
                    ],
                    "wav_lens": wav_lens.tolist(),
                    "frames": 1 + max(lengths) // 160,
                    "float32_vs_float64_max_abs": float((emb.double() - emb64).abs().max()),
                }
                if len(rows) > 1:
                    tensors[f"{name}.alone.{case_name}"] = alone.numpy()
                    entry["batched_vs_alone_max_abs"] = float((emb - alone).abs().max())
                cases.append(entry)
                print(
                    f"{name} {case_name:18s} B={len(rows)} N={max(lengths)} range {emb.min():.3f}..{emb.max():.3f} "
                    f"|f32-f64| {entry['float32_vs_float64_max_abs']:.2e}"
                    + (f" batched-vs-alone {entry['batched_vs_alone_max_abs']:.2e}" if len(rows) > 1 else "")
                )

            for case_name, item in singles.items():
                run(case_name, [item])
            for case_name, items in batches.items():
                run(case_name, items)
        manifest["variants"][name] = {"spec": spec, "parameters": params, "cases": cases}

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(OUT / "reference.safetensors"))
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = 0
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            total += p.stat().st_size
            print(f"{p.relative_to(ROOT)}: {p.stat().st_size / 1e3:.0f} kB")
    print(f"total {total / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
