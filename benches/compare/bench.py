"""Scribe vs faster-whisper: WER, whole-process wall time and peak RSS on the shared speech set,
sequential (no VAD) and batched (faster-whisper's BatchedInferencePipeline with its Silero VAD;
Scribe's default WhisperX path: pyannote VAD, chunks decoded in batches), plus the words each
engine writes inside the noise stretches of the noisy long file.

Driven by ../compare_faster_whisper (which prepares the venv); see ../README.md.
"""

import argparse
import json
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import jiwer

import clips
from normalizer import english_text_normalizer

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
THREADS = 2
BEAM_SIZE = 5
BATCH_SIZE = 8
DEFAULT_DATA = REPO.parent / "shared" / "data" / "speech"
# Scribe argument templates (after the binary). {model}, {output_dir}, {threads} are substituted;
# a lone {files} token expands to the audio paths (appended at the end when absent). `--no_align`:
# faster-whisper transcribes only, so Scribe does too (by default the CLI would also fetch and run
# a wav2vec2 aligner).
SCRIBE_JSON_ARGS = ("transcribe --model {model} --beam_size 5 --threads {threads} --vad_method none --no_align "
                    "--output_format json --output_dir {output_dir} {files}")
SCRIBE_BATCHED_ARGS = ("transcribe --model {model} --beam_size 5 --threads {threads} --batch_size 8 --no_align "
                       "--output_format json --output_dir {output_dir} {files}")
# Both engines run offline: models come from local directories only, nothing is downloaded, and
# onnxruntime (faster-whisper's VAD) sends no telemetry.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1"}


ENGINES = ("faster-whisper", "faster-whisper batched", "scribe", "scribe batched")


class EngineFailed(Exception):
    pass


def measure(cmd, env=None):
    """Run cmd as a fresh process. Returns (wall s, CPU s, peak RSS in MB); its stdout is discarded,
    its stderr's tail goes into the error when it fails.

    Peak RSS is the child's ru_maxrss from wait4 (kB on Linux): the kernel's own high-water mark,
    so no sampling interval can miss a short peak. CPU s = user + system time of the child (and
    its waited-for children): less sensitive than wall time to other load on the machine."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=REPO)
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise EngineFailed(f"exit {proc.returncode}: {stderr_tail(stderr) or 'no stderr'}")
    return wall, rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss / 1024.0


def stderr_tail(stderr, keep=3, limit=300):
    """The last lines of stderr, led by the first line that says "error" when the tail misses it
    (clap prints the error first and usage after it)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    tail = lines[-keep:]
    errors = [ln for ln in lines if "error" in ln.lower()]
    if errors and errors[0] not in tail:
        tail = [errors[0]] + tail[-(keep - 1):]
    text = " ".join(tail)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_faster_whisper(model, files, workdir, batched=0):
    out = workdir / "fw.json"
    cmd = [sys.executable, str(HERE / "fw_transcribe.py"), "--model", str(model), "--batched", str(batched),
           "--threads", str(THREADS), "--beam_size", str(BEAM_SIZE), "--out", str(out), *files]
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), **OFFLINE_ENV)
    wall, cpu, rss = measure(cmd, env=env)
    doc = json.loads(out.read_text())
    return wall, cpu, rss, {f: d["text"] for f, d in doc.items()}, {f: d["segments"] for f, d in doc.items()}


def scribe_command(template, binary, model, files, output_dir):
    subst = {"model": str(model), "output_dir": str(output_dir), "threads": str(THREADS)}
    argv, placed = [binary], False
    for tok in shlex.split(template):
        if tok == "{files}":
            argv += files
            placed = True
        else:
            argv.append(tok.format(**subst))
    return argv if placed else argv + files


def parse_scribe_json(output_dir, files):
    """WhisperX writers: OUTPUT_DIR/<audio stem>.json with {"segments": [{"start", "end", "text"}...]}.
    Returns ({file: text}, {file: [[start, end, text], ...]})."""
    texts, segments = {}, {}
    for f in files:
        path = output_dir / (pathlib.Path(f).stem + ".json")
        if not path.exists():
            raise EngineFailed(f"no {path.name} in --output_dir")
        doc = json.loads(path.read_text())
        segs = [[s["start"], s["end"], s["text"].strip()] for s in doc.get("segments", [])]
        texts[f] = " ".join(s[2] for s in segs)
        segments[f] = segs
    return texts, segments


def run_scribe(args, model, files, workdir, batched=False):
    output_dir = workdir / "scribe-out"
    output_dir.mkdir(exist_ok=True)
    for old in output_dir.iterdir():
        old.unlink()
    template = os.environ.get("SCRIBE_ARGS") or (SCRIBE_BATCHED_ARGS if batched else SCRIBE_JSON_ARGS)
    cmd = scribe_command(template, args.scribe_bin, model, files, output_dir)
    if not os.access(args.scribe_bin, os.X_OK):
        raise EngineFailed(f"{args.scribe_bin} not found; cargo build --release --bin scribe")
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS), LOG_LEVEL=os.environ.get("LOG_LEVEL", "warn"),
               **OFFLINE_ENV)
    wall, cpu, rss = measure(cmd, env=env)
    texts, segments = parse_scribe_json(output_dir, files)
    missing = [f for f in files if f not in texts]
    if missing:
        raise EngineFailed(f"no transcript for {len(missing)} file(s), e.g. {pathlib.Path(missing[0]).name}")
    return wall, cpu, rss, texts, segments


def noise_words(items, segments):
    """Words of the segments whose middle lies inside a noise stretch (items with noise_spans)."""
    n = 0
    for i in items:
        spans = i.get("noise_spans") or []
        for start, end, text in segments.get(i["path"], []):
            mid = (start + end) / 2
            if any(a <= mid <= b for a, b in spans):
                n += len(text.split())
    return n


def wer(items, texts, normalize):
    refs = [normalize(i["text"]) for i in items]
    hyps = [normalize(texts[i["path"]]) for i in items]
    return jiwer.wer(refs, hyps)  # lists -> pooled over all words (corpus WER)


def bench(engine, run, args, model, items, workdir, normalize):
    files = [i["path"] for i in items]
    walls, cpus, rsss, first = [], [], [], None
    for k in range(args.runs):
        try:
            wall, cpu, rss, texts, segments = run(model, files, workdir)
        except EngineFailed as e:
            return {"engine": engine, "failed": str(e)}
        print(f"  {engine}: run {k + 1}/{args.runs}: {wall:.2f} s wall, {cpu:.2f} s CPU, {rss:.0f} MB",
              file=sys.stderr)
        walls.append(wall)
        cpus.append(cpu)
        rsss.append(rss)
        if first is None:
            first, first_segments = texts, segments
        elif texts != first:
            print(f"  {engine}: note: run {k + 1} transcript differs from run 1", file=sys.stderr)
    return {"engine": engine, "wer": wer(items, first, normalize), "noise_words": noise_words(items, first_segments),
            "wall": statistics.median(walls), "walls": walls, "cpu": statistics.median(cpus), "cpus": cpus,
            "rss": max(rsss), "transcripts": {pathlib.Path(f).name: first[f] for f in files}}


def md_escape(s):
    return s.replace("|", "\\|").replace("\n", " ")


def table(rows, args, index, load):
    seconds = {"clips pooled": sum(c["seconds"] for c in index["clips"]), "long file": index["long"]["seconds"],
               "noisy file": index["noisy_long"]["seconds"]}
    lines = [
        f"Scribe vs faster-whisper 1.2.1 (int8, beam {BEAM_SIZE}, {THREADS} threads, batched: batch {BATCH_SIZE}), "
        f"model `{args.model}`; "
        f"median of {args.runs} fresh processes, peak RSS = max over runs; "
        f"load average before: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} ({os.cpu_count()} CPUs)",
        "",
        "| engine | input | audio s | WER | wall median s | peak RSS MB | ratio to faster-whisper (wall, RSS) "
        "| CPU median s | words in noise |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for inp in ("clips pooled", "long file", "noisy file"):
        for engine in ENGINES:
            # Each mode against faster-whisper's same mode.
            fw = rows.get(("faster-whisper batched" if "batched" in engine else "faster-whisper", inp))
            r = rows.get((engine, inp))
            if r is None:
                continue
            head = f"| {engine} | {inp} | {seconds[inp]:.1f} |"
            if "failed" in r:
                lines.append(f"{head} {md_escape(engine + ': failed (' + r['failed'] + ')')} | — | — | — | — | — |")
                continue
            if engine.startswith("faster-whisper"):
                ratio = "1.00, 1.00"
            elif fw and "failed" not in fw:
                ratio = f"{r['wall'] / fw['wall']:.2f}, {r['rss'] / fw['rss']:.2f}"
            else:
                ratio = "—"
            noise = str(r["noise_words"]) if inp == "noisy file" else "—"
            lines.append(f"{head} {100 * r['wer']:.1f} % | {r['wall']:.2f} | {r['rss']:.0f} | {ratio} | {r['cpu']:.2f} "
                         f"| {noise} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(prog="benches/compare_faster_whisper", description=__doc__)
    p.add_argument("--runs", type=int, default=3, help="fresh processes per engine and input (median wall)")
    p.add_argument("--model", default="models/tiny.en", help="model directory (CTranslate2 model.bin), both engines")
    p.add_argument("--only", choices=["long", "clips", "noisy"], help="run one input set only")
    p.add_argument("--scribe-bin", default=os.environ.get("SCRIBE_BIN", str(REPO / "target/release/scribe")))
    p.add_argument("--data", default=os.environ.get("SCRIBE_SPEECH_DATA", str(DEFAULT_DATA)),
                   help="speech directory with manifest.json")
    p.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ", ".join(ENGINES))
    args = p.parse_args()
    if args.runs < 1:
        p.error("--runs must be >= 1")
    model = pathlib.Path(args.model)
    if not model.is_absolute():
        model = REPO / model
    if not (model / "model.bin").exists():
        p.error(f"{model}/model.bin not found (models/fetch tiny.en)")
    cache = REPO / ".cache"
    index = clips.build(args.data, cache / "bench-clips")
    normalize = english_text_normalizer()
    engines = {
        "faster-whisper": run_faster_whisper,
        "faster-whisper batched": lambda m, f, w: run_faster_whisper(m, f, w, batched=BATCH_SIZE),
        "scribe": lambda m, f, w: run_scribe(args, m, f, w),
        "scribe batched": lambda m, f, w: run_scribe(args, m, f, w, batched=True),
    }
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    inputs = []
    if args.only in (None, "clips"):
        inputs.append(("clips pooled", index["clips"]))
    if args.only in (None, "long"):
        inputs.append(("long file", [index["long"]]))
    if args.only in (None, "noisy"):
        inputs.append(("noisy file", [index["noisy_long"]]))

    load = os.getloadavg()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for inp, items in inputs:
            for engine in wanted:
                print(f"{engine} on {inp} ({len(items)} file(s))", file=sys.stderr)
                rows[(engine, inp)] = bench(engine, engines[engine], args, model, items, pathlib.Path(tmp), normalize)
    md = table(rows, args, index, load)
    print(md)
    (cache / "bench-results.md").write_text(md)
    detail = {f"{e} / {i}": r for (e, i), r in rows.items()}
    (cache / "bench-results.json").write_text(json.dumps(detail, indent=1))
    print(f"wrote {cache / 'bench-results.md'} (transcripts in bench-results.json)", file=sys.stderr)


if __name__ == "__main__":
    main()
