"""Many callers' submissions, combined into one transaction per turn.

A submission of one small activity pays mostly for what any transaction pays: the
savepoint, the owner lookups, the stored-volume queries, the audit head, the
read-back of the conflicts it wrote, the commit; even reading its one feature costs
about what reading a hundred does. One thread takes the submissions waiting, in
arrival order, and hands them to :meth:`Deconfliction.submit_each`, which pays once
for each run of them that may go together. Nobody waits for a batch to fill: a
submission that finds the thread idle goes at once, alone, and those arriving
meanwhile go together next. (Measured in-process against a stored million,
one-volume activities: 901/s one by one, 4,617/s sixteen at a time.)
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.scenario import Scenario, read_scenarios
from ..errors import InputError
from .deconfliction import Deconfliction, Submission, SubmitResult

MAX_ITEMS = 64  # submissions per transaction, at most
MAX_VOLUMES = 4_000  # volumes per transaction, at most (one larger goes alone)


def _as_is(exc: InputError) -> Exception:
    return exc


@dataclass
class Pending:
    """A submission waiting its turn, and what to do with it.

    ``document`` holds its volumes (a FeatureCollection, as :func:`read_scenarios`
    reads them together); ``submission`` makes the submission of what was read, and
    ``misread`` the error its caller hears when the document does not read.
    ``finish`` turns it and its result into what the caller gets, and ``done`` hands
    that (or the error) over. All run on the batching thread, with its connection.
    """

    document: dict[str, Any]
    submission: Callable[[Scenario], Submission]
    finish: Callable[[Submission, SubmitResult], Any]
    done: Callable[[Any], None]
    misread: Callable[[InputError], Exception] = _as_is


class Batcher:
    """The thread that submits waiting submissions, a run of them at a time."""

    def __init__(self, deconfliction: Deconfliction, *, max_items: int = MAX_ITEMS,
                 max_volumes: int = MAX_VOLUMES):
        self.deconfliction = deconfliction
        self.max_items = max_items
        self.max_volumes = max_volumes
        self._waiting: collections.deque[Pending] = collections.deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def put(self, pending: Pending) -> None:
        with self._wake:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="detente-batcher",
                                                daemon=True)
                self._thread.start()
            self._waiting.append(pending)
            self._wake.notify()

    def close(self) -> None:
        """Finish what waits, then stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if not self._waiting:
                    return
                taken = list(self._waiting)
                self._waiting.clear()
            self._turn(taken)

    def _turn(self, taken: list[Pending]) -> None:
        """Read what was taken (all at once), then submit it in arrival order, at most
        ``max_items`` submissions and ``max_volumes`` volumes at a time."""
        ready: list[tuple[Pending, Submission]] = []
        try:
            read = read_scenarios([p.document for p in taken],
                                  parallel=self.deconfliction.parallel)
        except Exception as exc:  # not a reading error: everyone taken hears of it
            for p in taken:
                p.done(exc)
            return
        for p, scenario in zip(taken, read, strict=True):
            try:
                if isinstance(scenario, InputError):
                    raise p.misread(scenario)
                ready.append((p, p.submission(scenario)))
            except Exception as exc:  # bad input: that caller's error alone
                p.done(exc)
        run: list[tuple[Pending, Submission]] = []
        volumes = 0
        for p, sub in ready:  # (submit_each finds which of a run may go together)
            n = len(sub.scenario.activities) + len(sub.scenario.zones)
            if run and (len(run) >= self.max_items or volumes + n > self.max_volumes):
                self._submit(run)
                run, volumes = [], 0
            run.append((p, sub))
            volumes += n
        if run:
            self._submit(run)

    def _submit(self, run: list[tuple[Pending, Submission]]) -> None:
        try:
            results = self.deconfliction.submit_each([sub for _, sub in run])
        except Exception as exc:  # the store failed: everyone in the run hears of it
            for p, _ in run:
                p.done(exc)
            return
        for (p, sub), result in zip(run, results, strict=True):
            if isinstance(result, Exception):
                p.done(result)
                continue
            try:
                p.done(p.finish(sub, result))
            except Exception as exc:
                p.done(exc)
