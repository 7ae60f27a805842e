"""Extract WhisperX's shipped Slaney mel filterbanks into raw little-endian f32 test fixtures.

Usage (from the package root, with numpy installed, e.g. in .cache/venv):
    pip download --no-deps whisperx==3.8.6 -d /tmp/wx
    python tests/reference/extract_mel_filters.py /tmp/wx/whisperx-3.8.6-py3-none-any.whl

Writes tests/data/mel_filters_{80,128}.f32, each row-major [n_mels, 201].
"""
import hashlib
import io
import pathlib
import sys
import zipfile

import numpy as np

NPZ_IN_WHEEL = "whisperx/assets/mel_filters.npz"


def main() -> None:
    wheel = pathlib.Path(sys.argv[1])
    out_dir = pathlib.Path(__file__).resolve().parent.parent / "data"
    with zipfile.ZipFile(wheel) as whl:
        npz_bytes = whl.read(NPZ_IN_WHEEL)
    print(f"{NPZ_IN_WHEEL}: sha256 {hashlib.sha256(npz_bytes).hexdigest()}")
    with np.load(io.BytesIO(npz_bytes)) as npz:
        for n_mels in (80, 128):
            filters = npz[f"mel_{n_mels}"]
            assert filters.shape == (n_mels, 201), filters.shape
            path = out_dir / f"mel_filters_{n_mels}.f32"
            filters.astype("<f4").tofile(path)
            print(f"{path.name}: {filters.shape} {filters.dtype}")


if __name__ == "__main__":
    main()
