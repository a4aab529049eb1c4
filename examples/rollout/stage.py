"""A pass-through stage whose versions behave differently, for rollouts.

Every output is the input with ``version`` (this instance's ``FOGVERSE_VERSION``)
added, so a reader of the output topic sees the switch from one version to the
next. ``STAGE_MODE`` makes a version bad on purpose:

* ``ok`` (default): pass every message through;
* ``crash``: exit at start, before the first heartbeat;
* ``dead-letter``: fail every message, so each goes to the dead-letter topic.

Topics, group and servers come from the environment the master's provider sets
(CONSUMER_TOPIC, PRODUCER_TOPIC, GROUP_ID, FOGVERSE_BOOTSTRAP):

    python -m examples.rollout.stage
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from fogverse import Consumer
from fogverse.constants import ENV_VERSION


class VersionedStage(Consumer):
    def __init__(self, version: str, fail: bool, **settings: Any) -> None:
        super().__init__(**settings)
        self.version = version
        self.fail = fail

    def process(self, data: Any) -> Any:
        if self.fail:
            raise RuntimeError(f"version {self.version} cannot handle this message")
        if isinstance(data, dict):
            data["version"] = self.version
        return data


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mode = os.environ.get("STAGE_MODE", "ok")
    if mode == "crash":
        sys.exit("STAGE_MODE=crash: this version dies at start")
    stage = VersionedStage(os.environ.get(ENV_VERSION, "declared"), mode == "dead-letter",
                           batch_size=50,
                           group_protocol=os.environ.get("GROUP_PROTOCOL", "consumer"))
    asyncio.run(stage.run())


if __name__ == "__main__":
    main()
