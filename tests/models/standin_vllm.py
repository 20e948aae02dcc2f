"""A stand-in for the ``vllm`` program, for machines without a GPU.

``python standin_vllm.py serve MODEL_DIR --served-model-name NAME --host H --port P ...``
answers like vLLM's OpenAI server: ``/health``, ``/v1/models`` (empty until
``STANDIN_LOAD_SECONDS`` have passed, as while weights load), ``/metrics`` with vLLM's gauge
names, and a fixed chat completion. ``STANDIN_EXIT=N`` exits with N at once after a message;
``STANDIN_RECORD=FILE`` writes the argv and the offline variables it was started with.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="%(name)s"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="%(name)s"} 1.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="%(name)s"} 0.25
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_sum{model_name="%(name)s"} 3.0
vllm:time_to_first_token_seconds_count{model_name="%(name)s"} 10.0
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("model_dir")
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args, rest = parser.parse_known_args()
    record = os.environ.get("STANDIN_RECORD")
    if record:
        offline = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "VLLM_NO_USAGE_STATS")}
        with open(record, "w") as fh:
            json.dump({"argv": sys.argv[1:], "env": offline}, fh)
    code = int(os.environ.get("STANDIN_EXIT", "0") or 0)
    if code:
        print("RuntimeError: CUDA out of memory while loading weights", flush=True)
        return code
    loaded_at = time.monotonic() + float(os.environ.get("STANDIN_LOAD_SECONDS", "0"))
    name = args.served_model_name
    print(f"INFO: serving {name} from {args.model_dir} ({' '.join(rest)})", flush=True)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *a: object) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, b"")
            elif self.path == "/v1/models":
                data = [{"id": name, "object": "model"}] if time.monotonic() >= loaded_at else []
                self._send(200, json.dumps({"object": "list", "data": data}).encode())
            elif self.path == "/metrics":
                self._send(200, (METRICS % {"name": name}).encode(), "text/plain")
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            reply = {
                "id": "cmpl-1",
                "object": "chat.completion",
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            }
            self._send(200, json.dumps(reply).encode())

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
