"""What a stage knows of one message: its origin, key and headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fogverse.constants import CT_BYTES, H_CONTENT_TYPE

__all__ = ["Headers", "MessageContext", "StoredItem", "content_type_bytes", "content_type_of"]

Headers = list[tuple[str, bytes]]

# A stage sees a handful of content types; caching their text and bytes forms
# saves an encode/decode per message on the hot path. Bounded against abuse.
_CACHE_LIMIT = 64
_TEXT: dict[bytes, str] = {}
_BYTES: dict[str, bytes] = {}


def content_type_of(headers: Headers) -> str | None:
    """The first content-type header's value as text, or None."""
    for key, value in headers:
        if key == H_CONTENT_TYPE:
            text = _TEXT.get(value)
            if text is None:
                text = value.decode(errors="replace")
                if len(_TEXT) < _CACHE_LIMIT:
                    _TEXT[value] = text
            return text
    return None


def content_type_bytes(content_type: str) -> bytes:
    """The header value for ``content_type`` (octet-stream when empty)."""
    raw = _BYTES.get(content_type)
    if raw is None:
        raw = (content_type or CT_BYTES).encode()
        if len(_BYTES) < _CACHE_LIMIT:
            _BYTES[content_type] = raw
    return raw


@dataclass(slots=True)
class MessageContext:
    """One message as users see it (``self.message``): where it came from and
    what travels with it.

    Each message has its own context, so an output always inherits its own
    input's key and headers (FogVerse shared one ``self.message`` between
    messages in flight and mixed them up). A source may set ``key`` and add
    ``headers`` in ``receive()``; they go with that message's output.
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
        return content_type_of(self.headers)


@dataclass(slots=True)
class StoredItem:
    """Data handed from one stage to another in the same process, with the context of
    the message it came from, so the receiving stage's ``self.message`` (its key and
    headers) is that message's. FogVerse's dict keys still read: ``item["data"]``.
    """

    data: Any
    message: MessageContext | None
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        if name not in ("data", "message", "extra"):
            raise KeyError(name)
        return getattr(self, name)
