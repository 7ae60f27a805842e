"""Reference WeSpeaker ResNet34 speaker embeddings for Scribe's engine/models/wespeaker
(tests/wespeaker_reference.rs, tests/cuda_wespeaker.rs).

What: pyannote.audio 4.0.7's own `WeSpeakerResNet34` (`models/embedding/wespeaker/__init__.py`),
its `forward(waveforms, weights)` run as the pipeline's `PyannoteAudioPretrainedSpeakerEmbedding`
runs it: Kaldi fbank of `waveform * 2**15` minus its time mean, the ResNet, `TSTP` statistics
pooling (`models/blocks/pooling.py` `StatsPool`: weights nearest-interpolated to the ResNet's frame
count with `F.interpolate(mode="nearest")`, weighted mean and unbiased std) and `seg_1`.

The real checkpoint (`pyannote/wespeaker-voxceleb-resnet34-LM`, 6.6 M parameters, 26 MB) is gated
and not used. `WeSpeakerResNet34.__init__` hardcodes `ResNet34(num_mel_bins, 256, ...)`, i.e.
`m_channels=32`, so the class is built as it is and its `resnet` attribute is replaced by a small
`resnet.ResNet(BasicBlock, [3, 4, 6, 3], m_channels=M_CHANNELS, feat_dim=80,
embed_dim=EMBED_DIM, pooling_func="TSTP", two_emb_layer=False)` from the same `resnet.py`: the
ResNet34 layout (3, 4, 6, 3 basic blocks, widths m, 2m, 4m, 8m) with fewer channels, randomly
initialised (seed 0), batch norm affine parameters and running statistics drawn at random too so
that folding them is tested. A full-size case would need the 26 MB weights: skipped.

Weights are saved twice, with the state dict's own names (`resnet.conv1.weight`, ...):
`model.safetensors` and `pytorch_model.bin`, a `torch.save` of a PyTorch Lightning-style checkpoint
(`state_dict`, `hyper_parameters`, `pyannote.audio` versions/architecture, `epoch`, ...) as pyannote
writes `pytorch_model.bin` on the Hugging Face hub, read by Scribe's restricted unpickler.

Cases (`cases` in manifest.json): crops of the native 16 kHz recordings in ../shared/data/speech/
(`soundfile`, float32 = int16 / 32768; only file, range, sum and sha256 are stored, the Rust
test decodes them itself) and synthetic waveforms (stored); weights none, soft, all-zero, partial,
a mask length equal to, twice smaller than (PyTorch's exact ×2 path) and different from the
ResNet's frame count (589 segmentation frames over a 10 s window, as the diarization pipeline
passes them). Each case also runs in float64 (`embedding64.<case>`) to show PyTorch's own float32
error. One case stores the pre-pooling features (`frames.<case>`, `forward_frames` rearranged as
TSTP does, [B, 8m·10, T']).

`min_num_samples`: `PyannoteAudioPretrainedSpeakerEmbedding.min_num_samples`'s binary search
(pipelines/speaker_verification.py), run on the full-size `WeSpeakerResNet34()`.

Output: tests/reference/data/wespeaker/{model.safetensors, pytorch_model.bin, reference.safetensors,
manifest.json}.

Versions: tests/reference/requirements-diarize.txt in .cache/alignvenv. Regenerate from the
repository root:
    .cache/alignvenv/bin/python tests/reference/make_wespeaker_reference.py
"""
import hashlib
import json
import pathlib
import warnings

import numpy as np
import safetensors
import soundfile
import torch
import torchaudio
from safetensors.numpy import save_file

warnings.filterwarnings("ignore")
import pyannote.audio  # noqa: E402
from pyannote.audio.models.embedding.wespeaker import WeSpeakerResNet34  # noqa: E402
from pyannote.audio.models.embedding.wespeaker.resnet import BasicBlock, ResNet  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEECH = pathlib.Path("../shared/data/speech")  # relative to the repository root
OUT = ROOT / "tests/reference/data/wespeaker"
SAMPLE_RATE = 16000
M_CHANNELS = 4
EMBED_DIM = 32
SEED = 0


def read_crop(file, start, length):
    audio, sr = soundfile.read(str(ROOT / SPEECH / file), dtype="float32")
    assert sr == SAMPLE_RATE and audio.ndim == 1, (file, sr, audio.shape)
    crop = audio[start : start + length]
    assert len(crop) == length, (file, start, length, len(audio))
    return crop


def fbank_frames(n):
    return 1 + (n - 400) // 160


def resnet_frames(n):
    t = fbank_frames(n)
    for _ in range(3):
        t = (t - 1) // 2 + 1
    return t


def build_model():
    torch.manual_seed(SEED)
    model = WeSpeakerResNet34()
    model.resnet = ResNet(
        BasicBlock,
        [3, 4, 6, 3],
        m_channels=M_CHANNELS,
        feat_dim=80,
        embed_dim=EMBED_DIM,
        pooling_func="TSTP",
        two_emb_layer=False,
    )
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, torch.nn.Linear):
                m.bias.normal_(0.0, 0.1)
    return model.eval()


def min_num_samples():
    """pyannote's `PyannoteAudioPretrainedSpeakerEmbedding.min_num_samples`, verbatim."""
    model = WeSpeakerResNet34().eval()
    with torch.inference_mode():
        lower, upper = 2, round(0.5 * SAMPLE_RATE)
        middle = (lower + upper) // 2
        while lower + 1 < upper:
            try:
                _ = model(torch.randn(1, 1, middle))
                upper = middle
            except Exception:
                lower = middle
            middle = (lower + upper) // 2
    return upper


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    model = build_model()
    model64 = build_model().double()

    t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    chirp = (0.3 * np.sin(2 * np.pi * (200 + 600 * t) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    synthetic = {
        # 1.37 s: 135 fbank frames -> 17 ResNet frames.
        "chirp_1s37": chirp[:21920],
        # The fewest samples pyannote embeds: one fbank frame, one ResNet frame.
        "noise_400": (0.1 * rng.standard_normal(400)).astype(np.float32),
        # 0.5 s of noise, 48 fbank frames -> 6 ResNet frames.
        "noise_0s5": (0.05 * rng.standard_normal(8000)).astype(np.float32),
    }

    w10 = 160000
    t10 = resnet_frames(w10)
    seg_frames = 589  # segmentation-3.0 frames over a 10 s window
    partial = np.zeros(seg_frames, np.float32)
    partial[100:350] = 1.0
    random_mask = (rng.random(seg_frames) < 0.4).astype(np.float32)
    t3 = resnet_frames(48000)
    t2 = resnet_frames(40320)
    assert t2 % 2 == 0, t2

    # name -> (inputs, weights or None); an input is ("file", start, length) or a synthetic name.
    cases = {
        # 3 s of one speaker, no weights: 298 fbank frames -> 38 ResNet frames.
        "spk1_snt2_3s": ([("spk1_snt2.wav", 1600, 48000)], None),
        # The diarization use: one 10 s window embedded for 3 local speakers (same waveform,
        # 589-frame masks onto 125 ResNet frames): partial, all zero, random.
        "two_speakers_10s_3masks": (
            [("two_speakers.wav", 16000 * 20, w10)] * 3,
            np.stack([partial, np.zeros(seg_frames, np.float32), random_mask]),
        ),
        # Two different 2.52 s crops (250 fbank frames -> 32 ResNet frames); soft weights with
        # exactly the ResNet's frame count (no interpolation), and a mask of half of it (the x2 path).
        "batch_spk1_soft": (
            [("spk1_snt4.wav", 0, 40320), ("spk1_snt5.wav", 1200, 40320)],
            rng.uniform(0.0, 1.0, (2, t2)).astype(np.float32),
        ),
        "batch_spk1_half_mask": (
            [("spk1_snt4.wav", 0, 40320), ("spk1_snt5.wav", 1200, 40320)],
            (rng.random((2, t2 // 2)) < 0.6).astype(np.float32),
        ),
        # Upsampling: 7 mask frames onto 38 ResNet frames.
        "two_speakers_3s_mask7": ([("two_speakers.wav", 80000, 48000)], np.array([[1, 0, 1, 1, 0, 0, 1]], np.float32)),
        "chirp_1s37": (["chirp_1s37"], None),
        "noise_400": (["noise_400"], np.ones((1, 1), np.float32)),
        "noise_0s5_mask": (["noise_0s5"], np.array([[0.0, 1.0, 1.0, 0.5, 0.0, 1.0, 1.0, 1.0, 0.0]], np.float32)),
    }
    frames_case = "spk1_snt2_3s"

    tensors = {f"waveform.{k}": v for k, v in synthetic.items()}
    manifest_cases = []
    hashes = {}
    for name, (inputs, weights) in cases.items():
        rows = []
        described = []
        for item in inputs:
            if isinstance(item, tuple):
                file, start, length = item
                crop = read_crop(file, start, length)
                rows.append(crop)
                described.append(
                    {"file": file, "start": start, "length": length, "sum": float(crop.astype(np.float64).sum())}
                )
                if file not in hashes:
                    hashes[file] = hashlib.sha256((ROOT / SPEECH / file).read_bytes()).hexdigest()
            else:
                rows.append(synthetic[item])
                described.append({"synthetic": item, "length": len(synthetic[item])})
        x = torch.from_numpy(np.stack(rows)).unsqueeze(1)  # [B, 1, N]
        w = None if weights is None else torch.from_numpy(weights)
        with torch.inference_mode():
            emb = model(x, weights=w)
            emb64 = model64(x.double(), weights=None if w is None else w.double())
            if name == frames_case:
                frames = model.resnet.forward_frames(model.compute_fbank(x))
                b, c, f, tt = frames.shape
                tensors[f"frames.{name}"] = np.ascontiguousarray(frames.reshape(b, c * f, tt).numpy())
        assert emb.shape == (len(rows), EMBED_DIM) and torch.isfinite(emb).all(), name
        tensors[f"embedding.{name}"] = np.ascontiguousarray(emb.numpy())
        tensors[f"embedding64.{name}"] = np.ascontiguousarray(emb64.float().numpy())
        if weights is not None:
            tensors[f"weights.{name}"] = np.ascontiguousarray(weights)
        err = float((emb.double() - emb64).abs().max())
        manifest_cases.append(
            {
                "name": name,
                "inputs": described,
                "batch": len(rows),
                "samples": len(rows[0]),
                "fbank_frames": fbank_frames(len(rows[0])),
                "resnet_frames": resnet_frames(len(rows[0])),
                "weights": None if weights is None else list(weights.shape),
                "float32_vs_float64_max_abs": err,
            }
        )
        print(
            f"{name:26s} B={len(rows)} N={len(rows[0])} T'={resnet_frames(len(rows[0]))} "
            f"weights={None if weights is None else weights.shape}  range {emb.min():.3f}..{emb.max():.3f}  "
            f"|f32-f64| {err:.2e}"
        )
    assert t10 == 125 and t3 == 38, (t10, t3)

    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(
        {k: np.ascontiguousarray(v.numpy()) for k, v in state.items() if v.dtype == torch.float32},
        str(OUT / "model.safetensors"),
    )
    checkpoint = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": state,
        "hyper_parameters": dict(model.hparams),
        "pyannote.audio": {
            "versions": {"pyannote.audio": pyannote.audio.__version__},
            "architecture": {"module": type(model).__module__, "class": type(model).__name__},
        },
    }
    torch.save(checkpoint, str(OUT / "pytorch_model.bin"))

    mns = min_num_samples()
    print(f"min_num_samples (full-size WeSpeakerResNet34): {mns}")
    meta = {
        "generator": "tests/reference/make_wespeaker_reference.py",
        "versions": {
            "torch": torch.__version__,
            "torchaudio": torchaudio.__version__,
            "pyannote.audio": pyannote.audio.__version__,
            "numpy": np.__version__,
            "soundfile": soundfile.__version__,
            "safetensors": safetensors.__version__,
        },
        "model": f"WeSpeakerResNet34() with resnet = ResNet(BasicBlock, [3, 4, 6, 3], m_channels={M_CHANNELS}, "
        f"feat_dim=80, embed_dim={EMBED_DIM}, pooling_func='TSTP', two_emb_layer=False), seed {SEED}, eval, CPU",
        "m_channels": M_CHANNELS,
        "embed_dim": EMBED_DIM,
        "min_num_samples": mns,
        "frames_case": frames_case,
        "speech_dir": str(SPEECH),
        "sha256": hashes,
        "cases": manifest_cases,
    }
    save_file(tensors, str(OUT / "reference.safetensors"))
    (OUT / "manifest.json").write_text(json.dumps(meta, indent=1) + "\n")
    for p in sorted(OUT.iterdir()):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
