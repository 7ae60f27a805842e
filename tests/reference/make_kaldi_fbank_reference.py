"""Reference Kaldi filterbanks for Scribe's engine/audio/kaldi_fbank.rs (tests/kaldi_fbank_reference.rs).

Runs torchaudio 2.8.0's `torchaudio.compliance.kaldi.fbank` (torch 2.8.0, float32 on CPU) on real
recordings and synthetic edge cases:
- "campplus": CAM++'s front end exactly as 3D-Speaker's `speakerlab/process/processor.py`
  `FBank.__call__` runs it (`FBank(80, 16000, mean_nor=True)`, copied below since speakerlab is not
  installed): `Kaldi.fbank(wav, num_mel_bins=80, sample_frequency=16000, dither=0)` on the [-1, 1]
  waveform, then `feat - feat.mean(0, keepdim=True)`.
- "wespeaker": pyannote.audio 4.0.7's own `BaseWeSpeakerResNet.compute_fbank` on a
  `WeSpeakerResNet34()` built with its default hyper-parameters (no weights are needed): x 2^15,
  `kaldi.fbank(num_mel_bins=80, window_type="hamming", ...)` under `torch.vmap`, time-mean removal.
  The script checks that a direct `kaldi.fbank` call with those options gives the same numbers.
- other option sets (torchaudio defaults: povey, 23 bins; use_energy with and without raw_energy and
  htk_compat; subtract_mean; snip_edges=False; hanning / rectangular / blackman windows;
  use_power=False; use_log_fbank=False; round_to_power_of_two=False; other band edges, frame sizes
  and sample_frequency) passed to `kaldi.fbank` as keyword arguments, recorded as such in the JSON.

Inputs:
- 16 kHz recordings from ../shared/data/speech/ (`soundfile`, float32 = int16 / 32768), cropped; only
  the file name, sample range and a checksum go in the JSON (the Rust test reads the files itself);
- LJ050-0131.wav (22.05 kHz) resampled with `scipy.signal.resample_poly(x, 320, 441)` in float64,
  cropped and stored as float32 (Scribe's resampler gives other samples, so the input travels along);
- synthetic inputs (seeded noise of exactly 400, 401 and 559 samples, a 440 Hz tone, digital silence,
  one-LSB noise), stored.

Every case runs twice: on the float32 waveform (`fbank.<case>`: what the models are fed) and on the
same waveform as float64 (`fbank64.<case>`, stored as float32: the same torchaudio code without
float32 rounding). torchaudio's float32 output is itself up to ~2e-3 away from its float64 output in
a few low mel bins of loud frames (pocketfft's float32 rounding and the rounding of the framed
samples; the bins' energy is 60+ dB below the frame's), so the Rust test checks the algorithm
against `fbank64` tightly and the float32 output within its tolerance plus that float32 noise. The
JSON records each case's max |float32 - float64|.

Output: tests/reference/data/kaldi_fbank/cases.json (inputs, cases: options, frames, dim) and
fbank.safetensors (`input.<name>` [n] for stored inputs; `fbank.<case>`, `fbank64.<case>`
[frames, dim], float32).

Regenerate from the repository root (the venv of tests/reference/setup_alignvenv.sh plus
requirements-diarize.txt; versions there):
    .cache/alignvenv/bin/python tests/reference/make_kaldi_fbank_reference.py
"""
import json
import pathlib

import numpy as np
import scipy.signal
import soundfile
import torch
import torchaudio
import torchaudio.compliance.kaldi as Kaldi
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEECH = pathlib.Path("../shared/data/speech")  # relative to the repository root, as the Rust test reads it
OUT = ROOT / "tests/reference/data/kaldi_fbank"
SAMPLE_RATE = 16000

# name -> (file, start, length): crops of native 16 kHz recordings, read by the Rust test.
FILE_INPUTS = {
    "two_speakers": ("two_speakers.wav", 48000, 20000),  # 1.25 s
    "spk1_snt1": ("spk1_snt1.wav", 8000, 20000),  # 1.25 s
    "spk2_snt1": ("spk2_snt1.wav", 0, 20000),  # 1.25 s, leading silence included
    "spk1_snt1_1s": ("spk1_snt1.wav", 16000, 16000),  # 1 s, for the option sweep
}
LJ_CROP = (16000, 20000)  # 1.25 s of LJ050-0131.wav after resampling to 16 kHz


def read_crop(file, start, length):
    audio, sr = soundfile.read(str(ROOT / SPEECH / file), dtype="float32")
    assert sr == SAMPLE_RATE and audio.ndim == 1, (file, sr, audio.shape)
    crop = audio[start : start + length]
    assert len(crop) == length
    return crop


def stored_inputs():
    rng = np.random.default_rng(20240607)
    lj, sr = soundfile.read(str(ROOT / SPEECH / "LJ050-0131.wav"), dtype="float64")
    assert sr == 22050
    lj16 = scipy.signal.resample_poly(lj, 320, 441).astype(np.float32)
    t = np.arange(8000) / SAMPLE_RATE
    return {
        "lj050_16k": lj16[LJ_CROP[0] : LJ_CROP[0] + LJ_CROP[1]],
        "noise_400": (0.1 * rng.standard_normal(400)).astype(np.float32),
        "noise_401": (0.1 * rng.standard_normal(401)).astype(np.float32),
        "noise_559": (0.1 * rng.standard_normal(559)).astype(np.float32),
        "tone_440": (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32),
        "silence": np.zeros(1000, dtype=np.float32),
        # int16 quantisation noise of about one LSB, where the EPSILON floor and energy_floor bite.
        "lsb_noise": (rng.integers(-1, 2, size=4000) / 32768.0).astype(np.float32),
    }


def campplus(wav):
    """3D-Speaker speakerlab/process/processor.py FBank(80, 16000, mean_nor=True).__call__(wav)."""
    feat = Kaldi.fbank(wav.unsqueeze(0), num_mel_bins=80, sample_frequency=16000, dither=0)
    return feat - feat.mean(0, keepdim=True)


def wespeaker_direct(wav):
    """pyannote's BaseWeSpeakerResNet.compute_fbank written out, for any dtype."""
    feat = Kaldi.fbank(
        (wav * (1 << 15)).unsqueeze(0),
        num_mel_bins=80,
        frame_length=25,
        round_to_power_of_two=True,
        frame_shift=10,
        snip_edges=True,
        dither=0.0,
        sample_frequency=16000,
        window_type="hamming",
        use_energy=False,
    )
    return feat - feat.mean(0, keepdim=True)


def make_wespeaker():
    from pyannote.audio.models.embedding.wespeaker import WeSpeakerResNet34

    model = WeSpeakerResNet34().eval()

    def wespeaker(wav):
        direct = wespeaker_direct(wav)
        if wav.dtype != torch.float32:
            return direct
        with torch.no_grad():
            feat = model.compute_fbank(wav[None, None, :])[0]
        assert torch.allclose(feat, direct, atol=1e-5, rtol=0), (feat - direct).abs().max()
        return feat

    return wespeaker


# name -> torchaudio kwargs, for the option sweep on spk1_snt1_1s (and a few on synthetic inputs).
SWEEP = {
    "defaults": {},
    "energy": {"num_mel_bins": 40, "use_energy": True},
    "energy_windowed_htk": {"num_mel_bins": 40, "use_energy": True, "raw_energy": False, "htk_compat": True},
    "energy_no_floor_mean": {"num_mel_bins": 40, "use_energy": True, "energy_floor": 0.0, "subtract_mean": True},
    "subtract_mean": {"num_mel_bins": 40, "subtract_mean": True},
    "no_snip_edges": {"num_mel_bins": 40, "snip_edges": False},
    "hanning": {"num_mel_bins": 40, "window_type": "hanning"},
    "rectangular_no_dc": {"num_mel_bins": 40, "window_type": "rectangular", "remove_dc_offset": False},
    "blackman": {"num_mel_bins": 40, "window_type": "blackman", "blackman_coeff": 0.4},
    "magnitude_no_preemph": {"num_mel_bins": 40, "use_power": False, "preemphasis_coefficient": 0.0},
    "linear": {"num_mel_bins": 40, "use_log_fbank": False},
    "no_pow2": {"num_mel_bins": 40, "round_to_power_of_two": False, "window_type": "hamming"},
    "band_edges": {"num_mel_bins": 64, "low_freq": 100.0, "high_freq": -400.0},
    "long_frames": {"num_mel_bins": 40, "frame_length": 32.0, "frame_shift": 12.5, "snip_edges": False},
    "at_8k": {"num_mel_bins": 24, "sample_frequency": 8000.0, "high_freq": 3800.0},
}
# Option sets also run on synthetic inputs.
SWEEP_SYNTHETIC = {
    "defaults": ["tone_440", "noise_400", "noise_401", "noise_559", "lsb_noise"],
    "energy": ["tone_440", "noise_559", "silence", "lsb_noise"],
    "energy_no_floor_mean": ["silence", "lsb_noise"],
    "no_snip_edges": ["tone_440", "noise_400", "noise_559"],
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    wespeaker = make_wespeaker()
    tensors = {}
    inputs = {}
    samples = {}
    for name, (file, start, length) in FILE_INPUTS.items():
        crop = read_crop(file, start, length)
        samples[name] = crop
        inputs[name] = {
            "file": file,
            "start": start,
            "length": length,
            # To check that Scribe decodes the same samples: their sum and the first and last one.
            "sum": float(crop.astype(np.float64).sum()),
            "first": float(crop[0]),
            "last": float(crop[-1]),
        }
    for name, x in stored_inputs().items():
        samples[name] = x
        tensors[f"input.{name}"] = x
        inputs[name] = {"stored": f"input.{name}", "length": len(x)}
    inputs["lj050_16k"]["note"] = (
        f"LJ050-0131.wav resampled to 16 kHz by scipy.signal.resample_poly(x, 320, 441), samples {LJ_CROP[0]}.."
        f"{LJ_CROP[0] + LJ_CROP[1]}"
    )

    cases = []

    def add(case, input_name, fn, preset=None, options=None):
        wav = torch.from_numpy(samples[input_name])
        feat = fn(wav).detach().numpy()
        feat64 = fn(wav.double()).detach().numpy()
        assert feat.dtype == np.float32 and feat64.dtype == np.float64 and feat.shape == feat64.shape, case
        assert np.isfinite(feat).all() and np.isfinite(feat64).all(), case
        tensors[f"fbank.{case}"] = np.ascontiguousarray(feat)
        tensors[f"fbank64.{case}"] = np.ascontiguousarray(feat64.astype(np.float32))
        noise = float(np.abs(feat - feat64).max())
        entry = {"name": case, "input": input_name, "frames": feat.shape[0], "dim": feat.shape[1]}
        if preset:
            entry["preset"] = preset
        entry["options"] = options or {}
        entry["float32_max_diff"] = noise
        cases.append(entry)
        print(
            f"{case:40s} {feat.shape[0]:4d} x {feat.shape[1]:3d}  range {feat.min():9.3f} .. {feat.max():9.3f}"
            f"  |f32 - f64| {noise:.2e}"
        )

    preset_inputs = ["two_speakers", "spk1_snt1", "spk2_snt1", "lj050_16k"]
    preset_inputs += ["noise_400", "noise_401", "noise_559", "tone_440", "silence", "lsb_noise"]
    for name in preset_inputs:
        add(f"campplus.{name}", name, campplus, preset="campplus")
        add(f"wespeaker.{name}", name, wespeaker, preset="wespeaker")
    for opt_name, kwargs in SWEEP.items():
        for name in ["spk1_snt1_1s"] + SWEEP_SYNTHETIC.get(opt_name, []):
            add(f"{opt_name}.{name}", name, lambda wav: Kaldi.fbank(wav.unsqueeze(0), **kwargs), options=kwargs)

    meta = {
        "generator": "tests/reference/make_kaldi_fbank_reference.py",
        "versions": {
            "torch": torch.__version__,
            "torchaudio": torchaudio.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "speech_dir": str(SPEECH),
        "presets": {
            "campplus": "3D-Speaker FBank(80, 16000, mean_nor=True): kaldi.fbank(wav, num_mel_bins=80, "
            "sample_frequency=16000, dither=0) - mean over time",
            "wespeaker": "pyannote.audio 4.0.7 WeSpeakerResNet34().compute_fbank: kaldi.fbank(wav * 2**15, "
            "num_mel_bins=80, window_type='hamming', dither=0) - mean over time",
        },
        "inputs": inputs,
        "cases": cases,
    }
    save_file(tensors, str(OUT / "fbank.safetensors"))
    (OUT / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(cases)} cases, {size / 1e6:.2f} MB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
