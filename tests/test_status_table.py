"""``fogverse status``'s tables, rendered from /status JSON as a master serves it."""

from __future__ import annotations

import time
from typing import Any

from fogverse.status_table import SECTIONS, Section, Table, render_status


def served(**extra: Any) -> dict[str, Any]:
    """A /status body: one stage at its limit, two instances on two nodes, a phone."""
    reason = "lag growing 14.2/s (now 1204), but at max_instance 3 " * 3
    return {
        "master": {"servers": "127.0.0.1:9092", "control_topic": "fogverse-control",
                   "uptime_s": 3725.0, "instances": 2, "control_plane": "unauthenticated"},
        "stages": [{
            "stage": "frames->detections", "live": 2, "consumed_rate": 180.5,
            "produced_rate": 180.0, "assessment": {"lag": 1204},
            "plan": {"service": "detect", "provider": "AGENT", "min_instance": 1,
                     "max_instance": 3, "last_decision": {
                         "action": "hold", "code": "at_max", "reason": reason}}}],
        "instances": [
            {"instance_id": "detect-1", "stage": "frames->detections", "node": "desktop",
             "state": "live", "consumed_rate": 95.0, "produced_rate": 95.0, "busy": 0.97,
             "age_s": 125.0},
            {"instance_id": "detect-2", "stage": "frames->detections", "node": "phone",
             "state": "live", "consumed_rate": 85.5, "produced_rate": 85.0, "busy": 1.0,
             "age_s": 61.0}],
        "nodes": [
            {"node_id": "desktop", "source": "agent", "score": 0.71, "battery_percent": None,
             "charging": None, "thermal_state": "normal", "cpu_percent": 64.0,
             "blocker": None, "instances": ["detect-1"]},
            {"node_id": "phone", "source": "agent", "score": 0.12, "battery_percent": 18.0,
             "charging": True, "thermal_state": "warm", "cpu_percent": 91.0,
             "blocker": None, "instances": ["detect-2"]}],
        "tasks": {"pending": 2, "active": 1, "completed": 0},
        "scale_actions": [
            {"at": time.time() - 30, "stage": "frames->detections", "action": "scale_out",
             "code": "needs_more", "reason": "lag growing 156.3/s (now 1270)"}],
        **extra,
    }


def test_every_part_fits_in_100_columns_with_the_reasons_whole() -> None:
    text = render_status(served())
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "master 127.0.0.1:9092 topic fogverse-control  up 1h02m" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines if line.strip()}
    assert rows["frames->detections"][1:6] == ["detect", "AGENT", "2", "1..3", "180.5"]
    assert rows["detect-2"][:4] == ["detect-2", "frames->detections", "phone", "live"]
    assert rows["phone"][:6] == ["phone", "agent", "0.12", "18%", "charging", "warm"]
    assert rows["desktop"][3] == "mains"
    assert rows["pending"] == ["pending", "2"] and "completed" not in rows
    # The stage's whole reason is there, wrapped under its table.
    assert "at max_instance 3" in " ".join(lines[lines.index("STAGES"):][:8])
    assert any("scale_out  needs_more: lag growing 156.3/s (now 1270)" in line
               and "ago" in line for line in lines)


def test_an_older_master_without_the_newer_keys_still_renders() -> None:
    old = {k: v for k, v in served().items() if k in ("master", "stages")}
    text = render_status(old)
    assert "STAGES" in text and "frames->detections" in text
    assert "NODES" not in text and "INSTANCES" not in text


def test_a_feature_adds_its_own_section() -> None:
    def rollouts(status: dict[str, Any]) -> Table | None:
        rows = [(r["service"], f"{r['done']}/{r['of']}") for r in status.get("rollouts", [])]
        return Table(("service", "progress"), rows)

    text = render_status(served(rollouts=[{"service": "detect", "done": 1, "of": 3}]),
                         sections=[*SECTIONS, Section("rollouts", rollouts)])
    assert text.rstrip().endswith("ROLLOUTS\nservice  progress\ndetect   1/3")
