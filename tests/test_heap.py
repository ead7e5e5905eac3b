"""The start-up heap is frozen once: later full collections skip it, later garbage is still
collected."""

from __future__ import annotations

import gc

import pytest

import anju.app
from anju.kit.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.mark.req("R11")
def test_the_start_up_heap_is_frozen_once_and_later_garbage_is_still_collected() -> None:
    frozen = freeze_startup_heap()
    assert frozen > 100_000  # the platform's modules, mappings, routes: alive at start-up
    assert freeze_startup_heap() == frozen  # once per process
    # What existed at the freeze is no longer walked by a collection …
    assert not any(o is anju.app.create_app for o in gc.get_objects())
    # … while a reference cycle made later is still found and freed.
    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
