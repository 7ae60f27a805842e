"""The official RunPod SDK worker with a trivial handler, for comparing its requests with
scribe-worker's on the same fake job server (worker/tests/job_loop.rs)."""
import runpod


def handler(job):
    return {"echo": job["input"]}


runpod.serverless.start({"handler": handler})
