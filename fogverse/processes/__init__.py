"""Child processes: how they start, whether they die with us, and how they are stopped.

Every OS process this project starts goes through here: the embedded Kafka JVM,
a parallel stage's worker processes and the LOCAL provider's stage instances.
The reasoning is written once, here.

The facts:

* Linux's ``PR_SET_PDEATHSIG`` signals a child when the *thread* that forked it
  exits, not when the process does. A child forked from a short-lived thread
  (``asyncio.to_thread``, a pool) would be killed as soon as that thread retired.
* ``subprocess``'s ``preexec_fn`` runs Python code between fork and exec, and
  the Python documentation calls it unsafe when the parent has threads: the child
  may deadlock on a lock another thread held at the moment of the fork. Every
  process here has threads (librdkafka's, asyncio's executor), so it is never used.
* A signal sent to a process group reaches the grandchildren too; a signal sent
  to one pid does not.

What follows from them:

* Every child is forked from one long-lived thread (:func:`spawn`,
  :func:`in_fork_thread`); that thread ends only with the process, so "the
  forking thread exited" means "we exited".
* A child that must die with us arms the death signal itself, after the fork:
  a Python child (a parallel worker) calls :func:`set_death_signal` first thing;
  another program (the JVM) is started through ``death_signal.py``, a script that
  arms it in a fresh single-threaded interpreter and then execs the command.
* Every child leads a new session (``start_new_session``), hence its own process
  group: a terminal's Ctrl-C reaches only us, and we stop children in order; a
  stop signals the group, so nothing the child started is left behind.

Who dies with whom: the JVM and parallel workers die with their parent (a crashed
test run leaves no broker; a killed stage leaves no workers). LOCAL stage
instances deliberately do not: the data plane outlives the Master, which finds
them again after a restart by their :class:`ProcessIdentity`.
"""

from fogverse.processes.death_signal import set_death_signal
from fogverse.processes.groups import has_exited, signal_group, terminate, wait_gone
from fogverse.processes.identity import ProcessIdentity
from fogverse.processes.spawn import in_fork_thread, spawn

__all__ = [
    "ProcessIdentity",
    "has_exited",
    "in_fork_thread",
    "set_death_signal",
    "signal_group",
    "spawn",
    "terminate",
    "wait_gone",
]
