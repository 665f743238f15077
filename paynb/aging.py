"""Age buckets of the stale-invoice report (20-30, 31-60, ... days). Pure and I/O-free, so both the report
(:mod:`paynb.ops.stale`) and the sandbox generator's expected figures use the same edges without the
sandbox importing ops."""

from __future__ import annotations

# upper edges (inclusive, in whole days) of the age buckets after the threshold
BUCKET_EDGES = (30, 60, 90, 180)


def age_buckets(days: int) -> list[tuple[str, int, int | None]]:
    """Labels and [low, high] day ranges of the buckets for a threshold of ``days``."""
    buckets: list[tuple[str, int, int | None]] = []
    low = days
    for edge in BUCKET_EDGES:
        if edge >= low:
            buckets.append((f"{low}-{edge}", low, edge))
            low = edge + 1
    buckets.append((f">{low - 1}" if buckets else f">={days}", low, None))
    return buckets


def bucket_label(age_days: int, days: int) -> str:
    for label, low, high in age_buckets(days):
        if age_days >= low and (high is None or age_days <= high):
            return label
    raise ValueError(f"age {age_days} is below the threshold {days}")
