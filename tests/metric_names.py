"""Prometheus naming conventions, checked on a real scrape with the client's own parser.

https://prometheus.io/docs/practices/naming/: snake case with an application
prefix, base units (seconds, bytes, ratios) named as a suffix, ``_total`` on
counters and on nothing else.
"""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["check_metric_names", "families"]

_NAME = re.compile(r"^fogverse_[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_NOT_BASE_UNITS = frozenset({
    "ms", "msec", "millis", "milliseconds", "us", "microseconds", "ns", "nanoseconds",
    "minutes", "hours", "days", "kb", "mb", "gb", "kilobytes", "megabytes", "gigabytes",
    "percent", "pct", "celsius_percent",
})
_TIMED = ("latency", "duration", "elapsed")
_BASE_UNITS = ("_seconds", "_bytes")


def families(text: str) -> dict[str, str]:
    """Family name -> type, as the Prometheus client parses the exposition."""
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def check_metric_names(text: str) -> list[str]:
    """Every way the scraped metrics break the conventions; empty when they keep them."""
    problems = []
    for family in text_string_to_metric_families(text):
        name, kind = family.name, family.type
        if not _NAME.match(name):
            problems.append(f"{name}: not fogverse_ snake case")
        if _NOT_BASE_UNITS & set(name.split("_")):
            problems.append(f"{name}: not in base units (seconds, bytes, ratio)")
        if not family.documentation:
            problems.append(f"{name}: no help text")
        if any(word in name for word in _TIMED) and not name.endswith("_seconds"):
            problems.append(f"{name}: a time without _seconds")
        samples = {s.name for s in family.samples}
        if kind == "counter":
            wrong = {s for s in samples if not s.endswith(("_total", "_created"))}
            if wrong:
                problems.append(f"{name}: counter samples without _total: {sorted(wrong)}")
        elif kind == "histogram":
            if not name.endswith(_BASE_UNITS):
                problems.append(f"{name}: histogram not in seconds or bytes")
            if samples and not {f"{name}_bucket", f"{name}_count", f"{name}_sum"} <= samples:
                problems.append(f"{name}: histogram without _bucket/_count/_sum")
        elif name.endswith(("_total", "_count", "_sum", "_bucket")):
            problems.append(f"{name}: a {kind} named like a counter or histogram part")
    return problems
