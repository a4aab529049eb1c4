"""Parallel stages: process() in a pool of worker processes (or threads).

    class Detect(Processor):
        def setup(self): self.model = load_model()      # once per worker
        def process(self, frame): return self.model(frame)

    stage = ParallelConsumer(processor=Detect(), process_number=2,
                             consumer_topic="frames", producer_topic="boxes")
    await stage.run()            # or FogVerse's: await stage.run(2, 8, Detect())
"""

from fogverse.parallel.consumer import ParallelConsumer
from fogverse.parallel.errors import (
    PoolBrokenError,
    ProcessorError,
    ProcessorSetupError,
    UnpicklableProcessorError,
    WorkerCrashedError,
)
from fogverse.parallel.processor import Processor, ProcessorLike
from fogverse.parallel.producer import ParallelProducer
from fogverse.parallel.settings import ParallelSettings
from fogverse.parallel.stage import ParallelRunnable

__all__ = [
    "ParallelConsumer",
    "ParallelProducer",
    "ParallelRunnable",
    "ParallelSettings",
    "PoolBrokenError",
    "Processor",
    "ProcessorError",
    "ProcessorLike",
    "ProcessorSetupError",
    "UnpicklableProcessorError",
    "WorkerCrashedError",
]
