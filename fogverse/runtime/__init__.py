"""The stage runtime: Producer (sources), Consumer (stages and sinks)."""

from fogverse.runtime.consumer import Consumer
from fogverse.runtime.producer import Producer
from fogverse.runtime.runnable import HOOK_NAMES, Runnable, StageError

__all__ = ["HOOK_NAMES", "Consumer", "Producer", "Runnable", "StageError"]
