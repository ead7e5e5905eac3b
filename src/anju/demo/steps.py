"""The demo's step runner: each step does something and checks what it caused; the first
failure ends the journey (later steps depend on it) and the exit status says so."""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from anju.errors import AnjuError


class StepFailed(Exception):
    """A step's check did not hold: what was expected and what happened."""


def expect(condition: bool, what: str) -> None:
    """Fail the step with ``what`` unless ``condition`` holds."""
    if not condition:
        raise StepFailed(what)


@dataclass
class StepOutcome:
    number: int
    title: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Journey:
    """Runs steps in order, printing each as it ends (``out`` is ``print`` or a test's list)."""

    out: Callable[[str], None]
    outcomes: list[StepOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.ok for o in self.outcomes)

    async def step(self, title: str, action: Callable[[], Awaitable[str]]) -> bool:
        """Run one step; print ``✓``/``✗`` with its detail; whether it passed."""
        number = len(self.outcomes) + 1
        started = time.perf_counter()
        try:
            detail, ok = await action(), True
        except StepFailed as exc:
            detail, ok = f"未达预期 / not as expected: {exc}", False
        except AnjuError as exc:
            detail, ok = f"{exc.message} [{exc.code}]", False
        except Exception as exc:  # the demo reports any failure as a failed step, then stops
            detail, ok = f"{type(exc).__name__}: {exc}", False
            self.out(traceback.format_exc())
        outcome = StepOutcome(number, title, ok, detail, time.perf_counter() - started)
        self.outcomes.append(outcome)
        mark = "✓" if ok else "✗"
        self.out(f"[{number:02d}] {mark} {title} ({outcome.seconds:.1f} s)")
        for line in detail.splitlines():
            self.out(f"       {line}")
        return ok

    def summary(self) -> str:
        passed = sum(o.ok for o in self.outcomes)
        verdict = "全部通过 / every step behaved as it should" if self.ok else "未通过 / FAILED"
        return f"{passed}/{len(self.outcomes)} steps — {verdict}"
