"""fogverse: self-scaling Kafka streaming pipelines for edge and fog devices."""

from fogverse.admin import AdminError, KafkaAdmin
from fogverse.agent import Agent, AgentSettings, NodeCapacity, TaskContext
from fogverse.codec import Codec, DefaultCodec, MsgpackCodec, RawCodec
from fogverse.config import StageConfig
from fogverse.consumer_start import ConsumerStart
from fogverse.context import MessageContext, StoredItem
from fogverse.control import AutoScaleRequest, ControlDecodeError, Heartbeat, InstanceStopping
from fogverse.errors import (
    BrokerUnavailableError,
    ConfigError,
    DecodeError,
    EncodeError,
    FogVerseError,
    MissingDependencyError,
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
from fogverse.storage import ConsumerStorage
from fogverse.tasks import TaskClient, TaskStatus

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
]
