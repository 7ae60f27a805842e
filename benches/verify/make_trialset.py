"""Speaker-verification trial set: the shared recordings of known speakers (spk1, spk2: six
sentences each; jfk, lj: one each) and the six espeak-ng voices of the diarization development
set (benches/diarize/make_devset.py: same voices, pitches and speeds), each voice saying six
utterances of two sentences.

Writes the espeak-ng utterances (16 kHz mono, cut to their voiced extent) to OUT (default
.cache/verify-set/) with OUT/manifest.json, an enrolment sample per speaker for
benches/verify_naming.rs (`enrol` in the manifest: the espeak-ng voices say sentences the
development dialogues never use; the recorded speakers have no other recordings, so theirs is
one of their own files, which the dialogues also use), and the trial list
benches/verify/trials.txt: every
pair of utterances, `target` when both are one speaker, else `nontarget`. Ids are
`real/<file>` (../shared/data/speech/) and `espeak/<file>` (OUT). Repeatable: the same
voices, sentences and order every run.

    benches/verify/make_trialset.sh [OUT]
"""

import argparse, itertools, json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "diarize"))
import make_devset as dev  # noqa: E402
import numpy as np  # noqa: E402

UTTERANCES_PER_VOICE = 6
# Sentences no development dialogue says (benches/diarize/make_devset.py SENTENCES).
ENROL_SENTENCES = [
    "My name is on the list at the front desk, please check again.",
    "I usually walk to work when the weather is dry enough.",
    "Our neighbours painted their fence bright yellow last summer.",
]
# A recorded speaker's enrolment file.
ENROL_REAL = {"spk1": "spk1_snt1.wav", "spk2": "spk2_snt1.wav", "jfk": "jfk.flac", "lj": "LJ050-0131.wav"}
SENTENCES_PER_UTTERANCE = 2
GAP_S = 0.3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(dev.ROOT, ".cache", "verify-set"))
    args = ap.parse_args()
    data = os.path.join(dev.ROOT, "..", "shared", "data", "speech")
    src = dev.Sources(data, os.path.join(args.out, "work"))
    entries = []
    for label in dev.REAL:
        for f in src.real[label]:
            entries.append({"id": f"real/{f}", "speaker": label})
    gap = np.zeros(int(GAP_S * dev.SR), dtype=np.float32)
    for label in dev.ESPEAK:
        for u in range(UTTERANCES_PER_VOICE):
            parts = []
            for k in range(SENTENCES_PER_UTTERANCE):
                parts += [dev.trim(src.espeak(label, u * SENTENCES_PER_UTTERANCE + k)), gap]
            name = f"{label}-{u}.wav"
            dev.write_wav(os.path.join(args.out, name), np.concatenate(parts))
            entries.append({"id": f"espeak/{name}", "speaker": label})
    enrol = {label: f"real/{f}" for label, f in ENROL_REAL.items()}
    for label, (voice, pitch, speed) in dev.ESPEAK.items():
        parts = []
        for k, text in enumerate(ENROL_SENTENCES):
            raw = os.path.join(args.out, "work", f"enrol-{label}-{k}.raw.wav")
            wav = os.path.join(args.out, "work", f"enrol-{label}-{k}.wav")
            dev.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", raw, text])
            dev.to_16k(raw, wav)
            parts += [dev.trim(dev.read_wav(wav)), gap]
        name = f"enrol-{label}.wav"
        dev.write_wav(os.path.join(args.out, name), np.concatenate(parts))
        enrol[label] = f"espeak/{name}"
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"utterances": entries, "enrol": enrol}, f, indent=1)
    lines = []
    for a, b in itertools.combinations(entries, 2):
        kind = "target" if a["speaker"] == b["speaker"] else "nontarget"
        lines.append(f"{kind} {a['id']} {b['id']}")
    with open(os.path.join(HERE, "trials.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    targets = sum(1 for l in lines if l.startswith("target"))
    print(f"{len(entries)} utterances, {len(lines)} trials ({targets} target)")


if __name__ == "__main__":
    main()
