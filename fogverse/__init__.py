"""fogverse: self-scaling Kafka streaming pipelines for edge and fog devices.

The names of the master-side tools that need confluent-kafka (the admin, the
node agent, ConsumerStart, the task client) are imported on first use, so a
device with only aiokafka can ``import fogverse`` and run stages.
"""

import importlib
from typing import TYPE_CHECKING, Any

from fogverse.codec import Codec, DefaultCodec, MsgpackCodec, RawCodec
from fogverse.config import StageConfig
from fogverse.context import MessageContext, StoredItem
from fogverse.control import AutoScaleRequest, ControlDecodeError, Heartbeat, InstanceStopping
from fogverse.errors import (
    BrokerUnavailableError,
    ConfigError,
    DecodeError,
    EncodeError,
    FogVerseError,
    MasterUnreachableError,
    MissingDependencyError,
    PortInUseError,
    SourceExhaustedError,
)
from fogverse.frames import FrameCodec
from fogverse.heartbeat import HeartbeatReporter
from fogverse.lock import (
    DistributedLock,
    LockError,
    LockLostError,
    LockTimeoutError,
    LockToken,
    LockUnavailableError,
)
from fogverse.logging import CsvLogging, FogVerseLogging
from fogverse.observer import InstanceInfo, Observer, ObserverConfig, ProducerObserver
from fogverse.opencv import OpenCVConsumer
from fogverse.parallel import (
    ParallelConsumer,
    ParallelProducer,
    ParallelRunnable,
    ParallelSettings,
    PoolBrokenError,
    Processor,
    ProcessorError,
    ProcessorSetupError,
    UnpicklableProcessorError,
    WorkerCrashedError,
)
from fogverse.runtime import Consumer, Producer, Runnable, StageError
from fogverse.stats import StageStats
from fogverse.status_table import render_status
from fogverse.storage import ConsumerStorage

if TYPE_CHECKING:
    from fogverse.admin import AdminError, KafkaAdmin
    from fogverse.agent import Agent, AgentSettings, NodeCapacity, TaskContext
    from fogverse.consumer_start import ConsumerStart
    from fogverse.tasks import TaskClient, TaskStatus

_LAZY = {
    "AdminError": "fogverse.admin", "KafkaAdmin": "fogverse.admin",
    "Agent": "fogverse.agent", "AgentSettings": "fogverse.agent",
    "NodeCapacity": "fogverse.agent", "TaskContext": "fogverse.agent",
    "ConsumerStart": "fogverse.consumer_start",
    "TaskClient": "fogverse.tasks", "TaskStatus": "fogverse.tasks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fogverse' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AdminError",
    "Agent",
    "AgentSettings",
    "AutoScaleRequest",
    "BrokerUnavailableError",
    "Codec",
    "ConfigError",
    "Consumer",
    "ConsumerStart",
    "ConsumerStorage",
    "ControlDecodeError",
    "CsvLogging",
    "DecodeError",
    "DefaultCodec",
    "DistributedLock",
    "EncodeError",
    "FogVerseError",
    "FogVerseLogging",
    "FrameCodec",
    "Heartbeat",
    "HeartbeatReporter",
    "InstanceInfo",
    "InstanceStopping",
    "KafkaAdmin",
    "LockError",
    "LockLostError",
    "LockTimeoutError",
    "LockToken",
    "LockUnavailableError",
    "MasterUnreachableError",
    "MessageContext",
    "MissingDependencyError",
    "MsgpackCodec",
    "NodeCapacity",
    "Observer",
    "ObserverConfig",
    "OpenCVConsumer",
    "ParallelConsumer",
    "ParallelProducer",
    "ParallelRunnable",
    "ParallelSettings",
    "PoolBrokenError",
    "PortInUseError",
    "Processor",
    "ProcessorError",
    "ProcessorSetupError",
    "Producer",
    "ProducerObserver",
    "RawCodec",
    "Runnable",
    "SourceExhaustedError",
    "StageConfig",
    "StageError",
    "StageStats",
    "StoredItem",
    "TaskClient",
    "TaskContext",
    "TaskStatus",
    "UnpicklableProcessorError",
    "WorkerCrashedError",
    "render_status",
]
