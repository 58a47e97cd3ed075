"""The shape of ``Resolver.metrics()``: one key per row of the host's metrics
table (``linear_oauth_host::METRICS``; the README's Metrics section says what
each counts). Imported for type annotations only; ``import linear_oauth``
does not load it."""

from __future__ import annotations

from typing import TypedDict


class LatencyBucket(TypedDict):
    #: Upper bound in ms (inclusive); None for the bucket of everything slower.
    le_ms: int | None
    count: int


class Timing(TypedDict):
    count: int
    sum_ms: int
    #: 0 while ``count`` is 0.
    min_ms: int
    max_ms: int
    buckets: list[LatencyBucket]


class Metrics(TypedDict):
    resolves_cached: int
    resolves_uncached: int
    refreshes_ok: int
    refreshes_invalid_grant_recovered: int
    refreshes_reauthorization_required_invalid_grant: int
    refreshes_reauthorization_required_invalid_client: int
    refreshes_served_stale: int
    refreshes_rate_limited: int
    refreshes_failed: int
    lease_waits: int
    lease_takeovers: int
    write_back_retries: int
    write_back_failures: int
    refresh_latency_ms: Timing
