"""Loading task handlers from ``module:object`` specs."""

from __future__ import annotations

import pytest

from fogverse.agent.handlers import load_handlers, resolve_handler_spec
from fogverse.errors import ConfigError
from tests.agent import task_handlers


def test_a_mapping_registers_every_type() -> None:
    assert resolve_handler_spec("tests.agent.task_handlers:HANDLERS") == task_handlers.HANDLERS


def test_a_callable_registers_under_its_name() -> None:
    assert resolve_handler_spec("tests.agent.task_handlers:echo") == {"echo": task_handlers.echo}


def test_later_specs_win() -> None:
    handlers = load_handlers(["tests.agent.task_handlers:HANDLERS",
                              "tests.agent.task_handlers:boom"], use_entry_points=False)
    assert set(handlers) == {"echo", "add", "slow", "boom"}


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("no_colon", "module:object"),
        ("tests.agent.nope:x", "cannot load"),
        ("tests.agent.task_handlers:missing", "cannot load"),
        ("tests.agent.task_handlers:__doc__", "callable or a mapping"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as caught:
        resolve_handler_spec(spec)
    assert caught.value.setting == "--handlers"
