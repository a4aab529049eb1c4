"""The demo's story, step by step: devices join, the load steps up, the master scales.

Everything is real: a Kafka broker, a Master in this process, three ``fogverse
agent`` processes playing devices, instances of the slow stage started by those
agents where the master's scheduler says, a camera and a sink on threads of
their own. The steps are driven by outcomes (the stage reached its most
instances; it is back at its least), each with a cap, so a run neither hangs
nor ends before it has shown something.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.demo.camera import Camera, FrameSink
from examples.demo.devices import DEVICES, DeviceLoad, start_agents, stop_agents
from examples.demo.display import Display, View
from examples.demo.settings import SERVICE, Names, Timing, http_port, master_config
from examples.demo.timeline import Sample, Timeline
from fogverse.admin import KafkaAdmin
from fogverse.runtime.runnable import Runnable
from master import Master, master_settings

__all__ = ["DemoFailedError", "run_demo"]

log = logging.getLogger("fogverse.demo")

TICK_S = 0.5
LOAD_PHASE = "load step"
PHASES = ("starting", "warm-up", LOAD_PHASE, "calm", "drain")


class DemoFailedError(RuntimeError):
    """The demo could not go on (no instance started, the master stopped)."""


class _OnThread:
    """A stage on an event loop of its own: paced without waiting on the master's loop."""

    def __init__(self, stage: Runnable) -> None:
        self.stage = stage
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"demo-{stage.name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self.stage.run())
        except BaseException as exc:  # shown to the user, not lost on a thread
            self.error = exc

    def stop(self, timeout: float = 60.0) -> None:
        self.stage.stop()
        self._thread.join(timeout)


@dataclass
class _Step:
    name: str
    rate: float
    done: Callable[[float], bool]
    """Given the seconds spent in the step: may it end?"""
    cap_s: float


class Demo:
    def __init__(self, bootstrap: str, timing: Timing, display: Display, log_dir: Path,
                 forever: bool = False, preferred_port: int = 4280) -> None:
        self.bootstrap = bootstrap
        self.timing = timing
        self.display = display
        self.log_dir = log_dir
        self.forever = forever
        self.names = Names.fresh()
        self.stage = (self.names.frames, self.names.results)
        conf = master_config(self.names, bootstrap, timing, http_port(preferred_port))
        self.master = Master(master_settings(conf))
        self.timeline = Timeline(timing.min_instance)
        self.interrupted = asyncio.Event()
        self._began = time.monotonic()
        self._decisions_seen = 0
        self.camera: _OnThread | None = None
        self.sink: _OnThread | None = None
        self.load: DeviceLoad | None = None

    # -- the whole run ---------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        agents: dict[str, Any] = {}
        try:
            await self._prepare_topics()
            self.load = DeviceLoad(self.log_dir)
            agents = start_agents(self.bootstrap, self.names.master_id, self.names.nodes,
                                  self.names.orders, self.log_dir)
            await self.master.start()
            if self.master.http is not None:
                self.display.say(_addresses(self.master.http.port))
            self.display.say(f"logs of the master, agents and instances: {self.log_dir}")
            self.display.say("devices: " + "; ".join(f"{d.node_id} ({d.label})" for d in DEVICES))
            self.sink = _OnThread(self._make_sink())
            camera = Camera(0.0, producer_topic=self.names.frames,
                            consumer_servers=self.bootstrap, control_topic=self.names.control)
            self.camera = _OnThread(camera)
            await self._steps(camera)
            produced = await self._drain(camera)
            sink = self._sink()
            return self.timeline.summary(produced, sink.missing(produced), sink.duplicates,
                                         LOAD_PHASE)
        finally:
            await self._close(agents)

    async def _prepare_topics(self) -> None:
        admin = KafkaAdmin(self.bootstrap)
        try:
            await admin.ensure_topic(self.names.frames, 1)
            await admin.ensure_topic(self.names.results, 1)
        finally:
            admin.close()

    def _make_sink(self) -> FrameSink:
        return FrameSink(consumer_topic=self.names.results, consumer_servers=self.bootstrap,
                         group_id=f"demo-{self.names.run}-sink", heartbeat=False)

    def _sink(self) -> FrameSink:
        assert self.sink is not None
        return self.sink.stage  # type: ignore[return-value]

    async def _close(self, agents: dict[str, Any]) -> None:
        for part in (self.camera, self.sink):
            if part is not None:
                await asyncio.to_thread(part.stop)
        await self.master.close()  # stops the instances it started, through the agents
        await asyncio.to_thread(stop_agents, agents)

    # -- the steps -------------------------------------------------------------------

    async def _steps(self, camera: Camera) -> None:
        t = self.timing
        at_max = self._holds(lambda: self._live() >= t.max_instance)
        at_min = self._holds(lambda: self._live() <= t.min_instance and (self._lag() or 0) < 20)
        steps = [
            _Step("starting", 0.0, lambda _s: self._live() >= t.min_instance
                  and len(self._nodes()) == len(DEVICES), 120.0),
            _Step("warm-up", t.base_rate, lambda s: s >= t.warm_s, t.warm_s),
            _Step(LOAD_PHASE, t.peak_rate, lambda _s: at_max(t.load_hold_s), t.load_cap_s),
            _Step("calm", t.base_rate, lambda _s: at_min(t.calm_hold_s), t.calm_cap_s),
        ]
        index = 0
        while index < len(steps) and not self.interrupted.is_set():
            step = steps[index]
            ok = await self._run_step(camera, step, index + 1)
            if step.name == "starting" and not ok:
                raise DemoFailedError("the stage's first instance did not start on any agent "
                                      f"within {step.cap_s:g}s; see the logs in {self.log_dir}")
            index += 1
            if self.forever and index == len(steps):
                index = 2  # load step, calm, load step... until Ctrl-C

    def _holds(self, condition: Callable[[], bool]) -> Callable[[float], bool]:
        """A test that is true once ``condition`` has held for the given seconds."""
        since: list[float | None] = [None]

        def held_for(seconds: float) -> bool:
            now = time.monotonic()
            if not condition():
                since[0] = None
                return False
            start = since[0] = since[0] or now
            return now - start >= seconds

        return held_for

    async def _run_step(self, camera: Camera, step: _Step, number: int) -> bool:
        camera.rate = step.rate
        self.display.event(self.timeline.note(self._elapsed(),
                                              f"-- {step.name}: camera at {step.rate:g} fps"))
        began = time.monotonic()
        while not self.interrupted.is_set():
            self._check_parts()
            spent = time.monotonic() - began
            self._sample(step.name, number, step.rate)
            if step.done(spent):
                return True
            if spent >= step.cap_s:
                self.display.event(self.timeline.note(
                    self._elapsed(), f"{step.name}: moving on after {step.cap_s:g}s"))
                return False
            await asyncio.sleep(TICK_S)
        return False

    async def _drain(self, camera: Camera) -> int:
        """Stop the camera; wait until the sink saw every frame it sent (or the cap)."""
        self.display.event(self.timeline.note(self._elapsed(), "-- drain: camera stopped"))
        assert self.camera is not None
        await asyncio.to_thread(self.camera.stop)
        produced = camera.next_id
        sink = self._sink()
        began = time.monotonic()
        while sink.received < produced and time.monotonic() - began < self.timing.drain_cap_s:
            self._sample("drain", len(PHASES), 0.0)
            await asyncio.sleep(TICK_S)
        self._sample("drain", len(PHASES), 0.0)
        return produced

    def _check_parts(self) -> None:
        for part in (self.camera, self.sink):
            if part is not None and part.error is not None:
                raise DemoFailedError(f"{part.stage.name} stopped: {part.error}")
        if self.master.failure is not None:
            raise DemoFailedError(f"the master stopped: {self.master.failure}")

    # -- looking -----------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self._began

    def _live(self) -> int:
        return self.master.registry.live_count(self.stage)

    def _lag(self) -> int | None:
        assert self.master.input_output is not None
        assessment = self.master.input_output.assessment(self.stage)
        return None if assessment is None else assessment.lag

    def _nodes(self) -> list[dict[str, Any]]:
        fleet = self.master.fleet
        return [] if fleet is None else list(fleet.service.status()["nodes"])

    def _placement(self) -> dict[str, str]:
        fleet = self.master.fleet
        if fleet is None or fleet.provider is None:
            return {}
        return {i: d.node_id for d in DEVICES for i in fleet.provider.instances_on(d.node_id)}

    def _sample(self, phase: str, number: int, rate: float) -> None:
        now = time.monotonic()
        camera = self.camera.stage if self.camera else None
        sink = self._sink()
        sample = Sample(
            t=round(now - self._began, 2), phase=phase, camera_rate=rate,
            produced=camera.next_id if isinstance(camera, Camera) else 0,
            received=sink.received, analysed_rate=sink.rate(now - 1.0, now),
            live=self._live(), placement=self._placement(), lag=self._lag(),
        )
        self._new_decisions()
        for event in self.timeline.add(sample):
            self.display.event(event)
        if self.load is not None:
            self.load.update(sample.placement)
        self.display.update(self._view(sample, number))

    def _new_decisions(self) -> None:
        deployer = self.master.deployer
        if deployer is None:
            return
        decisions = list(deployer.decisions)
        for d in decisions[self._decisions_seen:]:
            if d.action != "hold":
                self.display.event(self.timeline.note(
                    self._elapsed(), f"master: {d.action} ({d.code}) -> {d.target}: {d.reason}"))
        self._decisions_seen = len(decisions)

    def _view(self, s: Sample, number: int) -> View:
        deployer = self.master.deployer
        last = deployer.decisions[-1] if deployer is not None and deployer.decisions else None
        where = ", ".join(sorted(set(s.placement.values()))) or "-"
        stage_rows = [[SERVICE, f"{s.live}", where, f"{s.camera_rate:g}",
                       f"{s.analysed_rate:.1f}", "?" if s.lag is None else str(s.lag)]]
        return View(
            t=s.t, phase=s.phase, phase_index=number, phases=len(PHASES),
            progress=s.t / self.timing.expected_s, camera_rate=s.camera_rate,
            produced=s.produced, received=s.received, analysed_rate=s.analysed_rate,
            live=s.live, lag=s.lag,
            stage=(["stage", "instances", "on nodes", "in fps", "out/s", "lag"], stage_rows),
            nodes=(["node", "score", "battery", "charging", "thermal", "blocked by",
                    "instances"], self._node_rows(s.placement)),
            last_decision="" if last is None else f"{last.action} ({last.code}): {last.reason}",
        )

    def _node_rows(self, placement: Mapping[str, str]) -> list[list[str]]:
        reported = {n["node_id"]: n for n in self._nodes()}
        rows = []
        for device in DEVICES:
            n = reported.get(device.node_id)
            if n is None:
                rows.append([device.node_id, "-", "-", "-", "-", "not seen yet", "0"])
                continue
            battery = n.get("battery_percent")
            rows.append([
                device.node_id,
                "-" if n.get("score") is None else f"{n['score']:.2f}",
                "mains" if battery is None else f"{battery:.0f} %",
                _yes_no(n.get("charging")),
                str(n.get("thermal_state") or "-"), str(n.get("blocker") or "-"),
                str(sum(1 for node in placement.values() if node == device.node_id)),
            ])
        return rows


async def run_demo(bootstrap: str, timing: Timing, display: Display, log_dir: Path,
                   forever: bool = False, port: int = 4280) -> dict[str, Any]:
    """Run the demo once; Ctrl-C (or SIGTERM) moves it straight to the drain and summary."""
    demo = Demo(bootstrap, timing, display, log_dir, forever, port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, demo.interrupted.set)
    try:
        return await demo.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _addresses(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    # The dashboard lives in master.dashboard where the master has one.
    page = "/dashboard/" if importlib.util.find_spec("master.dashboard") else "/status"
    return f"dashboard: {base}{page}  (status: {base}/status, metrics: {base}/metrics)"


def _yes_no(value: object) -> str:
    return "-" if value is None else "yes" if value else "no"
