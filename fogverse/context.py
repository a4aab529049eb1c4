"""The record of one message as it moves through a stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from fogverse.constants import H_CONTENT_TYPE

__all__ = ["Headers", "MessageContext"]

Headers = list[tuple[str, bytes]]


@dataclass(slots=True)
class MessageContext:
    """One in-flight message: where it came from and what travels with it.

    Each message has its own context, so an output always inherits its own
    input's key and headers (FogVerse shared one ``self.message`` between
    messages in flight and mixed them up).
    """

    value: bytes | None
    key: bytes | None = None
    headers: Headers = field(default_factory=list)
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    timestamp: int | None = None
    """Broker or producer timestamp, epoch milliseconds."""

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, or None."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None

    @property
    def content_type(self) -> str | None:
        raw = self.header(H_CONTENT_TYPE)
        return raw.decode(errors="replace") if raw is not None else None
