"""Exceptions users may catch. Each message says what to change."""


class FogVerseError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(FogVerseError, ValueError):
    """A setting is missing or has a bad value; the message names the setting."""

    def __init__(self, setting: str, value: object, why: str) -> None:
        self.setting = setting
        self.value = value
        super().__init__(f"invalid setting {setting}={value!r}: {why}")


class DecodeError(FogVerseError):
    """A message's bytes could not be turned into data."""


class EncodeError(FogVerseError):
    """Data could not be turned into bytes for sending."""


class BrokerUnavailableError(FogVerseError):
    """No Kafka broker could be reached or started."""


class MissingDependencyError(FogVerseError, ImportError):
    """An optional dependency is not installed; the message names what to install."""


class SourceExhaustedError(FogVerseError):
    """Raised by a source's ``receive`` when it has nothing more to give (the end of a
    video file, a closed in-process storage): the stage stops gracefully."""
