"""Starting the servers under test as child processes and reading the URL they print."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAKE = [sys.executable, "-m", "mock_planhat", "--port", "0", "--quiet"]  # the default server
FAKE_WERKZEUG = [*FAKE, "--server", "werkzeug"]  # the server before issue 14
FAKE_NO_BUSY_POLL = [*FAKE, "--busy-poll", "0"]  # waitress whose loop sleeps at once
PEER = [sys.executable, "-m", "benchmarks.empty_server"]
MOTO = [sys.executable, "-m", "benchmarks.moto_server"]
_URL = re.compile(r"(http://127\.0\.0\.1:\d+)")


def start(command: list[str]) -> tuple[subprocess.Popen, str]:
    """Start a server child; returns it and the URL from the first line it prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = child.stdout.readline()
    found = _URL.search(line)
    if not found:
        stop(child)
        raise RuntimeError(f"{' '.join(command)}: no URL in {line!r}")
    return child, found.group(1)


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()  # the fake stops on SIGTERM; the peer too
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=10)
    for stream in (child.stdin, child.stdout):
        if stream:
            stream.close()


@contextmanager
def running(command: list[str]):
    child, url = start(command)
    try:
        yield url
    finally:
        stop(child)
