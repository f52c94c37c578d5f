"""The order a sweep measures in: configurations in batches (model groups, or one at a time),
skipping those a resumed folder has, and re-queueing at half the batch size a configuration
that ran out of memory. Where a batch runs (this process or a separate one) is the runner's
business; each row is written to the results folder as it arrives."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, TextIO

from castbench.results import ResultsFolder
from castbench.timing.config import TimingConfig, model_groups
from castbench.timing.progress import Progress

OnStart = Callable[[TimingConfig], None]
OnRow = Callable[[dict[str, Any]], None]
GroupRunner = Callable[[list[TimingConfig], OnStart, OnRow], None]


def partition(configs: list[TimingConfig], isolate: str) -> list[list[TimingConfig]]:
    """The batches a sweep hands to one runner call: model groups, or single configurations."""
    if isolate == "config":
        return [[config] for config in configs]
    return model_groups(configs)


class _OomRetry:
    """Smaller-batch twins of configurations that ran out of memory, still to be measured."""

    def __init__(self, configs: list[TimingConfig], done: set[str], progress: Progress) -> None:
        self.planned = {c.key for c in configs} | done
        self.by_key = {c.key: c for c in configs}
        self.retried_from: dict[str, int] = {}
        self.pending: list[TimingConfig] = []
        self.progress = progress

    def after(self, row: dict[str, Any]) -> None:
        """Plan the half-batch twin of ``row``'s configuration when it ran out of memory,
        unless the sweep measures that batch size anyway."""
        config = self.by_key.get(row["key"])
        if row["status"] != "oom" or config is None or config.batch_size == 1:
            return
        smaller = replace(config, batch_size=config.batch_size // 2)
        if smaller.key in self.planned:
            return
        self.planned.add(smaller.key)
        self.by_key[smaller.key] = smaller
        self.retried_from[smaller.key] = self.retried_from.get(row["key"], config.batch_size)
        self.pending.append(smaller)
        self.progress.total += 1


def drive(
    configs: Iterable[TimingConfig],
    folder: ResultsFolder,
    run_group: GroupRunner,
    *,
    isolate: str = "none",
    resume: bool = False,
    oom_retry: bool = False,
    stream: TextIO = sys.stderr,
) -> list[dict[str, Any]]:
    """Measure every configuration (not already in ``folder`` with ``resume``) through
    ``run_group``, writing each row as it arrives.

    With ``oom_retry``, a configuration that runs out of memory is measured again at half the
    batch size, down to 1, unless the sweep measures that batch size anyway; the smaller row
    carries ``retried_from_batch``.
    """
    configs = list(configs)
    if resume:
        done = folder.finished_keys()
        configs = [c for c in configs if c.key not in done]
    progress = Progress(len(configs), stream)
    retry = _OomRetry(configs, folder.finished_keys(), progress)
    written: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        if row["key"] in retry.retried_from:
            row = {**row, "retried_from_batch": retry.retried_from[row["key"]]}
        written.append(folder.add(row))
        progress.done(row)
        if oom_retry:
            retry.after(row)

    queue = deque(partition(configs, isolate))
    while queue:
        run_group(queue.popleft(), progress.start, record)
        if retry.pending:  # measured next, in a fresh process when isolated
            queue.extendleft(reversed(partition(retry.pending, isolate)))
            retry.pending = []
    return written
