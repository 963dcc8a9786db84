"""The cycle search behind depends_on, as a table: one question per level of the graph,
never one per task (no server)."""

from __future__ import annotations

from uuid import UUID

import pytest

from taskflow.gateway.parents import reaches


def _id(n: int) -> UUID:
    return UUID(int=n)


class Graph:
    """``parents_of`` over a dict of edges, counting how often it is asked."""

    def __init__(self, edges: dict[int, list[int]]) -> None:
        self.edges = {_id(k): [_id(p) for p in v] for k, v in edges.items()}
        self.asked: list[list[UUID]] = []

    async def parents_of(self, tasks: list[UUID]) -> dict[UUID, list[UUID]]:
        self.asked.append(tasks)
        return {t: self.edges[t] for t in tasks if t in self.edges}


CHAIN = {n: [n - 1] for n in range(2, 7)}  # 6 -> 5 -> ... -> 1
WIDE = {1: list(range(10, 60)), **{n: [99] for n in range(10, 60)}}  # 50 parents sharing one grandparent


@pytest.mark.parametrize(
    ("edges", "start", "target", "found", "questions"),
    [
        ({}, [1], 1, True, 0),  # the target is a direct parent: nothing to ask
        ({}, [1], 2, False, 1),
        (CHAIN, [6], 1, True, 5),  # one question per level
        (CHAIN, [6], 7, False, 6),
        (WIDE, [1], 99, True, 2),  # 51 tasks, 2 questions
        (WIDE, [1], 100, False, 3),
        ({1: [2], 2: [1]}, [1], 3, False, 2),  # a cycle already stored does not loop forever
        ({1: [2, 3], 2: [4], 3: [4], 4: [5]}, [1], 5, True, 3),  # a diamond: 4 asked about once
    ],
)
async def test_reaches(edges: dict[int, list[int]], start: list[int], target: int, found: bool, questions: int) -> None:
    graph = Graph(edges)
    assert await reaches([_id(s) for s in start], _id(target), graph.parents_of) is found
    assert len(graph.asked) == questions
    asked = [task for level in graph.asked for task in level]
    assert len(asked) == len(set(asked))  # each task asked about once
