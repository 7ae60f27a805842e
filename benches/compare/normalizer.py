"""openai-whisper's EnglishTextNormalizer, without importing `whisper` (which imports torch).

openai-whisper is installed with --no-deps (see requirements.txt); `whisper/__init__.py` needs
torch, so the `whisper/normalizers` sub-package is loaded on its own from its files. It needs only
`regex` and `more-itertools`.

Why not the `whisper-normalizer` PyPI package: 0.1.15 is not a faithful copy. Its
EnglishTextNormalizer adds rules of its own (kinda -> kind of, sorta -> sort of,
dunno -> do not know, 'cause -> because), so WERs computed with it are not comparable with the
numbers that openai/whisper, faster-whisper and WhisperX publish.
"""

import importlib.util
import pathlib
import sys

_MODULE = "_openai_whisper_normalizers"


def english_text_normalizer():
    """A fresh openai-whisper EnglishTextNormalizer (callable: str -> str)."""
    if _MODULE not in sys.modules:
        spec = importlib.util.find_spec("whisper")  # locates the package without running it
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("openai-whisper is not installed (pip install --no-deps openai-whisper)")
        pkg = pathlib.Path(spec.submodule_search_locations[0]) / "normalizers"
        sub = importlib.util.spec_from_file_location(
            _MODULE, pkg / "__init__.py", submodule_search_locations=[str(pkg)]
        )
        module = importlib.util.module_from_spec(sub)
        sys.modules[_MODULE] = module
        sub.loader.exec_module(module)
    return sys.modules[_MODULE].EnglishTextNormalizer()
