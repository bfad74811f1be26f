"""Content-addressed blobs (attachments, raw quarantined mail) behind a small port.

A blob's name is the SHA-256 of its bytes, so storing the same attachment twice costs nothing
and a stored blob can never change. Files live under ``<data_dir>/blobs/ab/cdef…``; GridFS will
serve MongoDB deployments behind the same port.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from inbox.errors import NotFound, ValidationError

__all__ = ["BlobStore", "FileBlobStore", "sha256_of"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Stores ``data`` durably; returns its SHA-256 (hex)."""
        ...

    async def get(self, sha256: str) -> bytes: ...

    async def exists(self, sha256: str) -> bool: ...


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValidationError("not a SHA-256 blob name")
        return self.root / sha256[:2] / sha256[2:]

    async def put(self, data: bytes) -> str:
        digest = sha256_of(data)
        path = self._path(digest)
        if not path.exists():
            await asyncio.to_thread(_write_atomically, path, data)
        return digest

    async def get(self, sha256: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(sha256).read_bytes)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {sha256} not found") from exc

    async def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()


def _write_atomically(path: Path, data: bytes) -> None:
    """Written to a temporary file, synced, then renamed: a crash leaves the blob whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
