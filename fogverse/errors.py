"""Exceptions users may catch. Each message says what to change."""


from typing import ClassVar


class FogVerseError(Exception):
    """Base of every error this package raises on purpose.

    ``hint`` says what to do about it; the ``fogverse`` command prints it under
    the message. A *user mistake* (bad input, a missing program, an address in
    use) exits the command with status 2, anything else with 1.
    """

    user_mistake: ClassVar[bool] = False
    default_hint: ClassVar[str | None] = None

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        self.hint = hint or self.default_hint


class ConfigError(FogVerseError, ValueError):
    """A setting is missing or has a bad value; the message names the setting."""

    user_mistake = True
    default_hint = "change that setting (or leave it out for its default) and run again"

    def __init__(self, setting: str, value: object, why: str, *,
                 hint: str | None = None) -> None:
        self.setting = setting
        self.value = value
        super().__init__(f"invalid setting {setting}={value!r}: {why}", hint=hint)


class PortInUseError(ConfigError):
    """A port a setting names is taken by another program."""

    def __init__(self, setting: str, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(setting, port, f"{host}:{port} is already in use",
                         hint=f"stop what listens on port {port}, or choose another port "
                         f"(0 picks a free one where {setting} allows it)")


class DecodeError(FogVerseError):
    """A message's bytes could not be turned into data."""


class EncodeError(FogVerseError):
    """Data could not be turned into bytes for sending."""


class BrokerUnavailableError(FogVerseError):
    """No Kafka broker could be reached or started."""

    user_mistake = True
    default_hint = ("check the bootstrap address (--bootstrap, $FOGVERSE_BOOTSTRAP or the "
                    "config's servers), or start a broker with `fogverse broker`")


class MasterUnreachableError(FogVerseError):
    """No master answered at the address given."""

    user_mistake = True


class MissingDependencyError(FogVerseError, ImportError):
    """An optional dependency is not installed; the message names what to install."""

    user_mistake = True


class SourceExhaustedError(FogVerseError):
    """Raised by a source's ``receive`` when it has nothing more to give (the end of a
    video file, a closed in-process storage): the stage stops gracefully."""
