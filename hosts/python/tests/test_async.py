"""The asyncio twin: same answers, never blocks the event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import linear_oauth as lo
from conftest import Store, TestServer


def test_resolve_async_refreshes_without_blocking_the_loop(
    server: TestServer, store: Store, make_resolver: Any
) -> None:
    s = store.seed("acme", 10)
    server.faults(latency_ms=500)
    r = make_resolver()

    async def main() -> tuple[lo.ResolvedToken, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        t = await r.resolve_async(s.workspace_id)
        done.set()
        await task
        return t, ticks

    t, ticks = asyncio.run(main())
    assert t.access_token != s.access
    assert store.secret(s.secret_id)["access_token"] == t.access_token
    assert ticks >= 20, f"the event loop ran only {ticks} times during a 500 ms refresh"


def test_a_cached_token_answers_without_a_thread_hop(
    server: TestServer, store: Store, make_resolver: Any
) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()

    async def main() -> None:
        first = await r.resolve_secret_async(s.secret_id)
        assert first.access_token == s.access
        pending = r.resolve_secret_async(s.secret_id)
        assert isinstance(pending, asyncio.Future) and pending.done(), "already resolved, no thread involved"
        assert (await pending).access_token == s.access
        fut = r.resolve_async(s.workspace_id)
        assert (await fut).access_token == s.access
        assert r.resolve_async(s.workspace_id).done()

    asyncio.run(main())


def test_errors_propagate_as_typed_exceptions(server: TestServer, store: Store, make_resolver: Any) -> None:
    r = make_resolver()
    s = store.seed("acme", -5)  # expired: a 503 cannot be served around
    server.faults(fail_next={"count": 3, "status": 503})

    async def main() -> None:
        with pytest.raises(lo.NotRegistered):
            await r.resolve_async("org-nope")
        with pytest.raises(lo.TokenEndpointError) as info:
            await r.resolve_secret_async(s.secret_id)
        assert info.value.status == 503
        with pytest.raises(lo.InvalidInput):
            await r.resolve_async("")

    asyncio.run(main())


def test_gathered_resolves_refresh_once(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 10)
    other = store.seed("other", 3600)
    server.faults(latency_ms=200)
    r = make_resolver()

    async def main() -> list[lo.ResolvedToken]:
        return await asyncio.gather(
            *[r.resolve_async(s.workspace_id) for _ in range(32)],
            r.resolve_async(other.workspace_id),
        )

    tokens = asyncio.run(main())
    assert len({t.access_token for t in tokens[:32]}) == 1
    assert tokens[0].access_token != s.access
    assert tokens[32].access_token == other.access
    assert server.counters()["token_requests"] == 1


def test_a_cancelled_await_leaves_the_refresh_to_finish(
    server: TestServer, store: Store, make_resolver: Any
) -> None:
    s = store.seed("acme", 10)
    server.faults(latency_ms=400)
    r = make_resolver()

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(r.resolve_async(s.workspace_id), 0.05)
        await asyncio.sleep(0.8)  # the refresh completes in the background, unobserved

    asyncio.run(main())
    t = r.resolve(s.workspace_id)
    assert store.secret(s.secret_id)["access_token"] == t.access_token != s.access
    assert server.counters()["token_requests"] == 1, "the rotated pair was written back, not lost"


def test_needs_a_running_loop(store: Store, make_resolver: Any) -> None:
    with pytest.raises(RuntimeError):
        make_resolver().resolve_async("org-x")


def test_a_closed_loop_does_not_break_the_background_thread(
    server: TestServer, store: Store, make_resolver: Any
) -> None:
    s = store.seed("acme", 10)
    server.faults(latency_ms=300)
    r = make_resolver()
    loop = asyncio.new_event_loop()

    async def start() -> None:
        r.resolve_async(s.workspace_id)  # never awaited

    loop.run_until_complete(start())
    loop.close()
    time.sleep(0.6)
    assert r.resolve(s.workspace_id).access_token == store.secret(s.secret_id)["access_token"]
