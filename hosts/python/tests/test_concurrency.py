"""Python threads and the extension: a refresh in flight does not hold the GIL.
(How many refreshes concurrent callers cause is the host's behaviour, tested in
crates/host/tests and the CLI's race suite.)"""

from __future__ import annotations

import threading
import time
from typing import Any

from conftest import Store, TestServer


def test_the_gil_is_released_while_a_refresh_waits(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 10)
    server.faults(latency_ms=600)
    r = make_resolver()
    th = threading.Thread(target=r.resolve, args=(s.workspace_id,))
    ticks = 0
    th.start()
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:  # pure Python work while the refresh is in flight
        ticks += 1
    assert th.is_alive(), "the refresh should still be in flight"
    th.join()
    assert ticks > 10_000, f"main thread starved: {ticks} iterations in 0.4 s"
