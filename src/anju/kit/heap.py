"""Keep CPython's cyclic garbage collector off the objects a server process starts with.

A started platform holds a few hundred thousand long-lived objects — modules, SQLAlchemy
mappings and compiled statements, FastAPI routes, pydantic models — all in the collector's
oldest generation. Every full (generation 2) collection walks all of them: measured in
``bench_access``, 40–190 ms each, every half minute or so under load, with the event loop
stopped meanwhile, and each such pause was a spike of the p99. :func:`freeze_startup_heap`
collects once and then moves everything alive into the permanent generation (:func:`gc.freeze`),
which later collections skip. Reference counting still frees those objects when they are no
longer used; only a reference cycle among them would now outlive its use — start-up objects
live as long as the process anyway.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_heap() -> int:
    """Collect garbage, then exempt every object alive now from later collections (once per
    process: later calls do nothing). Returns how many objects are exempt."""
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
    return gc.get_freeze_count()
