"""Stage instances as real child processes of the agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from fogverse.agent.instances import InstanceSupervisor
from fogverse.wire.nodes import InstanceStart
from tests.polling import wait_until_sync

_CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    Path(sys.argv[1]).write_text(" ".join([str(os.getpid()), os.environ["FOGVERSE_INSTANCE_ID"],
        os.environ["FOGVERSE_SERVICE_NAME"], os.environ["FOGVERSE_NODE_ID"],
        os.environ.get("FROM_ORDER", ""), os.environ.get("AGENT_SECRET", "-"),
        os.environ.get("BATTERY", "-")]))
    time.sleep(float(sys.argv[2]))
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _order(tmp_path: Path, instance_id: str, seconds: float) -> InstanceStart:
    return InstanceStart("node-a", instance_id, "detect",
                         command=(sys.executable, "-c", _CHILD),
                         args=(str(tmp_path / f"{instance_id}.txt"), str(seconds)),
                         env={"FROM_ORDER": "yes"})


def test_start_runs_the_ordered_command_with_its_ids(tmp_path: Path) -> None:
    supervisor = InstanceSupervisor("node-a", log_dir=tmp_path)
    event = supervisor.start(_order(tmp_path, "i-1", 60))
    assert event.state == "started" and event.pid is not None
    report = tmp_path / "i-1.txt"
    wait_until_sync(report.exists)
    pid, instance, service, node, extra, *_ = report.read_text().split()
    assert (instance, service, node, extra) == ("i-1", "detect", "node-a", "yes")
    assert supervisor.running == ("i-1",)
    stopped = supervisor.stop("i-1", grace=5)
    assert stopped is not None and stopped.state == "stopped"
    assert not _alive(int(pid))
    assert supervisor.stop("i-1", grace=5) is None  # a repeated stop is harmless


def test_a_second_start_of_the_same_id_is_refused(tmp_path: Path) -> None:
    supervisor = InstanceSupervisor("node-a", log_dir=tmp_path)
    supervisor.start(_order(tmp_path, "i-1", 60))
    again = supervisor.start(_order(tmp_path, "i-1", 60))
    assert again.state == "refused" and "already runs" in again.detail
    supervisor.stop("i-1", grace=5)


def test_an_instance_that_exits_is_reported_once(tmp_path: Path) -> None:
    supervisor = InstanceSupervisor("node-a", log_dir=tmp_path)
    supervisor.start(_order(tmp_path, "i-1", 0))
    events: list[object] = []
    wait_until_sync(lambda: events.extend(supervisor.reap()) or events)
    assert [(e.state, e.exit_code) for e in events] == [("exited", 0)]  # type: ignore[attr-defined]
    assert supervisor.reap() == [] and supervisor.running == ()


def test_instances_die_with_the_agent(tmp_path: Path) -> None:
    # A stand-in agent process starts an instance, then is SIGKILLed.
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from fogverse.agent.instances import InstanceSupervisor
        from fogverse.wire.nodes import InstanceStart
        s = InstanceSupervisor("node-a", log_dir=Path({str(tmp_path)!r}))
        s.start(InstanceStart("node-a", "i-1", "detect", command=(sys.executable, "-c",
                {_CHILD!r}), args=({str(tmp_path / 'i-1.txt')!r}, "600")))
        time.sleep(600)
    """)
    agent = subprocess.Popen([sys.executable, "-c", script])
    report = tmp_path / "i-1.txt"
    wait_until_sync(lambda: report.exists() and report.read_text())
    pid = int(report.read_text().split()[0])
    assert _alive(pid)
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    wait_until_sync(lambda: not _alive(pid), what="the instance to die with its agent")


def test_a_child_inherits_the_allow_list_not_the_agents_environment(tmp_path: Path) -> None:
    parent = {"PATH": os.environ["PATH"], "AGENT_SECRET": "s3cret", "BATTERY": "15",
              "LC_ALL": "C.UTF-8"}
    supervisor = InstanceSupervisor("node-a", log_dir=tmp_path, parent_env=parent)
    supervisor.start(_order(tmp_path, "i-1", 60))
    report = tmp_path / "i-1.txt"
    wait_until_sync(lambda: report.exists() and report.read_text())
    *_, extra, secret, battery = report.read_text().split()
    # The order's settings arrive; the agent's secrets and its device profile do not.
    assert (extra, secret, battery) == ("yes", "-", "-")
    supervisor.stop("i-1", grace=5)
