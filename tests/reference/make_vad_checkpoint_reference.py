#!/usr/bin/env python3
"""Reference for tests/vad_checkpoint.rs: the tensors of WhisperX's VAD checkpoint
(whisperx==3.8.6 whisperx/assets/pytorch_model.bin) read by Python's own pickle machinery with
stub classes (no torch needed): shape, sum and the first and last values of every tensor of the
state dict, and the Lightning hyper-parameters.

    python3 tests/reference/make_vad_checkpoint_reference.py models/vad/whisperx-vad-segmentation.bin
"""
import hashlib, json, pickle, struct, sys, zipfile

path = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "tests/reference/data/vad_checkpoint.json"
z = zipfile.ZipFile(path)
pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
prefix = pkl[: -len("data.pkl")]


class Storage:
    def __init__(self, key, fmt):
        self.key, self.fmt = key, fmt


class Stub:
    """Any metadata class: accepts whatever it is given, does nothing."""

    def __init__(self, *a, **k):
        pass

    def __setstate__(self, state):
        self.state = state


def rebuild(storage, offset, size, stride, *rest):
    raw = z.read(prefix + "data/" + storage.key)
    n = len(raw) // 4
    flat = struct.unpack("<%df" % n, raw)
    values = []
    index = [0] * len(size)
    total = 1
    for d in size:
        total *= d
    for _ in range(total):
        values.append(flat[offset + sum(i * s for i, s in zip(index, stride))])
        for d in reversed(range(len(size))):
            index[d] += 1
            if index[d] < size[d]:
                break
            index[d] = 0
    return {"shape": list(size), "values": values}


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild
        if module == "torch" and name == "FloatStorage":
            return "f32"
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        if module in ("__builtin__", "builtins") and name in ("dict", "list"):
            return {"dict": dict, "list": list}[name]
        if module in ("__builtin__", "builtins") and name == "long":
            return int
        if module == "collections" and name == "defaultdict":
            import collections
            return collections.defaultdict
        return type(name, (Stub,), {})

    def persistent_load(self, pid):
        return Storage(pid[2], pid[1])


obj = Unpickler(__import__("io").BytesIO(z.read(pkl))).load()
tensors = {}
for name, t in obj["state_dict"].items():
    v = t["values"]
    tensors[name] = {"shape": t["shape"], "sum": sum(v), "first": v[:4], "last": v[-1]}
ref = {
    "checkpoint_sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
    "hyper_parameters": obj["hyper_parameters"],
    "tensors": tensors,
}
json.dump(ref, open(out, "w"), indent=1, sort_keys=True)
print(f"{len(tensors)} tensors -> {out}")
