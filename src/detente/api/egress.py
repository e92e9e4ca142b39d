"""Outbound HTTP for webhooks, only to addresses the server may send to.

The check is made where each connection is opened, on the addresses the URL's host
resolves to at that moment, and the connection goes to an address just checked. A
name that resolved to a public address when the webhook was registered and resolves
to a private one later (DNS rebinding) is refused too; a check at registration alone
would not see that. TLS still verifies the certificate against the name.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable

import anyio
import certifi
import httpcore
import httpx

from ..service.outbox import Destinations


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, then connects only to an address it permits."""

    def __init__(self, destinations: Destinations):
        self.destinations = destinations
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        allowed = [a for a in addresses if self.destinations.permits(a)]
        if not allowed:
            raise httpcore.ConnectError(
                f"{host} resolves only to private, loopback or link-local addresses, where "
                "this server does not send webhooks (its operator can allow a network: "
                "detente serve --webhook-allow CIDR)")
        failure: httpcore.ConnectError | None = None
        for address in allowed:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address,
                                                    socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, destinations: Destinations):
        super().__init__(trust_env=False)
        # httpx takes no network backend, so its connection pool is replaced by one
        # with ours (tests/test_dialogue.py sends through it, both ways).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
            network_backend=_CheckedBackend(destinations))


def webhook_client(destinations: Destinations, timeout_s: float) -> httpx.AsyncClient:
    """The client webhooks are sent with: no proxies from the environment, and only
    to the destinations permitted."""
    return httpx.AsyncClient(timeout=timeout_s, trust_env=False,
                             transport=_CheckedTransport(destinations))
