"""Parties and their API tokens: who may talk to the service, and as whom.

A token is 256 random bits shown once, when it is made; the store keeps only its
SHA-256 (a slow hash buys nothing against 256 bits of entropy, and every request
checks one). A party may hold several tokens; revoking removes them all.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError, NotFound, Unauthorized
from ..store.contract import PartyRow, Store
from .deconfliction import utc_now
from .journal import transaction

PREFIX = "dt_"
MAX_NAME = 100


@dataclass(frozen=True)
class Principal:
    """Who is calling: a party, or the administrator (``party`` None)."""

    party: str | None
    contact: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.party is None


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise InputError(f"a party name is 1 to {MAX_NAME} printable characters",
                         item="party", field="name")
    return name


class Parties:
    """Party and token use cases over one store."""

    def __init__(self, store: Store, clock: Callable[[], str] = utc_now):
        self.store = store
        self.clock = clock

    def admin_token(self) -> str:
        """A new admin token (``detente init`` makes the first one)."""
        token = new_token()
        with transaction(self.store, self.clock, "admin") as j:
            self.store.add_token(token_hash(token), None, j.now)
            j.audit("admin.token_created", "admin", {})
        return token

    def add(self, name: str, contact: str | None = None, escalation: str | None = None
            ) -> tuple[PartyRow, str]:
        """Create a party; returns it and its first token (shown only now).
        ``escalation`` is who to tell when the party misses an acknowledgement
        deadline (it travels in the escalation events)."""
        name = check_name(name)
        token = new_token()
        with transaction(self.store, self.clock, "admin") as j:
            party = self.store.add_party(name, contact, j.now)
            if escalation is not None:
                self.store.set_escalation(party.id, escalation)
                party = PartyRow(party.id, name, contact, party.created_at, escalation)
            self.store.add_token(token_hash(token), party.id, j.now)
            j.audit("party.created", f"party/{name}", {"contact": contact,
                                                       "escalation": escalation})
        return party, token

    def list(self) -> list[PartyRow]:
        return self.store.list_parties()

    def _party(self, name: str) -> PartyRow:
        party = self.store.find_party(name)
        if party is None:
            raise NotFound(f"no party '{name}'")
        return party

    def rotate(self, name: str) -> str:
        """Revoke the party's tokens and issue a new one."""
        token = new_token()
        with transaction(self.store, self.clock, "admin") as j:
            party = self._party(name)
            self.store.revoke_tokens(party.id, j.now)
            self.store.add_token(token_hash(token), party.id, j.now)
            j.audit("party.token_rotated", f"party/{name}", {})
        return token

    def revoke(self, name: str) -> int:
        """Revoke every token of the party; returns how many were live."""
        with transaction(self.store, self.clock, "admin") as j:
            n = self.store.revoke_tokens(self._party(name).id, j.now)
            j.audit("party.tokens_revoked", f"party/{name}", {"revoked": n})
        return n

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("missing bearer token")
        known, party = self.store.token_owner(token_hash(token))
        if not known:
            raise Unauthorized("unknown or revoked token")
        if party is None:
            return Principal(None)
        return Principal(party.name, party.contact)
