"""Drive scribe-worker's local API with the official RunPod client (runpod on PyPI).

Usage: runpod_client.py PORT SHORT_AUDIO_URL LONG_AUDIO_URL
Prints one JSON object with what each call returned; the Rust test asserts on it.
"""
import json
import sys
import time

import runpod

port, short_url, long_url = sys.argv[1], sys.argv[2], sys.argv[3]
runpod.api_key = "local-test-key"
runpod.endpoint_url_base = f"http://127.0.0.1:{port}/v2"
endpoint = runpod.Endpoint("scribe-local")
out = {}

# run_sync: POST /runsync, then GET /status/{id} until done.
out["run_sync"] = endpoint.run_sync({"audio_file": short_url, "beam_size": 1}, timeout=120)

# run + status + output: POST /run, GET /status/{id}.
job = endpoint.run({"audio_file": short_url})
out["run_first_status"] = job.status()
out["run_output"] = job.output(timeout=120)
out["run_final_status"] = job.status()

# A bad input fails the job; the client sees FAILED and the error.
bad = endpoint.run({"audio_file": "ftp://example.invalid/a.wav"})
deadline = time.time() + 60
while bad.status() not in ("COMPLETED", "FAILED", "CANCELLED") and time.time() < deadline:
    time.sleep(0.2)
out["bad_status"] = bad.status()
out["bad_error"] = bad._fetch_job().get("error")

# cancel: a long job, then one queued behind it; cancel the queued one and then the long one.
long_job = endpoint.run({"audio_file": long_url})
queued = endpoint.run({"audio_file": short_url})
out["cancel_queued"] = queued.cancel()
out["cancel_long"] = long_job.cancel()
out["cancelled_status"] = endpoint.rp_client.get(f"scribe-local/status/{queued.job_id}")["status"]

out["health"] = endpoint.health()
out["purge"] = endpoint.purge_queue()
print(json.dumps(out))
