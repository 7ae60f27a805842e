"""Write a WAV file that is another one repeated until it lasts at least SECONDS.

    python3 scripts/repeat_wav.py OUT SRC SECONDS

The long files of the whole-pipeline benchmarks (benches/whole_job.sh, gpu-pack/run.sh bench)
are a dialogue repeated; the standard library's wave module only, so the GPU pack's machine
needs nothing beyond python3.
"""

import sys
import wave


def main(out: str, src: str, seconds: float) -> None:
    try:
        with wave.open(src) as w:
            params, frames = w.getparams(), w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as e:
        sys.exit(f"{src}: not a readable WAV file ({str(e) or type(e).__name__})")
    if params.nframes == 0:
        sys.exit(f"{src} holds no audio")
    repeats = max(1, int(-(-seconds * params.framerate // params.nframes)))
    with wave.open(out, "wb") as w:
        w.setparams(params)
        w.writeframes(frames * repeats)
    print(f"{out}: {src} x {repeats} = {repeats * params.nframes / params.framerate:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
