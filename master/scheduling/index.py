"""An index of placeable nodes ordered by score, so a decision needs no scan of the fleet.

Every node score for a task is one of four node-only keys: the shared key, times
the network factor (large inputs), times the GPU bonus (GPU tasks), or both.
Each key has a pair of max-heaps: nodes that may take long tasks and nodes that
may not. A decision walks the merged heads in (score desc, registration asc)
order, which is exactly the seed's "best score, first registered on ties", and
stops at the first node the task fits. Nodes it passes over (too little free
CPU or memory, or tried before) go back afterwards. Entries are never updated
in place: a changed node bumps its version and pushes fresh entries; stale ones
are dropped when they surface, and the heaps are rebuilt when garbage dominates.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush

from master.scheduling.nodes import NodeRecord
from master.scheduling.tasks import TaskSpec

__all__ = ["ScoreIndex"]

_BASE, _LARGE, _GPU, _GPU_LARGE = range(4)
_Entry = tuple[float, int, int]
_Heap = list[_Entry]


class ScoreIndex:
    def __init__(self, large_input_mb: float) -> None:
        self.large_input_mb = large_input_mb
        self._nodes: list[NodeRecord | None] = []
        self._heaps: list[list[_Heap]] = [[[], []] for _ in range(4)]
        self._entries = 0
        self._live = 0

    def add(self, node: NodeRecord) -> None:
        assert node.reg == len(self._nodes)
        self._nodes.append(node)
        self._live += 1
        self.put(node)

    def remove(self, node: NodeRecord) -> None:
        self._nodes[node.reg] = None
        self._live -= 1

    def put(self, node: NodeRecord) -> None:
        """Index ``node`` as it is now (call after :meth:`NodeRecord.refresh`)."""
        if not node.listed:
            return
        side = 1 if node.long_ok else 0
        reg, version = node.reg, node.version
        heaps = self._heaps
        heappush(heaps[_BASE][side], (-node.key, reg, version))
        heappush(heaps[_LARGE][side], (-node.key_large, reg, version))
        self._entries += 2
        if node.capacity.gpu_available:
            heappush(heaps[_GPU][side], (-node.key_gpu, reg, version))
            heappush(heaps[_GPU_LARGE][side], (-node.key_gpu_large, reg, version))
            self._entries += 2
        if self._entries > 6 * self._live + 4096:  # mostly stale by now
            self._rebuild()

    def best(self, spec: TaskSpec, long_task: bool, tried: tuple[str, ...] = (),
             take: bool = True) -> NodeRecord | None:
        """The highest-scoring listed node ``spec`` fits, first registered on ties.

        With ``take`` its entry leaves the index (the caller reserves and re-puts it).
        """
        family = (_GPU if spec.requires_gpu else _BASE) + (
            1 if spec.input_size_mb > self.large_input_mb else 0)
        heaps = self._heaps[family]
        long_ok = heaps[1]
        short_only = None if long_task else heaps[0]
        nodes = self._nodes
        cpu, memory = spec.cpu_millicores / 1000, spec.memory_mb
        aside: list[tuple[_Heap, _Entry]] = []
        found: NodeRecord | None = None
        while True:
            _drop_stale(long_ok, nodes)
            if short_only is not None:
                _drop_stale(short_only, nodes)
                if short_only and (not long_ok or short_only[0] < long_ok[0]):
                    heap = short_only
                elif long_ok:
                    heap = long_ok
                else:
                    break
            elif long_ok:
                heap = long_ok
            else:
                break
            entry = heappop(heap)
            node = nodes[entry[1]]
            assert node is not None
            if node.free_cpu >= cpu and node.free_mem >= memory and (
                    not tried or node.node_id not in tried):
                found = node
                if not take:
                    heappush(heap, entry)
                break
            aside.append((heap, entry))
        for heap, entry in aside:
            heappush(heap, entry)
        return found

    def _rebuild(self) -> None:
        for family in self._heaps:
            for heap in family:
                heap.clear()
        self._entries = 0
        live = [n for n in self._nodes if n is not None and n.listed]
        for node in live:
            side = 1 if node.long_ok else 0
            entry = (node.reg, node.version)
            self._heaps[_BASE][side].append((-node.key, *entry))
            self._heaps[_LARGE][side].append((-node.key_large, *entry))
            self._entries += 2
            if node.capacity.gpu_available:
                self._heaps[_GPU][side].append((-node.key_gpu, *entry))
                self._heaps[_GPU_LARGE][side].append((-node.key_gpu_large, *entry))
                self._entries += 2
        for family in self._heaps:
            for heap in family:
                heapify(heap)

    def reindex(self, large_input_mb: float) -> None:
        """Policies changed: every node has been refreshed; start the heaps afresh."""
        self.large_input_mb = large_input_mb
        self._rebuild()


def _drop_stale(heap: _Heap, nodes: list[NodeRecord | None]) -> None:
    while heap:
        _, reg, version = heap[0]
        node = nodes[reg]
        if node is not None and node.version == version:
            return
        heappop(heap)
