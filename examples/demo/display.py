"""How the demo shows itself: a live screen on a terminal, plain lines everywhere else.

Both take the same :class:`View` once or twice a second and the events as they
happen. The tables are plain ``(headers, rows)``, rendered by
:func:`render_table` for plain output and by rich on a terminal, so another
renderer (``fogverse status``'s) can take their place in one spot.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from examples.demo.timeline import Event

__all__ = ["Display", "LiveDisplay", "PlainDisplay", "View", "make_display", "render_table"]

Table = tuple[list[str], list[list[str]]]


@dataclass(frozen=True)
class View:
    t: float
    phase: str
    phase_index: int
    phases: int
    progress: float
    """0-1 through the whole demo, as far as it can be known."""
    camera_rate: float
    produced: int
    received: int
    analysed_rate: float
    live: int
    lag: int | None
    stage: Table
    nodes: Table
    last_decision: str = ""
    notes: list[str] = field(default_factory=list)


class Display(Protocol):
    def update(self, view: View) -> None: ...

    def event(self, event: Event) -> None: ...

    def say(self, text: str) -> None:
        """A line worth keeping (addresses, phase changes)."""

    def close(self) -> None: ...


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a rule under the headers."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _progress_line(v: View) -> str:
    lag = "?" if v.lag is None else str(v.lag)
    return (f"[{v.t:6.1f}s] {v.phase:<10} camera {v.camera_rate:4.0f} fps | analysed "
            f"{v.analysed_rate:5.1f}/s | instances {v.live} | lag {lag:>5} | "
            f"frames {v.received}/{v.produced}")


class PlainDisplay:
    """For CI and pipes: a progress line every few seconds, events as they come."""

    def __init__(self, out: IO[str] = sys.stdout, every: float = 3.0) -> None:
        self._out = out
        self._every = every
        self._last = float("-inf")
        self._phase = ""

    def update(self, view: View) -> None:
        if view.t - self._last >= self._every or view.phase != self._phase:
            self._last, self._phase = view.t, view.phase
            self.say(_progress_line(view))

    def event(self, event: Event) -> None:
        self.say(f"[{event.t:6.1f}s] {event.text}")

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def close(self) -> None:
        return None


class LiveDisplay:
    """A terminal screen redrawn in place (rich): progress, status tables, recent events."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console()
        self._events: deque[str] = deque(maxlen=5)
        self._live = Live(console=self._console, refresh_per_second=4, transient=False)
        self._live.start()

    def update(self, view: View) -> None:
        self._live.update(self._render(view))

    def event(self, event: Event) -> None:
        self._events.append(f"[{event.t:6.1f}s] {event.text}")

    def say(self, text: str) -> None:
        self._live.console.print(text)

    def close(self) -> None:
        self._live.stop()

    def _render(self, v: View) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.text import Text

        head = Text.assemble(
            (f" {v.phase} ", "bold reverse"), f"  step {v.phase_index}/{v.phases}  ",
            f"{v.t:5.0f}s   camera {v.camera_rate:.0f} fps   analysed {v.analysed_rate:.1f}/s"
            f"   frames {v.received}/{v.produced}   lag {'?' if v.lag is None else v.lag}")
        parts: list[Any] = [head, ProgressBar(total=1.0, completed=min(1.0, v.progress)),
                            _rich_table("slow stage", *v.stage),
                            _rich_table("nodes (the scheduler's view)", *v.nodes)]
        if v.last_decision:
            parts.append(Text(f"last decision: {v.last_decision}", style="italic"))
        parts.append(Text("\n".join(self._events) or "(no instance changes yet)",
                          style="dim"))
        return Panel(Group(*parts), title="fogverse demo", subtitle="Ctrl-C ends it early")


def _rich_table(title: str, headers: list[str], rows: list[list[str]]) -> Any:
    from rich import box
    from rich.table import Table as RichTable

    table = RichTable(title=title, title_justify="left", expand=False, box=box.SIMPLE_HEAD,
                      show_edge=False, padding=(0, 1))
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*row)
    return table


def make_display(plain: bool) -> Display:
    """Rich on a terminal when installed, plain lines otherwise (CI, pipes, ``--plain``)."""
    if plain or not sys.stdout.isatty():
        return PlainDisplay()
    try:
        return LiveDisplay()
    except ImportError:
        return PlainDisplay()
