"""What the server does besides answering requests: deliver webhooks, feed the event
streams, and sweep deadlines and expiries.

Each worker has its own store connection, used from one thread only (a one-thread
executor), and wakes on the in-process bus after a commit that wrote events; it also
polls, so events committed by another process (the CLI, another server) go out too.
Delivery is at least once: an attempt is recorded after the receiver answers, so a
crash in between sends the event again on restart (receivers de-duplicate on the id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import httpx
import orjson

from ..core.instants import parse_instant
from ..service.deconfliction import utc_now
from ..service.hotline import Hotline
from ..service.journal import SYSTEM, Bus, transaction
from ..service.lifecycle import Lifecycle
from ..service.monitor import Monitor
from ..service.outbox import SIGNATURE_HEADER, Destinations, event_json, sign
from ..store import Store, open_store
from ..store.dialogue_contract import Attempt, Due, EventRow
from .egress import webhook_client

T = TypeVar("T")
log = logging.getLogger("detente.api")
HUB_PAGE = 1000  # events the hub reads at a time


@dataclass(frozen=True)
class Retry:
    """Exponential backoff: base * 2^(attempt-1), capped, for at most ``for_s``."""

    base_s: float = 1.0
    cap_s: float = 600.0
    for_s: float = 86_400.0

    def next_at(self, attempts: int, now: float, created: float) -> float | None:
        """When to try again after ``attempts`` failures (None: give up)."""
        at = now + min(self.base_s * 2 ** (attempts - 1), self.cap_s)
        return at if at - created <= self.for_s else None


class _Worker:
    """A store connection on one thread of its own, and a wake-up flag (raised by the
    bus after commits that wrote events, for workers that ``WAKE`` on them)."""

    WAKE = True

    def __init__(self, db: str, bus: Bus):
        self.db = db
        self.bus = bus
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=type(self).__name__)
        self.store: Store | None = None
        self.wake = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        if self.WAKE:
            bus.subscribe(self._poke)

    def _poke(self) -> None:
        self.loop.call_soon_threadsafe(self.wake.set)

    async def call(self, fn: Callable[[Store], T]) -> T:
        def run() -> T:
            if self.store is None:
                self.store = open_store(self.db)
            return fn(self.store)
        return await self.loop.run_in_executor(self.executor, run)

    async def nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), max(seconds, 0.0))
        self.wake.clear()

    def close(self) -> None:
        if self.WAKE:
            self.bus.unsubscribe(self._poke)

        def shut() -> None:
            if self.store is not None:
                self.store.close()
        self.executor.submit(shut)
        self.executor.shutdown(wait=True)


class Dispatcher(_Worker):
    """Delivers each webhook's events in order, one at a time per webhook, retrying a
    failed one (and holding the later ones back) with exponential backoff. Outcomes
    are recorded a batch at a time, after the receiver has answered."""

    BATCH = 64

    def __init__(self, db: str, bus: Bus, retry: Retry, poll_s: float, timeout_s: float,
                 destinations: Destinations):
        super().__init__(db, bus)
        self.destinations = destinations
        self.retry = retry
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.busy: set[int] = set()
        self.leases: dict[int, float] = {}  # webhook -> when this process's claim ends
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def lease_s(self) -> float:
        """How long a claim on a webhook's deliveries lasts unless renewed: how soon
        another server takes over from one that died mid-batch."""
        return self.timeout_s + 5.0

    def _claim(self, st: Store) -> list[list[Due]]:
        """Renew the claims about to run out; return the due batches this process may
        deliver. Server processes on one database claim each webhook's deliveries, so
        each event goes out once, not once per process."""
        now = time.time()
        renew = [(w, end) for w, end in self.leases.items() if end - now < self.lease_s - 2]
        due = st.due(now, sorted(self.busy), self.BATCH)
        if not due and not renew:
            return []
        until = now + self.lease_s
        with st.write():
            mine = set(st.claim([*renew, *((b[0].webhook.id, None) for b in due)], until,
                                now))
        for w, _ in renew:
            if w in mine:
                self.leases[w] = until
            else:  # lost (this process stalled past its lease): stop that batch
                self.leases.pop(w, None)
        batches = [b for b in due if b[0].webhook.id in mine]
        for b in batches:
            self.leases[b[0].webhook.id] = until
        return batches

    async def run(self) -> None:
        async with webhook_client(self.destinations, self.timeout_s) as client:
            while True:
                due = await self.call(self._claim)
                for batch in due:
                    self.busy.add(batch[0].webhook.id)
                    task = asyncio.create_task(self._deliver(client, batch))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                nxt = await self.call(lambda st: st.next_due())
                now = time.time()
                await self.nap(self.poll_s if nxt is None or nxt <= now
                               else min(nxt - now, self.poll_s))

    async def _deliver(self, client: httpx.AsyncClient, batch: list[Due]) -> None:
        """Send in order until one fails or the claim nears its end; record what
        happened (which ends the claim)."""
        done: list[tuple[Due, Attempt]] = []
        try:
            for d in batch:
                if time.time() + self.timeout_s > self.leases.get(d.webhook.id, 0.0):
                    break  # the claim could run out before an answer
                attempt = await self._post(client, d)
                done.append((d, attempt))
                if not attempt.delivered:
                    break
        finally:
            await self.call(lambda st: self._finish(st, batch[0].webhook.id, done))
            self.busy.discard(batch[0].webhook.id)
            self.wake.set()

    def _finish(self, st: Store, webhook_id: int, done: list[tuple[Due, Attempt]]) -> None:
        """Record the batch's attempts, which ends its claim (dropped here first, on the
        store's thread, so that no renewal slips in between)."""
        held = self.leases.pop(webhook_id, None)
        if done:
            self._record(st, done)
        elif held is not None:
            with st.write():
                st.claim([(webhook_id, held)], 0.0, time.time())  # give it back

    async def _post(self, client: httpx.AsyncClient, d: Due) -> Attempt:
        body = orjson.dumps(event_json(d.event))
        sent = time.time()
        status: int | None = None
        error: str | None = None
        try:
            r = await client.post(d.webhook.url, content=body, headers={
                "Content-Type": "application/json",
                "Detente-Event-Id": str(d.event.id),
                "Detente-Event-Type": d.event.type,
                SIGNATURE_HEADER: sign(d.webhook.secret, int(sent), body)})
            status = r.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        now = time.time()
        next_at = None if error is None else self.retry.next_at(
            d.attempts + 1, now, _unix(d.event.created_at))
        return Attempt(d.webhook.id, d.event.id, status, error, (now - sent) * 1000,
                       error is None, next_at)

    def _record(self, st: Store, done: list[tuple[Due, Attempt]]) -> None:
        delivered = []
        with transaction(st, utc_now, SYSTEM) as j:
            st.record_attempts([a for _, a in done], j.now)
            for d, a in done:
                e = d.event
                if a.delivered and e.conflict_id is not None:
                    j.audit("event.delivered", f"conflict/{e.conflict_id}",
                            {"party": e.party, "event": e.id, "type": e.type,
                             "webhook": a.webhook_id})
                elif not a.delivered and a.next_at is None:
                    j.audit("event.undeliverable", f"webhook/{a.webhook_id}",
                            {"party": e.party, "event": e.id, "attempts": d.attempts + 1})
                if a.delivered:
                    delivered.append(e)
        for e in delivered:
            _message_delivered(st, e)

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        super().close()


def _unix(instant: str) -> float:
    return parse_instant(instant) / 1e9


def _message_delivered(st: Store, e: EventRow) -> None:
    """A message's event reached its recipient (by webhook or on a stream)."""
    if e.type == "message.created":
        message = orjson.loads(e.body)["message"]
        Hotline(st, utc_now).delivered(e.party, message["id"], message["thread"])


class Hub(_Worker):
    """Reads new events once and hands them to the connected streams of their party."""

    def __init__(self, db: str, bus: Bus, poll_s: float, keepalive_s: float = 15.0):
        super().__init__(db, bus)
        self.poll_s = poll_s
        self.keepalive_s = keepalive_s
        self.queues: dict[str, set[asyncio.Queue[tuple[EventRow, bytes] | None]]] = {}
        self.last = 0
        self.receipted: dict[int, None] = {}  # message events marked delivered (recent)

    async def run(self) -> None:
        self.last = await self.call(lambda st: st.last_event_id())
        while True:
            # Only the events of parties with a stream open are read (a submission in a
            # crowd makes hundreds, mostly for nobody listening: reading them all was a
            # tenth of the server's time), with the newest id, in one call.
            asked = self._listening()
            upto, rows = await self.call(partial(_newest_and_listened, parties=asked,
                                                 after=self.last))
            self._hand(rows)
            if len(rows) == HUB_PAGE:
                await self._hand_from(asked, rows[-1].id, upto)
            # A party whose first stream opened during that call was not asked for, and
            # its replay from the store may have stopped short of ``upto``.
            await self._hand_from([p for p in self._listening() if p not in asked],
                                  self.last, upto)
            self.last = upto
            await self.nap(self.poll_s)

    def _listening(self) -> list[str]:
        return sorted(p for p, listeners in self.queues.items() if listeners)

    async def _hand_from(self, parties: list[str], after: int, upto: int) -> None:
        """Read these parties' events in ``(after, upto]``, a page at a time, and hand
        them over."""
        while parties and after < upto:
            rows = await self.call(partial(_listened, parties=parties, after=after,
                                           upto=upto))
            self._hand(rows)
            after = rows[-1].id if len(rows) == HUB_PAGE else upto

    def _hand(self, rows: list[EventRow]) -> None:
        for e in rows:
            message = _sse(e)  # formatted once for all of the party's streams
            for q in self.queues.get(e.party, ()):
                q.put_nowait((e, message))

    async def stream(self, party: str, after: int) -> AsyncIterator[bytes]:
        """Server-Sent Events for one party from event ``after`` on; nothing is lost
        between the replay of stored events and the live ones (the queue is joined
        first, and what both deliver is sent once)."""
        q: asyncio.Queue[tuple[EventRow, bytes] | None] = asyncio.Queue()
        self.queues.setdefault(party, set()).add(q)
        try:
            sent = after
            yield b"retry: 1000\n\n"
            while True:
                rows = await self.call(partial(_page, party=party, after=sent))
                for e in rows:
                    yield _sse(e)
                    sent = e.id
                    await self._receipt(e)
                if len(rows) < 500:
                    break
            while True:
                try:
                    item = await asyncio.wait_for(q.get(), self.keepalive_s)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:  # the server is stopping: the client resumes elsewhere
                    return
                e, message = item
                if e.id > sent:
                    yield message
                    sent = e.id
                    await self._receipt(e)
        finally:
            self.queues[party].discard(q)

    async def _receipt(self, e: EventRow) -> None:
        """A message sent on a stream counts as delivered to its recipient (once, however
        many of the party's streams carry it)."""
        if e.type != "message.created" or e.id in self.receipted:
            return
        self.receipted[e.id] = None
        if len(self.receipted) > 10_000:
            del self.receipted[next(iter(self.receipted))]
        # Shielded: a client that closes the stream right after the message cancels
        # this wait, and the receipt must still be written (the message went out).
        await asyncio.shield(self.call(lambda st: _message_delivered(st, e)))

    def end_streams(self) -> None:
        """End every open stream (the server is stopping; streams never end alone)."""
        for queues in self.queues.values():
            for q in queues:
                q.put_nowait(None)


def _listened(st: Store, *, parties: list[str], after: int, upto: int) -> list[EventRow]:
    return st.events_for(parties, after, upto, HUB_PAGE)


def _newest_and_listened(st: Store, *, parties: list[str], after: int
                         ) -> tuple[int, list[EventRow]]:
    upto = st.last_event_id()
    return upto, _listened(st, parties=parties, after=after, upto=upto) if parties else []


def _page(st: Store, *, party: str, after: int) -> list[EventRow]:
    return st.events_after(party, after, 500)


def _sse(e: EventRow) -> bytes:
    return (f"id: {e.id}\nevent: {e.type}\ndata: ".encode() + orjson.dumps(event_json(e))
            + b"\n\n")


class Sweeper(_Worker):
    """Escalates missed deadlines and expires past conflicts, every ``every_s``."""

    WAKE = False  # (it runs on the clock, not on commits)

    def __init__(self, db: str, bus: Bus, every_s: float):
        super().__init__(db, bus)
        self.every_s = every_s

    async def run(self) -> None:
        while True:
            await self.call(lambda st: Lifecycle(st, utc_now, self.bus).sweep())
            await asyncio.sleep(self.every_s)


class Ticker(_Worker):
    """Runs the position monitor's clock: contingent after the grace period, silence,
    stale proximity, pruning old positions."""

    WAKE = False

    def __init__(self, db: str, bus: Bus, monitor: Monitor, every_s: float):
        super().__init__(db, bus)
        self.monitor = monitor
        self.every_s = every_s

    async def run(self) -> None:
        while True:
            try:
                await self.call(self.monitor.tick)
            except Exception:  # (the other workers run on: log it and tick again)
                log.exception("the position monitor's tick failed")
            await asyncio.sleep(self.every_s)


async def run_all(workers: list[Any]) -> None:
    await asyncio.gather(*(w.run() for w in workers))
