"""The hotline: a message thread per conflict, and direct threads between two parties.

Messages are immutable (the database refuses to change one): a correction is a new
message that names the one it corrects. Each recipient has a receipt: delivered
(when it fetched the thread, a webhook took the event or an event stream sent it)
and read (when it says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import InputError, NotFound
from ..store.contract import Store
from ..store.dialogue_contract import MessageRow, ThreadRow
from .journal import SYSTEM, Bus, transaction

MAX_BODY = 10_000


def message_json(m: MessageRow) -> dict[str, Any]:
    return {"id": m.id, "thread": m.thread_id, "sender": m.sender, "body": m.body,
            "corrects": m.corrects, "created_at": m.created_at,
            "receipts": {p: {"delivered_at": d, "read_at": r}
                         for p, (d, r) in sorted(m.receipts.items())}}


def thread_json(t: ThreadRow, party: str, messages: int | None = None,
                unread: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": t.id, "conflict": t.conflict_id,
                           "with": t.party_b if t.party_a == party else t.party_a,
                           "created_at": t.created_at}
    if messages is not None:
        out["messages"] = messages
        out["unread"] = unread
    return out


class Hotline:
    def __init__(self, store: Store, clock: Callable[[], str], bus: Bus | None = None):
        self.store = store
        self.clock = clock
        self.bus = bus

    # -- finding threads -----------------------------------------------------------
    def _conflict_thread(self, party: str, conflict_id: int, now: str) -> ThreadRow:
        found = self.store.list_conflicts(party=party, status=None, conflict_id=conflict_id)
        if not found:
            raise NotFound(f"no conflict {conflict_id}")
        c = found[0]
        return self.store.thread(conflict_id, c.party_a, c.party_b, now)

    def _thread(self, party: str, thread_id: int) -> ThreadRow:
        t = self.store.find_thread(thread_id)
        if t is None or party not in (t.party_a, t.party_b):
            raise NotFound(f"no thread {thread_id}")
        return t

    def _named(self, party: str, conflict_id: int | None, thread_id: int | None, now: str
               ) -> ThreadRow:
        """The conflict's thread (made if missing), or the direct thread by id."""
        if conflict_id is not None:
            return self._conflict_thread(party, conflict_id, now)
        return self._thread(party, thread_id or 0)

    def direct(self, party: str, other: str) -> dict[str, Any]:
        """The direct thread between the caller and another party (made if missing)."""
        if other == party:
            raise InputError("a direct thread is with another party", item="thread",
                             field="party")
        if self.store.find_party(other) is None:
            raise NotFound(f"no party '{other}'")
        with transaction(self.store, self.clock, party, self.bus) as j:
            t = self.store.thread(None, party, other, j.now)
        return thread_json(t, party)

    def threads(self, party: str) -> list[dict[str, Any]]:
        return [thread_json(t, party, n, unread)
                for t, n, unread in self.store.list_threads(party)]

    # -- messages ----------------------------------------------------------------
    def post(self, party: str, body: str, *, conflict_id: int | None = None,
             thread_id: int | None = None, corrects: int | None = None) -> dict[str, Any]:
        """Send a message to a conflict's thread or a direct thread."""
        if not isinstance(body, str) or not body.strip() or len(body) > MAX_BODY:
            raise InputError(f"a message is 1 to {MAX_BODY:,} characters", item="message",
                             field="body")
        st = self.store
        with transaction(st, self.clock, party, self.bus) as j:
            t = self._named(party, conflict_id, thread_id, j.now)
            if corrects is not None and not any(
                    m.id == corrects and m.sender == party for m in st.list_messages(t.id)):
                raise InputError(f"message {corrects} is not one of yours in this thread",
                                 item="message", field="corrects")
            other = t.party_b if t.party_a == party else t.party_a
            m = st.add_message(t.id, party, body, corrects, [other], j.now)
            j.audit("message.created", f"thread/{t.id}",
                    {"message": m.id, "sender": party, "corrects": corrects},
                    after=message_json(m))
            j.event(other, "message.created", {"message": message_json(m),
                                               "thread": thread_json(t, other)},
                    t.conflict_id)
        return message_json(m)

    def messages(self, party: str, *, conflict_id: int | None = None,
                 thread_id: int | None = None) -> list[dict[str, Any]]:
        """A thread's messages; those to the caller count as delivered from now."""
        st = self.store
        with transaction(st, self.clock, party, self.bus) as j:
            t = self._named(party, conflict_id, thread_id, j.now)
            rows = st.list_messages(t.id)
            fresh = st.mark_receipts([m.id for m in rows if m.sender != party], party,
                                     "delivered_at", j.now)
            if fresh:
                j.audit("message.delivered", f"thread/{t.id}",
                        {"party": party, "messages": fresh})
                rows = st.list_messages(t.id)
        return [message_json(m) for m in rows]

    def mark_read(self, party: str, message_ids: list[int], *,
                  conflict_id: int | None = None, thread_id: int | None = None
                  ) -> list[int]:
        """Read receipts for these messages (others' messages in the thread)."""
        st = self.store
        with transaction(st, self.clock, party, self.bus) as j:
            t = self._named(party, conflict_id, thread_id, j.now)
            theirs = {m.id for m in st.list_messages(t.id) if m.sender != party}
            unknown = sorted(set(message_ids) - theirs)
            if unknown:
                raise InputError(f"message(s) {unknown} are not messages to you in this "
                                 "thread", item="read", field="messages")
            changed = st.mark_receipts(sorted(set(message_ids)), party, "read_at", j.now)
            if changed:
                j.audit("message.read", f"thread/{t.id}", {"party": party,
                                                           "messages": changed})
        return changed

    def delivered(self, party: str, message_id: int, thread_id: int) -> None:
        """A webhook took the message's event, or a stream sent it: it counts as
        delivered (recorded with the thread's other receipts)."""
        with transaction(self.store, self.clock, SYSTEM, self.bus) as j:
            if self.store.mark_receipts([message_id], party, "delivered_at", j.now):
                j.audit("message.delivered", f"thread/{thread_id}",
                        {"party": party, "messages": [message_id]})
