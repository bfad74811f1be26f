"""Fixtures for the email parsing tests."""

from __future__ import annotations

import pytest

from tests.email import corpus


@pytest.fixture(scope="session")
def big_message() -> bytes:
    """Built once per session at run time; the >20 MB file is never committed."""
    return corpus.big_message()
