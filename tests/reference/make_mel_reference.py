"""Independent numpy reference for Scribe's Whisper log-mel (engine/audio/mel.rs).

Follows openai/whisper audio.py `log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)` step by step,
written with numpy only (no torch, no librosa, no scipy), in float64:
  pad N_SAMPLES zeros at the end -> reflect-pad N_FFT/2 both sides (torch.stft center=True)
  -> periodic Hann(N_FFT) frames every HOP_LENGTH -> rfft -> drop the last frame -> |X|^2
  -> mel filters (WhisperX's mel_filters.npz, extracted to tests/data by extract_mel_filters.py)
  -> log10(max(., 1e-10)) -> max(., global_max - 8) -> (x + 4) / 4.

Inputs:
- two_speakers.wav (16 kHz mono int16, 30 s): read with `soundfile` as float32 (int16 / 32768). No
  resampling on either side, so this checks Scribe's decode + log-mel end to end, independently.
- jfk.flac is 44.1 kHz stereo 24-bit: its 16 kHz version depends on the resampler, which numpy cannot
  reproduce to 1e-4, so the jfk reference is computed on the 16 kHz samples Scribe's own decoder wrote
  to .cache/jfk_16k.f32 (`cargo test --test audio -- --ignored dump_jfk_16k`). It checks the log-mel
  only; the decoder and resampler have their own tests.

Usage (from the package root): .cache/venv/bin/python tests/reference/make_mel_reference.py
Writes tests/reference/data/<name>_mel{n_mels}_stride{S}.f32 (frames 0, S, 2S, ..., row-major
[n_mels, kept]) and tests/reference/data/mel_reference.json (shapes, strides, sha256 of each input).
"""
import hashlib
import json
import pathlib

import numpy as np
import soundfile

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
N_SAMPLES = 30 * SAMPLE_RATE
ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEECH = ROOT / "../shared/data/speech"
OUT = ROOT / "tests/reference/data"
# (name, n_mels, stride): keep every stride-th frame so fixtures stay small but span speech and padding.
CASES = [("two_speakers", 80, 20), ("two_speakers", 128, 60), ("jfk", 80, 16)]


def log_mel(audio: np.ndarray, filters: np.ndarray) -> np.ndarray:
    x = np.concatenate([audio.astype(np.float64), np.zeros(N_SAMPLES)])
    x = np.pad(x, N_FFT // 2, mode="reflect")
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)  # periodic Hann
    n_frames = 1 + (len(x) - N_FFT) // HOP_LENGTH
    starts = np.arange(n_frames) * HOP_LENGTH
    frames = x[starts[:, None] + n[None, :]] * window[None, :]
    spec = np.fft.rfft(frames, axis=1)  # [frames, 201]
    power = np.abs(spec[:-1]) ** 2  # drop the last frame
    mel = filters.astype(np.float64) @ power.T  # [n_mels, frames]
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def load(name: str):
    """The 16 kHz mono float32 input and the sha256 of the bytes it came from."""
    if name == "jfk":
        raw = (ROOT / ".cache/jfk_16k.f32").read_bytes()
        return np.frombuffer(raw, dtype="<f4"), hashlib.sha256(raw).hexdigest(), "Scribe load_audio(jfk.flac)"
    path = SPEECH / f"{name}.wav"
    audio, sr = soundfile.read(path, dtype="float32")
    assert sr == SAMPLE_RATE and audio.ndim == 1, (sr, audio.shape)
    return audio, hashlib.sha256(path.read_bytes()).hexdigest(), f"{name}.wav"


def main() -> None:
    meta = {}
    for name, n_mels, stride in CASES:
        audio, sha, source = load(name)
        filters = np.fromfile(ROOT / f"tests/data/mel_filters_{n_mels}.f32", dtype="<f4").reshape(n_mels, 201)
        mel = log_mel(audio, filters)
        kept = mel[:, ::stride]
        file = f"{name}_mel{n_mels}_stride{stride}.f32"
        np.ascontiguousarray(kept, dtype="<f4").tofile(OUT / file)
        meta[file] = {
            "input": source,
            "input_sha256": sha,
            "n_samples": int(len(audio)),
            "n_mels": n_mels,
            "n_frames": int(mel.shape[1]),
            "stride": stride,
            "kept_frames": int(kept.shape[1]),
        }
        print(file, mel.shape, kept.shape, float(mel.min()), float(mel.max()))
    (OUT / "mel_reference.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
