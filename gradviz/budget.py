"""The graph-size budget: how many nodes a trace may create, decided before the memory is spent.

Every operation of the tracer tells Tracer.reserve how many nodes it is about to create before it computes
anything (a scalar matmul (n,k)@(k,m): n·m·k products and n·m sums). A trace that would pass the limit
stops there, at the model's line, instead of growing until the kernel kills it. The default limit is what
half of the memory free when the trace starts can hold, at the measured cost of a node.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .errors import GradvizError

# Peak resident memory per node of a scalar trace + backward + figure (`gradviz trace -g scalar`), measured
# by bench/graph_memory.py as the slope between two sizes: 895 B for a scalar matmul (three edges per
# node, the most of any common model), 550-650 B for a chain or a wide sum (one edge per node).
BYTES_PER_NODE = 1000
# Peak resident memory of `gradviz render` per byte of the saved JSON file (bench/graph_memory.py: 7.0,
# json.loads' objects and then the graph built from them).
READ_BYTES_PER_JSON_BYTE = 7
SHARE = 0.5  # of the free memory: the rest stays for the views, the figure's renderer and everything else
FALLBACK_FREE = 4 * 2**30  # where the free memory cannot be read: what a modest laptop has free
# Below this many nodes (about 100 MB) no machine gradviz runs on is at risk: the free memory is read only
# once a trace grows past it.
QUICK = 100_000


class GraphTooLarge(GradvizError):
    """A trace (or a saved graph) would take more nodes than --max-graph-nodes allows: what and how much,
    then what to do (a command may say it in its own words)."""

    def __init__(self, message: str, todo: str) -> None:
        super().__init__(message, todo)
        self.message, self.todo = message, todo

    def __str__(self) -> str:
        return f"{self.message}: {self.todo}"


class OverBudget(BaseException):
    """Raised inside the model at the operation that would pass the limit, with GraphTooLarge's message and
    todo, and turned into GraphTooLarge at the model's line by the tracer. A BaseException, so that a
    model's own `except Exception` cannot swallow it and carry on with a different graph."""


def free_memory() -> int:
    """Bytes of memory available to a new process now: Linux's MemAvailable (free memory plus the caches the
    kernel would drop), else the free pages sysconf reports, else FALLBACK_FREE."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return FALLBACK_FREE


def default_max_nodes(free: int | None = None) -> int:
    """The default limit: the nodes half of the free memory holds."""
    return int((free_memory() if free is None else free) * SHARE) // BYTES_PER_NODE


def size_text(nbytes: float) -> str:
    """1.2 GB, 340 MB: about how much memory, for a message."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}" if nbytes < 10 * scale else f"{nbytes / scale:,.0f} {unit}"
    return f"{nbytes / 1e3:.0f} kB"


class Budget:
    """The most nodes one trace may hold: max_nodes, or by default what half of the free memory holds."""

    def __init__(self, max_nodes: int | None = None) -> None:
        if max_nodes is not None and max_nodes < 1:
            raise GradvizError(f"max_graph_nodes must be a positive number of nodes, not {max_nodes}")
        self.max_nodes = max_nodes
        self._free: int | None = None
        # a graph up to this size needs no look: the limit, or QUICK until the free memory has been read
        self._fits = max_nodes if max_nodes is not None else QUICK

    @property
    def limit(self) -> int:
        if self.max_nodes is not None:
            return self.max_nodes
        if self._free is None:
            self._free = free_memory()
        return default_max_nodes(self._free)

    def check(self, total: int, adding: int, what: str | Callable[[], str], scalar: bool) -> None:
        """Raise OverBudget if a graph of `total` nodes, `adding` of them about to be created by `what`,
        passes the limit."""
        if total <= self._fits:  # first, as it runs for every operation
            return
        self._fits = self.limit
        if total <= self._fits:
            return
        todo = "use --granularity tensor or auto, or a smaller input" if scalar else "use a smaller input"
        nodes = f"{adding:,} node{'s' * (adding != 1)}"
        grows = f"add {nodes} to the {total - adding:,} traced so far" if total > adding else f"make {nodes}"
        if callable(what):  # the description, written out only for a refusal
            what = what()
        raise OverBudget(f"{what} would {grows}, about {size_text(total * BYTES_PER_NODE)} of memory"
                         f"{' in all' * (total > adding)}, over {self._limit_text()}",
                         f"{todo} (--max-graph-nodes N sets the limit)")

    def read(self, path: Path) -> bytes:
        """The bytes of a saved graph, refused before reading when reading them would take more memory than
        the limit's nodes: a file by its size, a pipe or a device (no size) by reading no more than that."""
        most = self.limit * BYTES_PER_NODE // READ_BYTES_PER_JSON_BYTE
        self._check_file(str(path), path.stat().st_size)
        with open(path, "rb") as f:
            data = f.read(most + 1)
        self._check_file(str(path), len(data), more=len(data) > most)
        return data

    def _check_file(self, origin: str, nbytes: int, more: bool = False) -> None:
        need = nbytes * READ_BYTES_PER_JSON_BYTE
        nodes = -(-need // BYTES_PER_NODE)
        if nodes <= self.limit and not more:
            return
        reading = (f"it holds more than {size_text(nbytes)}, and reading it would take over" if more else
                   f"reading this {size_text(nbytes)} graph would take about")
        raise GraphTooLarge(f"{origin}: {reading} {size_text(need)} of memory, as much as a graph of {nodes:,} nodes, "
                            f"over {self._limit_text()}", "raise --max-graph-nodes if this machine can hold it")

    def _limit_text(self) -> str:
        if self.max_nodes is not None:
            return f"--max-graph-nodes {self.max_nodes:,}"
        return (f"the limit of {self.limit:,} nodes (half of the {size_text(self._free or 0)} of memory free, "
                f"at ~{size_text(BYTES_PER_NODE)} per node)")
