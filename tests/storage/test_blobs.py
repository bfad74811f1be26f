"""File blob store: content-addressed, idempotent, refuses names that are not SHA-256."""

from __future__ import annotations

from pathlib import Path

import pytest

from inbox.errors import NotFound, ValidationError
from storage.blobs import FileBlobStore, sha256_of


async def test_put_get_and_deduplicate(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    data = "счёт №15".encode() * 1000
    digest = await blobs.put(data)
    assert digest == sha256_of(data)
    assert await blobs.put(data) == digest
    assert await blobs.get(digest) == data and await blobs.exists(digest)
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].name == digest[2:]
    with pytest.raises(NotFound):
        await blobs.get("0" * 64)


async def test_path_traversal_names_are_refused(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    for name in ("../../etc/passwd", "AB" * 32, "a" * 63):
        with pytest.raises(ValidationError):
            await blobs.get(name)
