"""``--state FILE``: the fake's tenants kept in a snapshot file across restarts.

Loaded at start when the file exists; a file that cannot be read, is not a snapshot or is from
an unknown format version stops the start (and is never overwritten). Saved atomically (see
`snapshot.write_file`).
"""

from __future__ import annotations

import glob
import os

from . import snapshot


class StateFile:
    def __init__(self, path, registry) -> None:
        self.path = os.fspath(path)
        self.registry = registry

    def load(self) -> int:
        """Restore the file's tenants; returns how many (0 when there is no file yet). Raises
        ValueError with a one-line message for a file that must not be used (or overwritten)."""
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ValueError(f"{self.path}: the folder {folder} does not exist")
        if os.path.isdir(self.path):
            raise ValueError(f"{self.path}: is a folder; name a file")
        if not os.path.exists(self.path):
            return 0
        try:
            doc = snapshot.read_file(self.path)
            restored = snapshot.restore(self.registry, doc)
        except snapshot.SnapshotError as exc:
            raise ValueError(str(exc).replace("\n", " ")) from None
        for stale in glob.glob(os.path.join(folder, snapshot.temp_prefix(self.path) + "*")):
            try:  # what a save cut off by a kill left behind
                os.unlink(stale)
            except OSError:
                pass
        return len(restored)

    def save(self) -> None:
        snapshot.write_file(self.path, snapshot.dump_all(self.registry))
