"""Token look-ups are cached briefly for hits only, so new keys work at once and old ones expire."""

from __future__ import annotations

from webui.auth import TokenCache


async def test_hits_are_cached_until_they_expire(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("webui.auth.time.monotonic", lambda: clock[0])
    loads: list[str] = []

    async def load(token_hash: str) -> str | None:
        loads.append(token_hash)
        return "principal" if token_hash == "known" else None

    cache: TokenCache[str] = TokenCache(ttl=5)
    assert await cache.get("known", load) == "principal"
    assert await cache.get("known", load) == "principal"
    assert loads == ["known"]
    assert await cache.get("unknown", load) is None
    assert await cache.get("unknown", load) is None
    assert loads == ["known", "unknown", "unknown"]  # misses are never cached
    clock[0] += 5.1
    assert await cache.get("known", load) == "principal"
    assert loads[-1] == "known" and len(loads) == 4
