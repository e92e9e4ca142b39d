"""F3548 access tokens: OAuth 2 bearer JWTs signed RS256 by an authorization authority.

detente verifies them against the authority's public keys (PEM files, or the key set
the authority publishes at a JWKS URL: fetched again every five minutes, and when a
token names a key not in it, at most every 30 s so that tokens naming made-up keys
cannot make detente hammer the authority), its audience(s) and issuer(s), all passed
in as settings. ``sub`` names the USS (the manager of what it
writes); ``scope`` lists its scopes, space-separated as OAuth 2 writes them (a JSON
array is accepted too). Verified tokens are remembered until they expire, so a USS
reusing its token costs one signature check, not one per request.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ..errors import Forbidden, InputError, Unauthorized

CACHE_SIZE = 4096
NO_KEYS = ("this server verifies no F3548 tokens: start it with --dss-key (or "
           "--dss-jwks) and --dss-audience")
JWKS_LIFESPAN_S = 300.0  # how long a fetched key set is used before it is fetched again


@dataclass(frozen=True)
class Caller:
    """A verified USS: its ``sub`` and its scopes."""

    manager: str
    scopes: frozenset[str]

    def need(self, *options: frozenset[str] | str) -> None:
        """Pass if any option's scopes are all held; 403 otherwise (the spec's per-
        endpoint alternatives)."""
        for opt in options:
            want = frozenset((opt,)) if isinstance(opt, str) else opt
            if want <= self.scopes:
                return
        names = " or ".join(" + ".join(sorted((o,) if isinstance(o, str) else o))
                            for o in options)
        raise Forbidden(f"this needs the scope {names}")


@dataclass
class DssAuth:
    """How to verify F3548 tokens: PEM public keys and JWKS URLs, accepted audiences and
    issuers (an empty tuple of issuers accepts any issuer the keys sign for)."""

    public_keys_pem: tuple[str, ...]
    audiences: tuple[str, ...]
    issuers: tuple[str, ...] = ()
    leeway_s: float = 5.0
    jwks_urls: tuple[str, ...] = ()
    jwks_cooldown_s: float = 30.0  # fetches for unknown keys, at most one this often
    _keys: list[Any] = field(default_factory=list, init=False, repr=False)
    _key_sets: list[jwt.PyJWKClient] = field(default_factory=list, init=False, repr=False)
    _cache: OrderedDict[str, tuple[Caller, float]] = field(default_factory=OrderedDict,
                                                           init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for k, pem in enumerate(self.public_keys_pem):
            try:
                self._keys.append(load_pem_public_key(pem.encode()))
            except ValueError as exc:
                raise InputError(f"not a PEM public key: {exc}", item=f"key {k + 1}",
                                 field="--dss-key") from None
        for url in self.jwks_urls:
            if not url.startswith(("https://", "http://")):
                raise InputError("a JWKS URL (https://...)", item=url, field="--dss-jwks")
            self._key_sets.append(jwt.PyJWKClient(url, lifespan=JWKS_LIFESPAN_S, timeout=10,
                                                  cooldown_duration=self.jwks_cooldown_s))
        if not self.audiences:
            raise InputError("F3548 tokens are checked against an audience: give one "
                             "(usually this DSS's host name)", field="--dss-audience")

    def remembered(self, token: str | None) -> Caller | None:
        """The caller of a token verified already and not expired, or None."""
        if not token:
            return None
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None and hit[1] > time.time():
                self._cache.move_to_end(token)
                return hit[0]
        return None

    def verify(self, token: str | None) -> Caller:
        """The token's caller; may fetch a key set (call it off the event loop)."""
        if not token:
            raise Unauthorized("an F3548 request needs 'Authorization: Bearer <JWT>'")
        hit = self.remembered(token)
        if hit is not None:
            return hit
        caller, exp = self._decode(token)
        with self._lock:
            self._cache[token] = (caller, exp)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return caller

    def _published_keys(self, token: str) -> Iterator[Any]:
        """The keys of the JWKS key sets that the token's header names (by ``kid``),
        each looked up (perhaps fetched) only when the keys before it did not verify."""
        for key_set in self._key_sets:
            try:
                yield key_set.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError as exc:
                raise Unauthorized(f"the authority's keys could not be fetched: {exc}"
                                   ) from None
            except jwt.PyJWKClientError:
                continue  # not in this set (a token without kid, another authority's key)
            except jwt.DecodeError as exc:
                raise Unauthorized(f"invalid access token: {exc}") from None

    def _decode(self, token: str) -> tuple[Caller, float]:
        if not self._keys and not self._key_sets:
            raise Unauthorized(NO_KEYS)
        claims = None
        problem = "no key"
        for key in itertools.chain(self._keys, self._published_keys(token)):
            try:
                claims = jwt.decode(
                    token, key, algorithms=["RS256"], audience=list(self.audiences),
                    issuer=list(self.issuers) or None, leeway=self.leeway_s,
                    options={"require": ["exp", "sub"]})
                break
            except jwt.InvalidSignatureError:
                problem = "the signature does not verify"
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"invalid access token: {exc}") from None
        if claims is None:
            raise Unauthorized(f"invalid access token: {problem}")
        raw = claims.get("scope", claims.get("scopes"))
        scopes = raw.split() if isinstance(raw, str) else raw
        if not isinstance(scopes, list) or not scopes or not all(
                isinstance(s, str) for s in scopes):
            raise Unauthorized("the access token grants no scope")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub.strip():
            raise Unauthorized("the access token's 'sub' is empty")
        return Caller(sub, frozenset(scopes)), float(claims["exp"]) + self.leeway_s
