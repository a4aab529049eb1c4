"""Processors for the parallel tests. Module level, so worker processes can import them."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from fogverse.parallel import Processor


class Echo(Processor):
    def process(self, data: Any) -> Any:
        return data


class Tagged(Processor):
    """Returns the input with the worker's pid and how often setup() ran there."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.setups = 0

    def setup(self) -> None:
        self.setups += 1

    def process(self, data: Any) -> Any:
        if self.delay:
            time.sleep(self.delay)
        return {"in": data, "pid": os.getpid(), "setups": self.setups}


class Jitter(Processor):
    """Takes a different time per input so answers come back out of order."""

    def process(self, data: Any) -> Any:
        time.sleep((hash(str(data)) % 7) / 1000)
        return data


class Poison(Processor):
    """Crashes its worker (a real segfault) on the input "poison"; echoes the rest."""

    def process(self, data: Any) -> Any:
        if data == "poison":
            ctypes.string_at(0)  # SIGSEGV, as a buggy C extension would
        return data


class Suicidal(Processor):
    """SIGKILLs its own worker on the input "die"."""

    def process(self, data: Any) -> Any:
        if data == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        return data


class Picky(Processor):
    """Raises on negative numbers."""

    def process(self, data: Any) -> Any:
        if data < 0:
            raise ValueError(f"negative input {data}")
        return data * 2


class Silent(Processor):
    """Sends nothing for odd numbers."""

    def process(self, data: Any) -> Any:
        return None if data % 2 else data


class BadSetup(Processor):
    def setup(self) -> None:
        raise RuntimeError("model file missing")

    def process(self, data: Any) -> Any:
        return data


class HoldsALock(Processor):
    def __init__(self) -> None:
        self.model = {"weights": [1, 2, 3], "guard": threading.Lock()}

    def process(self, data: Any) -> Any:
        return data


class Big(Processor):
    """Holds ``size`` bytes of state, like a model's weights."""

    def __init__(self, size: int) -> None:
        self.weights = os.urandom(size)

    def process(self, data: Any) -> Any:
        return data


class WithLambda(Processor):
    def __init__(self) -> None:
        self.scale = 2
        self.transform: Callable[[Any], Any] = lambda x: x * self.scale

    def process(self, data: Any) -> Any:
        return self.transform(data)


class SlowZero(Processor):
    """Takes 300 ms for the input 0 and no time for the rest."""

    def process(self, data: Any) -> Any:
        if data == 0:
            time.sleep(0.3)
        return data


class Hangs(Processor):
    """Never returns for the input "hang", like a deadlocked library."""

    def process(self, data: Any) -> Any:
        if data == "hang":
            time.sleep(3600)
        return data
