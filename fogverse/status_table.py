"""A master's ``/status`` as plain text tables, readable in 100 columns.

:func:`render_status` takes the JSON the master serves (a plain dict) and
returns the text ``fogverse status`` prints. It is a pure function of that
dict, so a demo or a test can render what it fetched, or a master's own
``to_json(master.status())``. Each part is a :class:`Section`; a feature that
adds a key to ``/status`` adds a section to :data:`SECTIONS` (or passes its
own list) and the rest stays as it is. A key that is missing shows nothing,
so an older master still renders.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SECTIONS", "Section", "Table", "format_table", "render_status"]

Status = Mapping[str, Any]

DEFAULT_WIDTH = 100
RECENT_DECISIONS = 8
"""Scale actions shown (the newest), besides each stage's latest decision."""


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[object]]
    notes: Sequence[str] = ()
    """Lines too long for a cell (reasons), printed wrapped under the table."""


@dataclass(frozen=True)
class Section:
    """One titled table; ``build`` returns None when the status has nothing for it."""

    title: str
    build: Callable[[Status], Table | None]


def render_status(status: Status, width: int = DEFAULT_WIDTH,
                  sections: Sequence[Section] | None = None) -> str:
    """The whole status as text: a summary line, then one table per section."""
    parts = [textwrap.fill(_summary(status), width, subsequent_indent="  ")]
    for section in SECTIONS if sections is None else sections:
        table = section.build(status)
        if table is None:
            continue
        body = format_table(table, width) if table.rows else "  (none)"
        notes = [textwrap.fill(n, width, initial_indent="  ", subsequent_indent="    ")
                 for n in table.notes]
        parts.append("\n".join([section.title.upper(), body, *notes]))
    return "\n\n".join(parts) + "\n"


def format_table(table: Table, width: int = DEFAULT_WIDTH) -> str:
    """Left-aligned columns two spaces apart; the last column is cut to fit ``width``."""
    cells = [[str(h) for h in table.headers]]
    cells += [[_cell(v) for v in row] for row in table.rows]
    count = len(table.headers)
    widths = [max(len(r[i]) for r in cells) for i in range(count - 1)]
    room = max(10, width - sum(widths) - 2 * (count - 1))
    lines = []
    for row in cells:
        last = row[-1] if len(row[-1]) <= room else row[-1][:room - 1] + "~"
        line = "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True))
        lines.append(f"{line}  {last}".rstrip() if count > 1 else last)
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _summary(status: Status) -> str:
    m = status.get("master") or {}
    return (f"master {m.get('servers', '?')} topic {m.get('control_topic', '?')}  "
            f"up {_duration(m.get('uptime_s'))}  instances {m.get('instances', 0)}  "
            f"control plane {m.get('control_plane', '?')}")


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _stages(status: Status) -> Table | None:
    stages = status.get("stages")
    if stages is None:
        return None
    rows, notes = [], []
    for st in stages:
        plan = st.get("plan") or {}
        assessment = st.get("assessment") or {}
        last = plan.get("last_decision") or {}
        limits = f"{plan['min_instance']}..{plan['max_instance']}" if plan else "-"
        now = f"{last['action']} ({last['code']})" if last else None
        if last:
            notes.append(f"{st['stage']}: {now}: {last['reason']}")
        rows.append((st["stage"], plan.get("service"), plan.get("provider"), st.get("live"),
                     limits, st.get("consumed_rate"), st.get("produced_rate"),
                     assessment.get("lag"), now))
    return Table(("stage", "service", "provider", "live", "min..max", "in/s", "out/s", "lag",
                  "decision now"), rows, notes)


def _instances(status: Status) -> Table | None:
    instances = status.get("instances")
    if instances is None:
        return None
    return Table(("instance", "stage", "node", "state", "in/s", "out/s", "busy", "age"), [
        (i["instance_id"], i["stage"], i.get("node"), i["state"], i.get("consumed_rate"),
         i.get("produced_rate"), i.get("busy"), _duration(i.get("age_s")))
        for i in instances])


def _nodes(status: Status) -> Table | None:
    nodes = status.get("nodes")
    if nodes is None:
        return None
    rows = []
    for n in nodes:
        battery = n.get("battery_percent")
        power = "mains" if battery is None else f"{battery:.0f}%" + (
            " charging" if n.get("charging") else "")
        rows.append((n["node_id"], n.get("source"), n.get("score"), power,
                     n.get("thermal_state"), n.get("cpu_percent"), n.get("blocker"),
                     n.get("instances")))
    return Table(("node", "from", "score", "battery", "thermal", "cpu%", "blocked by",
                  "instances"), rows)


def _tasks(status: Status) -> Table | None:
    tasks = status.get("tasks")
    if tasks is None:
        return None
    counts = {k: v for k, v in tasks.items() if v}
    return Table(("state", "tasks"), sorted(counts.items()))


def _decisions(status: Status) -> Table | None:
    actions = status.get("scale_actions")
    if actions is None:
        return None
    now = time.time()
    return Table(("when", "stage", "action", "reason"), [
        (f"{_duration(max(0.0, now - d['at']))} ago", d["stage"], d["action"],
         f"{d['code']}: {d['reason']}")
        for d in reversed(actions[-RECENT_DECISIONS:])])


SECTIONS: list[Section] = [
    Section("stages", _stages),
    Section("instances", _instances),
    Section("nodes", _nodes),
    Section("tasks", _tasks),
    Section("recent scaling decisions", _decisions),
]
"""What :func:`render_status` shows, in order."""
