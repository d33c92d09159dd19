"""The pipeline graph: which experiment reads what another writes, in an order that respects it.

Stage B depends on stage A when one of B's input paths equals, lies under or contains one of
A's output paths, or when B reads a dataset (``{dataset: NAME}``) that one of A's outputs
registers. Two stages writing the same path (or one inside the other's), or registering the
same dataset, and any cycle are errors found before anything runs.
"""

from __future__ import annotations

import heapq
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from keel.errors import Problem, UserError, ValidationError


@dataclass(frozen=True, slots=True, kw_only=True)
class StageDecl:
    """What the graph needs of one stage: the paths it reads and writes, the datasets."""

    name: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    dataset_inputs: tuple[str, ...] = ()  # dataset names (a pinned @VERSION is dropped)
    dataset_outputs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Graph:
    """Stages in topological order (ties in declaration order) and each one's direct upstream."""

    order: tuple[str, ...]
    upstream: Mapping[str, tuple[str, ...]]

    def select(self, targets: Sequence[str]) -> tuple[str, ...]:
        """``targets`` and everything upstream of them, in order; every stage when empty.

        Raises:
            keel.errors.UserError: a target is not a stage (the closest name is suggested).
        """
        if not targets:
            return self.order
        for target in targets:
            if target not in self.upstream:
                from keel.base.suggest import did_you_mean  # difflib: only when needed

                raise UserError(f"unknown stage '{target}'; {did_you_mean(target, self.order)}")
        keep: set[str] = set()
        stack = list(targets)
        while stack:
            name = stack.pop()
            if name not in keep:
                keep.add(name)
                stack.extend(self.upstream[name])
        return tuple(n for n in self.order if n in keep)


def norm(path: str) -> str:
    """A declared path in one canonical form (``./a//b/`` → ``a/b``)."""
    return posixpath.normpath(path.replace("\\", "/")).rstrip("/")


def _ancestors(path: str) -> Iterable[str]:
    head = posixpath.dirname(path)
    while head:
        yield head
        head = posixpath.dirname(head)


def build_graph(stages: Sequence[StageDecl], *, spec_file: str = "keel.yaml") -> Graph:
    """The graph of ``stages`` (declaration order).

    Raises:
        keel.errors.ValidationError: outputs written by two stages, a dataset registered by two
            stages, or a cycle; every such problem at once.
    """
    problems: list[Problem] = []
    writers = _writers(stages, problems, spec_file=spec_file)
    registrars = _registrars(stages, problems, spec_file=spec_file)
    below: dict[str, set[str]] = {}  # folder -> stages writing something below it
    for path, name in writers.items():
        for folder in _ancestors(path):
            below.setdefault(folder, set()).add(name)
    upstream: dict[str, tuple[str, ...]] = {}
    for stage in stages:
        found: set[str] = set()
        for path in map(norm, stage.inputs):
            if path in writers:
                found.add(writers[path])
            found.update(writers[a] for a in _ancestors(path) if a in writers)
            found.update(below.get(path, ()))
        found.update(registrars[d] for d in stage.dataset_inputs if d in registrars)
        found.discard(stage.name)
        upstream[stage.name] = tuple(sorted(found))
    position = {s.name: i for i, s in enumerate(stages)}
    order = _toposort(upstream, position)
    if len(order) < len(stages):
        problems.append(
            _cycle_problem(
                upstream, set(upstream) - set(order), position=position, spec_file=spec_file
            )
        )
    if problems:
        raise ValidationError(problems)
    return Graph(order=order, upstream=upstream)


def _writers(
    stages: Sequence[StageDecl], problems: list[Problem], *, spec_file: str
) -> dict[str, str]:
    writers: dict[str, str] = {}
    for stage in stages:
        for path in map(norm, stage.outputs):
            other = writers.get(path)
            if other is not None and other != stage.name:
                problems.append(Problem(
                    file=spec_file,
                    message=f"stages '{other}' and '{stage.name}' both write {path}",
                    hint="each output path belongs to one stage",
                ))  # fmt: skip
            writers.setdefault(path, stage.name)
    for path, name in writers.items():
        for folder in _ancestors(path):
            other = writers.get(folder)
            if other is not None:
                problems.append(Problem(
                    file=spec_file,
                    message=f"output {path} of stage '{name}' lies inside output {folder} of "
                    f"stage '{other}'",
                    hint="declare outputs that do not overlap",
                ))  # fmt: skip
    return writers


def _registrars(
    stages: Sequence[StageDecl], problems: list[Problem], *, spec_file: str
) -> dict[str, str]:
    registrars: dict[str, str] = {}
    for stage in stages:
        for dataset in stage.dataset_outputs:
            other = registrars.setdefault(dataset, stage.name)
            if other != stage.name:
                problems.append(Problem(
                    file=spec_file,
                    message=f"stages '{other}' and '{stage.name}' both register dataset "
                    f"'{dataset}'",
                    hint="each dataset is the output of one stage",
                ))  # fmt: skip
    return registrars


def _toposort(
    upstream: Mapping[str, tuple[str, ...]], position: Mapping[str, int]
) -> tuple[str, ...]:
    """Kahn's algorithm; among ready stages the one declared first goes first."""
    waiting = {name: len(set(ups)) for name, ups in upstream.items()}
    downstream: dict[str, list[str]] = {}
    for name, ups in upstream.items():
        for up in set(ups):
            downstream.setdefault(up, []).append(name)
    ready = [(position[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for down in downstream.get(name, ()):
            waiting[down] -= 1
            if waiting[down] == 0:
                heapq.heappush(ready, (position[down], down))
    return tuple(order)


def _cycle_problem(
    upstream: Mapping[str, tuple[str, ...]],
    stuck: set[str],
    *,
    position: Mapping[str, int],
    spec_file: str,
) -> Problem:
    """Name one cycle among the stages Kahn's algorithm could not order."""
    start = min(stuck, key=position.__getitem__)
    path = [start]
    seen = {start: 0}
    node = start
    while True:
        # Every stuck stage has a stuck upstream stage: walking up must come back round.
        node = min((u for u in upstream[node] if u in stuck), key=position.__getitem__)
        if node in seen:
            loop = path[seen[node] :]
            break
        seen[node] = len(path)
        path.append(node)
    loop.reverse()  # walked upstream; print in the direction data flows...
    first = loop.index(min(loop, key=position.__getitem__))
    loop = loop[first:] + loop[:first]  # ...from the stage declared first
    text = " → ".join([*loop, loop[0]])
    return Problem(
        file=spec_file,
        message=f"pipeline cycle: {text}",
        hint="a stage cannot read what it or a stage downstream of it writes",
    )
