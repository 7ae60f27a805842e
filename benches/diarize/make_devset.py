#!/usr/bin/env python3
"""Builds the diarization development set: 8 dialogues of 2-4 speakers, 2-3 minutes each, with
reference RTTMs from the known placement of every utterance.

    benches/diarize/make_devset.sh [OUT]        # creates .cache/diarize-venv (numpy), then runs this
    .cache/diarize-venv/bin/python benches/diarize/make_devset.py [--out DIR] [--data DIR]

Speakers: six espeak-ng voices (distinct voice/variant, pitch and speed; checked distinct below)
and the real speakers of the shared recordings (../shared/data/speech: spk1, spk2, jfk, lj).
Every utterance is converted to 16 kHz mono (sox, repeatable, no dither) and cut to its voiced
extent (10 ms frames whose RMS is within TRIM_DB of the utterance's loudest frame and above
FLOOR_DBFS), so each RTTM turn is where the voice actually is. Each dialogue places turns of 1-3
utterances of one speaker (pauses 0.15-0.6 s inside a turn) with random gaps between turns; in
the dialogues marked `overlap` about a quarter of the turns start before the previous one ends
(0.3-1.5 s, never over the same speaker's own speech); in the `noise` ones, sox-synthesised noise
(repeatable) is mixed over the whole file at the given SNR against the speech (RMS over voiced
samples). Outputs: NN.wav (16-bit), NN.rttm (one SPEAKER line per utterance), manifest.json.
Deterministic: fixed seed, sox -R; rerunning gives byte-identical files (sha256 in the manifest).
"""
import argparse, hashlib, json, os, random, subprocess, sys, wave
import numpy as np

SEED = 20261204
SR = 16000
FRAME = 160  # 10 ms
TRIM_DB = 40.0  # a frame is voiced when within this of the loudest frame...
FLOOR_DBFS = -55.0  # ...and above this level
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# label: (espeak-ng voice, pitch 0-99, speed wpm). espeak-ng 1.51 ignores a variant after `en-gb`
# (`en-gb+f2` is `en-gb`), so variants go on `en`/`en-us`; check_voices() proves they apply.
ESPEAK = {
    "es_us_m3": ("en-us+m3", 40, 160),
    "es_f2": ("en+f2", 55, 150),
    "es_rp": ("en-gb-x-rp", 30, 172),
    "es_us_f4": ("en-us+f4", 82, 165),
    "es_scot": ("en-gb-scotland", 48, 150),
    "es_nyc_m7": ("en-us-nyc+m7", 62, 180),
}
REAL = ["spk1", "spk2", "jfk", "lj"]  # `speaker` in ../shared/data/speech/manifest.json

# (speakers, overlap, noise: None or (sox noise type, SNR dB))
PLAN = [
    (["es_us_m3", "spk1"], False, None),
    (["spk1", "spk2"], True, None),
    (["es_f2", "es_rp", "spk2"], True, ("pinknoise", 15)),
    (["es_us_f4", "jfk", "spk1"], False, None),
    (["es_us_m3", "es_f2", "spk2", "lj"], True, None),
    (["es_rp", "es_scot"], False, ("whitenoise", 20)),
    (["es_us_f4", "es_scot", "spk1", "spk2"], True, ("brownnoise", 10)),
    (["es_nyc_m7", "jfk", "lj"], True, ("pinknoise", 20)),
]

SENTENCES = [
    "Did you manage to finish the report before the meeting this morning?",
    "Not quite, I still have to check the numbers for the second quarter.",
    "We could move the deadline to Friday if that helps.",
    "That would be great, thank you.",
    "Has anyone heard back from the supplier about the delivery?",
    "They said the parts will arrive next Tuesday at the earliest.",
    "I think we should ask for a discount if they are late again.",
    "Let me write that down so I do not forget.",
    "What time does the train leave tomorrow?",
    "The first one is at a quarter past seven, the next one an hour later.",
    "I would rather take the later one, to be honest.",
    "Fine by me, as long as we are there before lunch.",
    "Could you send me the slides from yesterday?",
    "Of course, I will put them in the shared folder right away.",
    "The weather has been strange this week, warm one day and freezing the next.",
    "My garden does not know what season it is any more.",
    "Shall we order some food, or do you want to go out?",
    "Let us stay in, I am too tired to go anywhere tonight.",
    "I read an interesting article about bees on the way home.",
    "Apparently they can recognise human faces.",
    "That sounds hard to believe, but I suppose it is possible.",
    "We need three more chairs for the workshop on Thursday.",
    "I can borrow some from the office next door.",
    "Remember to lock the back door when you leave.",
    "Who is picking up the children after school today?",
    "I thought it was your turn, but I can do it if you are busy.",
    "The printer on the second floor is broken again.",
    "Somebody should really call the technician.",
    "How was your holiday, did you get any sun?",
    "It rained for five days out of seven, but we still had fun.",
    "I have never understood how this coffee machine works.",
    "You press the green button twice and then wait.",
    "Our budget for next year is smaller than we hoped.",
    "Then we will have to decide which projects come first.",
    "Please keep the noise down, the baby is finally asleep.",
    "Sorry, I did not realise it was so late.",
]


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0


def write_wav(path, x):
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def to_16k(src, dst):
    # -R repeatable, -D no dither (espeak's silence stays digital zero); channels averaged.
    run(["sox", "-R", src, "-D", "-b", "16", "-c", "1", dst, "rate", "-v", str(SR)])


def frame_db(x):
    n = len(x) // FRAME
    f = x[: n * FRAME].reshape(n, FRAME)
    return 10 * np.log10(np.mean(f * f, axis=1) + 1e-20)


def trim(x):
    """Cut to the voiced extent: first to last 10 ms frame within TRIM_DB of the loudest frame
    and above FLOOR_DBFS."""
    db = frame_db(x)
    voiced = np.nonzero((db >= db.max() - TRIM_DB) & (db >= FLOOR_DBFS))[0]
    if len(voiced) == 0:
        raise ValueError("no voiced frame")
    return x[voiced[0] * FRAME : (voiced[-1] + 1) * FRAME]


def f0_median(x):
    """Median F0 (Hz) of the voiced 40 ms frames by normalised autocorrelation, 70-400 Hz."""
    n, hop = 640, 320
    lo, hi = SR // 400, SR // 70
    f0s = []
    for i in range(0, len(x) - n, hop):
        f = x[i : i + n] - x[i : i + n].mean()
        e = np.dot(f, f)
        if e < 1e-4:
            continue
        ac = np.correlate(f, f, "full")[n - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] > 0.5:
            f0s.append(SR / lag)
    return float(np.median(f0s)) if f0s else float("nan")


def ltas(x):
    """Long-term average spectrum, dB, in 32 bands up to 8 kHz (512-point frames)."""
    n = 512
    frames = [x[i : i + n] * np.hanning(n) for i in range(0, len(x) - n, 256)]
    p = np.mean([np.abs(np.fft.rfft(f)) ** 2 for f in frames if np.dot(f, f) > 1e-5], axis=0)
    bands = np.array_split(p[1:], 32)
    db = 10 * np.log10(np.array([b.mean() for b in bands]) + 1e-20)
    return db - db.mean()


class Sources:
    def __init__(self, data, work):
        self.data, self.work = data, work
        os.makedirs(work, exist_ok=True)
        with open(os.path.join(data, "manifest.json")) as f:
            manifest = json.load(f)
        self.real = {s: [] for s in REAL}
        for entry in manifest:
            if entry.get("speaker") in self.real and entry.get("text"):
                self.real[entry["speaker"]].append(entry["file"])
        self.cache = {}

    def espeak(self, label, text_index, voice=None):
        v, pitch, speed = ESPEAK[label]
        voice = voice or v
        key = (label, voice, text_index)
        if key not in self.cache:
            raw = os.path.join(self.work, f"{label}-{voice}-{text_index}.raw.wav")
            out = os.path.join(self.work, f"{label}-{voice}-{text_index}.wav")
            if not os.path.exists(out):
                run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", raw, SENTENCES[text_index]])
                to_16k(raw, out)
                os.remove(raw)
            self.cache[key] = read_wav(out)
        return self.cache[key]

    def recording(self, name):
        if name not in self.cache:
            out = os.path.join(self.work, os.path.splitext(name)[0] + ".16k.wav")
            if not os.path.exists(out):
                to_16k(os.path.join(self.data, name), out)
            self.cache[name] = read_wav(out)
        return self.cache[name]

    def utterances(self, label):
        """All utterances of a speaker, trimmed, in a fixed order."""
        if label in ESPEAK:
            return [trim(self.espeak(label, i)) for i in range(len(SENTENCES))]
        return [trim(self.recording(f)) for f in self.real[label]]


def check_voices(src):
    """Each espeak speaker's variant must change the sound (espeak-ng ignores some), and no two
    speakers may share both median F0 (within 6 %) and spectral envelope (within 1.5 dB RMS)."""
    probe = [0, 1, 2, 3]
    stats = {}
    for label, (voice, _, _) in ESPEAK.items():
        x = np.concatenate([trim(src.espeak(label, i)) for i in probe])
        if "+" in voice:
            base = np.concatenate([trim(src.espeak(label, i, voice.split("+")[0])) for i in probe])
            if len(base) == len(x) and np.array_equal(base, x):
                sys.exit(f"espeak-ng ignored the variant of {voice}: identical to {voice.split('+')[0]}")
        stats[label] = (f0_median(x), ltas(x))
    for label in REAL:
        x = np.concatenate(src.utterances(label))
        stats[label] = (f0_median(x), ltas(x))
    labels = list(stats)
    report = {}
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            fa, la = stats[a]
            fb, lb = stats[b]
            df = abs(fa - fb) / min(fa, fb)
            dl = float(np.sqrt(np.mean((la - lb) ** 2)))
            if df < 0.06 and dl < 1.5:
                sys.exit(f"speakers {a} and {b} are too alike: F0 {fa:.0f}/{fb:.0f} Hz, spectra {dl:.2f} dB apart")
    for label in labels:
        report[label] = {"f0_median_hz": round(stats[label][0], 1)}
    print("median F0 (Hz): " + ", ".join(f"{k} {v['f0_median_hz']:.0f}" for k, v in report.items()), flush=True)
    return report


def place(rng, speakers, utts, overlap, target):
    """Utterance placements (speaker, start sample, audio) for one dialogue."""
    order = {s: rng.sample(range(len(utts[s])), len(utts[s])) for s in speakers}
    used = {s: 0 for s in speakers}
    last_end = {s: 0 for s in speakers}  # sample after each speaker's latest speech
    out = []
    t = int(rng.uniform(0.3, 1.5) * SR)
    prev = None
    prev_turn_len = prev_end = 0
    while t < target * SR:
        spk = rng.choice([s for s in speakers if s != prev])
        if overlap and prev is not None and rng.random() < 0.25:
            ov = int(min(rng.uniform(0.3, 1.5), 0.5 * prev_turn_len / SR) * SR)
            t = max(prev_end - ov, last_end[spk] + SR // 10)
        turn_start = t
        for k in range(rng.choice([1, 1, 2, 3])):
            if k:
                t += int(rng.uniform(0.15, 0.6) * SR)
            x = utts[spk][order[spk][used[spk] % len(order[spk])]]
            used[spk] += 1
            out.append((spk, t, x))
            t += len(x)
        last_end[spk] = t
        prev_turn_len, prev_end = t - turn_start, t
        prev = spk
        t += int(rng.uniform(0.1, 1.5) * SR)
    return out, t + int(rng.uniform(0.3, 1.0) * SR)


def synth_noise(kind, seconds, work, index):
    path = os.path.join(work, f"noise-{index}.wav")
    run(["sox", "-R", "-n", "-r", str(SR), "-b", "16", "-c", "1", path, "synth", f"{seconds:.3f}", kind])
    return read_wav(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache/diarize-devset"))
    ap.add_argument("--data", default=os.environ.get("SCRIBE_SPEECH_DATA", os.path.join(ROOT, "../shared/data/speech")))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    src = Sources(args.data, os.path.join(args.out, ".work"))
    voices = check_voices(src)
    utts = {s: src.utterances(s) for s in list(ESPEAK) + REAL}
    gains = {s: 10 ** (random.Random(f"{SEED}-{s}").uniform(-26, -20) / 20) for s in utts}

    files = []
    for d, (speakers, overlap, noise) in enumerate(PLAN):
        rng = random.Random(f"{SEED}-{d}")
        target = rng.uniform(120, 170)
        placed, length = place(rng, speakers, utts, overlap, target)
        mix = np.zeros(length)
        active = np.zeros(length, dtype=bool)
        per_speaker = np.zeros(length, dtype=np.int32)
        speech = {s: 0.0 for s in speakers}
        for spk, start, x in placed:
            rms = np.sqrt(np.mean(x * x))
            mix[start : start + len(x)] += x * (gains[spk] / rms)
            active[start : start + len(x)] = True
            per_speaker[start : start + len(x)] += 1
            speech[spk] += len(x) / SR
        noise_info = None
        if noise:
            kind, snr = noise
            n = synth_noise(kind, length / SR + 0.1, src.work, d)[:length]
            p_speech = np.mean(mix[active] ** 2)
            n *= np.sqrt(p_speech / (np.mean(n * n) * 10 ** (snr / 10)))
            mix += n
            noise_info = {"type": kind, "snr_db": snr}
        peak = np.max(np.abs(mix))
        if peak > 0.95:
            mix *= 0.95 / peak
        stem = f"{d + 1:02d}"
        wav, rttm = os.path.join(args.out, stem + ".wav"), os.path.join(args.out, stem + ".rttm")
        write_wav(wav, mix)
        with open(rttm, "w") as f:
            for spk, start, x in sorted(placed, key=lambda p: p[1]):
                f.write(f"SPEAKER {stem} 1 {start / SR:.4f} {len(x) / SR:.4f} <NA> <NA> {spk} <NA> <NA>\n")
        files.append({
            "file": stem + ".wav", "rttm": stem + ".rttm",
            "duration_s": round(length / SR, 3), "num_speakers": len(speakers), "speakers": speakers,
            "speech_s": {s: round(v, 2) for s, v in speech.items()}, "turns": len(placed),
            "overlap_s": round(float(np.sum(per_speaker > 1)) / SR, 2), "overlap_turns": overlap,
            "noise": noise_info, "sha256": hashlib.sha256(open(wav, "rb").read()).hexdigest(),
        })
        print(f"{stem}: {length / SR:6.1f} s, {len(speakers)} speakers, {len(placed)} utterances, "
              f"overlap {files[-1]['overlap_s']:.1f} s, noise {noise_info}", flush=True)

    version = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.split("\n")[0].strip()
    manifest = {
        "generator": "benches/diarize/make_devset.py", "seed": SEED, "sample_rate": SR,
        "espeak_ng": version(["espeak-ng", "--version"]), "sox": version(["sox", "--version"]),
        "trim": {"frame_ms": 10, "within_db_of_loudest": TRIM_DB, "floor_dbfs": FLOOR_DBFS},
        "speakers": {s: ({"kind": "espeak-ng", "voice": ESPEAK[s][0], "pitch": ESPEAK[s][1], "speed_wpm": ESPEAK[s][2]}
                         if s in ESPEAK else {"kind": "recording", "files": src.real[s]})
                     | voices[s] | {"level_dbfs": round(20 * np.log10(gains[s]), 1)} for s in utts},
        "files": files,
    }
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(files)} dialogues -> {args.out}")


if __name__ == "__main__":
    main()
