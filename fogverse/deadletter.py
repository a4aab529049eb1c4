"""What a dead letter carries: the original message plus why and where it failed."""

from __future__ import annotations

from fogverse.constants import (
    H_ERROR,
    H_ERROR_STAGE,
    H_ERROR_TYPE,
    H_ORIGIN_OFFSET,
    H_ORIGIN_PARTITION,
    H_ORIGIN_TOPIC,
)
from fogverse.context import Headers, MessageContext

__all__ = ["dead_letter_headers", "describe_origin"]

_MAX_ERROR_TEXT = 2000


def dead_letter_headers(
    ctx: MessageContext, exc: BaseException, stage: str, step: str
) -> Headers:
    """The input's own headers plus the error and the input's origin."""
    text = f"{step}: {exc}"[:_MAX_ERROR_TEXT]
    return [
        *ctx.headers,
        (H_ERROR, text.encode(errors="replace")),
        (H_ERROR_TYPE, _error_type(exc).encode()),
        (H_ERROR_STAGE, stage.encode()),
        (H_ORIGIN_TOPIC, (ctx.topic or "").encode()),
        (H_ORIGIN_PARTITION, str(ctx.partition if ctx.partition is not None else -1).encode()),
        (H_ORIGIN_OFFSET, str(ctx.offset if ctx.offset is not None else -1).encode()),
    ]


def _error_type(exc: BaseException) -> str:
    # An error raised in another process (a parallel stage's worker) names the
    # type it had there, not the wrapper that carried it across.
    remote = getattr(exc, "error_type", None)
    return remote if isinstance(remote, str) and remote else type(exc).__name__


def describe_origin(ctx: MessageContext) -> str:
    if ctx.topic is None:
        return "a source message"
    return f"{ctx.topic}[{ctx.partition}]@{ctx.offset}"
