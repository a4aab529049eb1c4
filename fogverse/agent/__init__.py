"""The node agent: capacity reports, device profiles, task handlers, stage instances."""

from fogverse.agent.agent import Agent, AgentSettings
from fogverse.agent.handlers import TaskContext, TaskHandler, load_handlers
from fogverse.agent.probe import DeviceProbe, DeviceReading
from fogverse.agent.profile import DeviceProfile, profile_from_env
from fogverse.agent.thermal import thermal_state
from fogverse.wire.nodes import (
    FleetMessage,
    InstanceEvent,
    InstanceStart,
    InstanceStop,
    NodeCapacity,
    decode_fleet,
    encode_fleet,
)

__all__ = [
    "Agent",
    "AgentSettings",
    "DeviceProbe",
    "DeviceProfile",
    "DeviceReading",
    "FleetMessage",
    "InstanceEvent",
    "InstanceStart",
    "InstanceStop",
    "NodeCapacity",
    "TaskContext",
    "TaskHandler",
    "decode_fleet",
    "encode_fleet",
    "load_handlers",
    "profile_from_env",
    "thermal_state",
]
