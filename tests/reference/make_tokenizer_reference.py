"""Token ids of openai-whisper's own tokenizer (tiktoken) for a corpus of prompt-like strings.

Writes tests/reference/data/tokenizer_encode.json, which tests/tokenizer_reference.rs compares
against Scribe's encoder on models/tiny.en (gpt2 vocabulary) and models/base (multilingual).

Needs only tiktoken and openai-whisper's pure-Python tokenizer module; whisper/__init__.py
imports torch, so the module is loaded by file path. Either the reference venv
(tests/reference/setup_venv.sh) or a light one works:

    python3 -m venv /tmp/tk && /tmp/tk/bin/pip install tiktoken==0.14.0
    /tmp/tk/bin/pip download --no-deps openai-whisper==20250625 -d /tmp/ow
    (cd /tmp/ow && tar xzf openai_whisper-20250625.tar.gz)      # or unzip the wheel
    /tmp/tk/bin/python tests/reference/make_tokenizer_reference.py /tmp/ow/openai_whisper-20250625/whisper

With no argument the `whisper` package found on sys.path is used (its directory, not import).
"""

import importlib.util
import json
import random
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/reference/data/tokenizer_encode.json"
MANIFEST = ROOT.parent / "shared/data/speech/manifest.json"

HAND_WRITTEN = [
    '"quoted" text',
    "  two  spaces",
    " leading space",
    "trailing space ",
    "Hello, world!",
    "it's I'll we've they're I'm he'd",
    "Mr. O'Neil's dog's bowl",
    "naïve café résumé",
    "東京は日本の首都です。",
    "Привет, как дела?",
    "Γειά σου κόσμε",
    "مرحبا بالعالم",
    "1234567 numbers 3.14159 and 1,000,000",
    "tab\tand\nnewline\r\nand crlf",
    " 'single' quotes",
    "--dash -- and—em dash",
    "ok!!! ??? ...",
    "\u00a0non-breaking\u00a0space",
    "emoji 😀🎉 mixed",
    "hello   ",
    "x  y   z    w",
    "ÜBER straße",
    "Scribe, WhisperX, faster-whisper and CTranslate2.",
    "Hotwords: PyTorch, CUDA, cuBLAS, RunPod",
    "$5.00 & 50% off @home #tag",
    "C'est la vie, n'est-ce pas ?",
    "¿Dónde está la biblioteca?",
    "Ich möchte ein Bier, bitte.",
    "   ",
    "",
    "a",
    "\n\n",
]


def load_tokenizer_module(whisper_dir: Path):
    pkg = types.ModuleType("whisper")
    pkg.__path__ = [str(whisper_dir)]
    sys.modules["whisper"] = pkg
    spec = importlib.util.spec_from_file_location("whisper.tokenizer", whisper_dir / "tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["whisper.tokenizer"] = module
    spec.loader.exec_module(module)
    return module


def corpus():
    texts = list(HAND_WRITTEN)
    texts += [entry["text"] for entry in json.loads(MANIFEST.read_text()) if entry.get("text")]
    # Random mixtures of letters, digits, punctuation and spaces from several scripts.
    rng = random.Random(20261124)
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 ,.'\"!?-  \t\néüßñçøåæœ") + list("日本語ДЖЩΩλعب😀")
    for _ in range(200):
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    return texts


def main():
    if len(sys.argv) > 1:
        whisper_dir = Path(sys.argv[1])
    else:
        whisper_dir = Path(importlib.util.find_spec("whisper").submodule_search_locations[0])
    tok = load_tokenizer_module(whisper_dir)
    import tiktoken

    texts = corpus()
    out = {
        "generator": "tests/reference/make_tokenizer_reference.py",
        "tiktoken": tiktoken.__version__,
        "texts": texts,
        "gpt2": [tok.get_tokenizer(multilingual=False).encode(t) for t in texts],
        "multilingual": [tok.get_tokenizer(multilingual=True).encode(t) for t in texts],
    }
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=0))
    print(f"wrote {OUT}: {len(texts)} texts")


if __name__ == "__main__":
    main()
