"""The autouse guard in conftest: loopback is allowed, anything else fails loudly."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.conftest import NetworkBlockedError


def test_connecting_to_a_public_address_is_blocked() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(NetworkBlockedError):
            sock.connect(("192.0.2.1", 443))  # TEST-NET-1: would never answer anyway
        with pytest.raises(NetworkBlockedError):
            sock.connect_ex(("192.0.2.1", 443))
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("example.org", 443), timeout=1)


async def test_asyncio_connections_are_blocked_too() -> None:
    with pytest.raises(NetworkBlockedError):
        await asyncio.open_connection("192.0.2.1", 443)


async def test_loopback_connections_work() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        assert await reader.readline() == b"ping\n"
        writer.close()
        await writer.wait_closed()
