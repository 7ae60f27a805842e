#!/usr/bin/env python3
"""Regenerates corpus/: damaged variants of the fixtures in this directory (truncated, bit-flipped,
byte-overwritten), deterministic (fixed seed). tests/audio_formats.rs replays every file through
the decoder: each must decode or fail with an error naming it, never panic. Add files found by
fuzzing here too (any name; the extension is the format hint the decoder gets)."""
import os, random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
# Headers and the first packets are where parsers break; keep entries small.
MAX_BYTES = 6144
rng = random.Random(20261124)
os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(os.path.join(OUT, f))
for name in sorted(os.listdir(HERE)):
    stem, ext = os.path.splitext(name)
    if not stem.startswith("hello") or ext in (".py", ".sh"):
        continue
    data = open(os.path.join(HERE, name), "rb").read()[:MAX_BYTES]
    for i in range(4):  # truncations, inside the header and inside the first packets
        cut = rng.randrange(1, len(data))
        open(os.path.join(OUT, f"{stem}-cut{i}{ext}"), "wb").write(data[:cut])
    for i in range(6):  # bit flips and overwritten bytes, mostly in the first 512 bytes
        b = bytearray(data)
        span = 512 if i % 2 == 0 else len(b)
        for _ in range(rng.randrange(1, 9)):
            j = rng.randrange(min(span, len(b)))
            if rng.random() < 0.5:
                b[j] ^= 1 << rng.randrange(8)
            else:
                b[j] = rng.randrange(256)
        open(os.path.join(OUT, f"{stem}-flip{i}{ext}"), "wb").write(bytes(b))
print(len(os.listdir(OUT)), "corpus files,", sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT)), "bytes")
