"""A peer users know: moto's server (``moto[server]``, werkzeug underneath), for DynamoDB.

``python -m benchmarks.moto_server`` prints its URL, then serves until stdin closes.
"""

from __future__ import annotations

import sys

from moto.server import ThreadedMotoServer


def main() -> int:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
