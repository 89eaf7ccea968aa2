"""A peer users know: moto's server (``moto[server]``, werkzeug underneath), for DynamoDB.

``python -m benchmarks.moto_server`` prints its URL, then serves until stdin closes.
"""

from __future__ import annotations

from moto.server import ThreadedMotoServer

from .common import serve_until_stdin_closes


def main() -> int:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return serve_until_stdin_closes(f"http://{host}:{port}", server.stop)


if __name__ == "__main__":
    raise SystemExit(main())
