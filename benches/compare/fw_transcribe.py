"""One faster-whisper process: load the model, transcribe FILES, write
{file: {"text", "segments": [[start, end, text], ...]}} as JSON. `--batched N` runs faster-whisper's
BatchedInferencePipeline (its Silero VAD, batches of N), else sequential decoding without VAD.

Run as a fresh process per measurement (benches/compare/bench.py times it and reads its peak RSS),
so model load and Python start-up are part of the wall time, as they are for `scribe`.
"""

import argparse
import json
import os
import sys

# The batched pipeline's Silero VAD runs on onnxruntime, whose telemetry (OneCollector) otherwise
# may look up mobile.events.data.microsoft.com as a process ends (scripts/network-audit saw it):
# a benchmark talks to no one. The variable is read when the library starts; the call covers
# builds that only know the API.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
import onnxruntime  # noqa: E402
from faster_whisper import BatchedInferencePipeline, WhisperModel  # noqa: E402

onnxruntime.disable_telemetry_events()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="directory holding model.bin (CTranslate2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--beam_size", type=int, default=5)
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--batched", type=int, default=0, help="batch size of the batched pipeline (0: sequential)")
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    model = WhisperModel(a.model, device="cpu", compute_type="int8", cpu_threads=a.threads)
    result = {}
    for path in a.files:
        if a.batched:
            pipeline = BatchedInferencePipeline(model=model)
            segments, _info = pipeline.transcribe(path, batch_size=a.batched, beam_size=a.beam_size, language="en")
        else:
            segments, _info = model.transcribe(path, beam_size=a.beam_size, language="en", vad_filter=False)
        segments = [[s.start, s.end, s.text.strip()] for s in segments]  # the generator decodes here
        result[path] = {"text": " ".join(s[2] for s in segments), "segments": segments}
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
