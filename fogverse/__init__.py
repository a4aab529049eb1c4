"""fogverse: self-scaling Kafka streaming pipelines for edge and fog devices."""

from fogverse.codec import Codec, DefaultCodec, MsgpackCodec, RawCodec
from fogverse.config import StageConfig
from fogverse.context import MessageContext
from fogverse.errors import (
    BrokerUnavailableError,
    ConfigError,
    DecodeError,
    EncodeError,
    FogVerseError,
    MissingDependencyError,
)
from fogverse.runtime import Consumer, Producer, Runnable, StageError
from fogverse.stats import StageStats

__all__ = [
    "BrokerUnavailableError",
    "Codec",
    "ConfigError",
    "Consumer",
    "DecodeError",
    "DefaultCodec",
    "EncodeError",
    "FogVerseError",
    "MessageContext",
    "MissingDependencyError",
    "MsgpackCodec",
    "Producer",
    "RawCodec",
    "Runnable",
    "StageConfig",
    "StageError",
    "StageStats",
]
