"""Scale-in stops the instance on the worst-scoring node first when the provider ranks them."""

from __future__ import annotations

from deploy_scripts import DeployResult
from master.deployer.instances import Deployed, StageState
from master.plans import StagePlan


def _deployed(instance_id: str, rank: float | None) -> Deployed:
    info = {} if rank is None else {"scale_in_rank": lambda: rank}
    result = DeployResult(instance_id, stop=lambda: None, info=info)
    return Deployed(instance_id, result, 0.0, live_id=instance_id)


def _state(*deployed: Deployed) -> StageState:
    st = StageState(StagePlan(("in", "out"), "svc"))
    st.deployed.extend(deployed)
    return st


def test_the_worst_node_stops_first() -> None:
    st = _state(_deployed("on-desktop", 0.9), _deployed("on-phone", 0.2),
                _deployed("on-laptop", 0.5))
    victim = st.newest_stoppable()
    assert victim is not None and victim.deploy_id == "on-phone"


def test_without_ranks_the_newest_stops_first() -> None:
    st = _state(_deployed("old", None), _deployed("new", None))
    victim = st.newest_stoppable()
    assert victim is not None and victim.deploy_id == "new"
