"""A Processor that cannot reach the workers fails at start, naming the culprit."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from fogverse.codec import DefaultCodec
from fogverse.parallel import (
    ParallelConsumer,
    Processor,
    ProcessorLike,
    UnpicklableProcessorError,
)
from fogverse.parallel.processor import find_unpicklable, pack_for_workers
from tests.parallel.procs import Echo, HoldsALock, WithLambda


def test_the_error_names_the_attribute_that_cannot_be_pickled() -> None:
    with pytest.raises(UnpicklableProcessorError) as caught:
        pack_for_workers(HoldsALock(), DefaultCodec())
    assert caught.value.attribute == "model['guard']"
    message = str(caught.value)
    assert "HoldsALock" in message
    assert "model['guard']" in message
    assert "setup()" in message


def test_a_lambda_attribute_is_named() -> None:
    with pytest.raises(UnpicklableProcessorError) as caught:
        pack_for_workers(WithLambda(), DefaultCodec())
    assert caught.value.attribute == "transform"
    assert "'transform' (function)" in str(caught.value)


def test_find_unpicklable_says_none_for_a_good_processor() -> None:
    assert find_unpicklable(Echo()) is None


def test_a_class_defined_in_a_function_is_explained() -> None:
    class Local(Processor):
        def process(self, data: Any) -> Any:
            return data

    with pytest.raises(UnpicklableProcessorError, match="module level"):
        pack_for_workers(Local(), DefaultCodec())


async def test_run_fails_before_connecting_anywhere() -> None:
    # No broker answers at this address: the error must come from the check,
    # before any connection attempt.
    stage = ParallelConsumer(processor=HoldsALock(), consumer_topic="in",
                             consumer_servers="127.0.0.1:9", heartbeat=False)
    with pytest.raises(UnpicklableProcessorError, match=r"model\['guard'\]"):
        await stage.run()


async def test_a_stage_without_a_processor_says_how_to_give_one() -> None:
    stage = ParallelConsumer(consumer_topic="in", consumer_servers="127.0.0.1:9")
    with pytest.raises(ValueError, match="needs a Processor"):
        await stage.run()


def test_the_default_codec_travels_to_workers() -> None:
    codec = pickle.loads(pickle.dumps(DefaultCodec()))
    assert codec.decode(*codec.encode({"a": [1, 2]})) == {"a": [1, 2]}


def test_processor_protocol_and_base() -> None:
    assert isinstance(Echo(), ProcessorLike)
    with pytest.raises(NotImplementedError):
        Processor().process(1)
