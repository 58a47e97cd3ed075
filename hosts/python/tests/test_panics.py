"""A panic inside the host reaches Python as `InternalError` (an `Exception`),
never as `PanicException` (a `BaseException` that `except Exception` misses)
and never as a Future left pending forever.

The panic is forced with the host's test hook: in debug builds only (this
suite builds with `--profile dev`; release builds compile it out), the
environment variable LINEAR_OAUTH_TEST_PANIC_ID=ENTRY:ID makes that host entry
point panic when called with that id."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest

import linear_oauth as lo
from conftest import Store

HOOK = "LINEAR_OAUTH_TEST_PANIC_ID"


@pytest.fixture
def panic_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def set_hook(entry: str, id: str) -> None:
        monkeypatch.setenv(HOOK, f"{entry}:{id}")

    yield set_hook
    monkeypatch.delenv(HOOK, raising=False)


def test_a_panic_in_resolve_async_fails_the_future(store: Store, make_resolver: Any, panic_on: Any) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()
    panic_on("resolve", s.workspace_id)

    async def main() -> None:
        # The resolve runs on a thread of its own; a panic there used to end
        # the thread and leave this future pending (wait_for guards the hang).
        with pytest.raises(lo.InternalError, match="panicked"):
            await asyncio.wait_for(r.resolve_async(s.workspace_id), timeout=30)

    asyncio.run(main())
    # The resolver still works.
    panic_on("none", "")
    assert r.resolve(s.workspace_id).access_token == s.access


def test_a_panic_in_cached_or_invalidate_is_internal_error(store: Store, make_resolver: Any, panic_on: Any) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()
    panic_on("cached", s.workspace_id)
    for call in (lambda: r.cached(s.workspace_id), lambda: r.resolve(s.workspace_id)):
        try:
            call()
        except Exception as e:  # noqa: BLE001 - the point: a plain Exception catches it
            assert isinstance(e, lo.InternalError), repr(e)
        else:
            pytest.fail("no error")
    panic_on("invalidate", s.workspace_id)
    with pytest.raises(lo.InternalError):
        r.invalidate(s.workspace_id)
    panic_on("cached_secret", s.secret_id)
    with pytest.raises(lo.InternalError):
        r.cached_secret(s.secret_id)


def test_a_panic_while_opening_is_internal_error(store: Store, make_resolver: Any, panic_on: Any) -> None:
    panic_on("new", store.uri)
    with pytest.raises(lo.InternalError):
        make_resolver()
