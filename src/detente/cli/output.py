"""Human and machine output: rich tables on stdout, messages and progress on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console()
err = Console(stderr=True)


def print_json(doc: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    return t


class _Bar:
    """Progress on stderr for long work; a no-op when off."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.task: Any = None

    def step(self, label: str) -> Callable[[int], None] | None:
        if self.progress is None:
            return None
        self.task = self.progress.add_task(label, total=None)
        return lambda n: self.progress.advance(self.task, n) if self.progress else None

    def stage(self, label: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=label)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[_Bar]:
    """A spinner with counts and elapsed time on stderr, only for long work."""
    if not enabled:
        yield _Bar(None)
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed:,} volumes"), TimeElapsedColumn(),
                  console=err, transient=True) as p:
        yield _Bar(p)


@contextmanager
def sweep_bar() -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr for a sweep of more than one transaction's work, fed (done,
    found) counts of conflicts; nothing for a small one."""
    with Progress(TextColumn("sweeping"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("conflicts"), TimeRemainingColumn(), console=err,
                  transient=True) as p:
        task = None

        def tell(done: int, found: int) -> None:
            nonlocal task
            if task is None:
                if found <= done:  # all in one transaction: no bar
                    return
                task = p.add_task("sweep", total=found)
            p.update(task, completed=done)

        yield tell
