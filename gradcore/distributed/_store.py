"""A one-shot TCP rendezvous: rank 0 hands a small byte string (the NCCL unique id) to every other rank."""
from __future__ import annotations

import socket
import struct
import time

from ._work import DistError


def share_bytes(payload: bytes | None, rank: int, world_size: int, address: str, port: int,
                timeout_s: float) -> bytes:
    """Returns rank 0's ``payload`` on every rank: rank 0 listens on ``address:port``, the others connect."""
    deadline = time.monotonic() + timeout_s
    if rank == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((address, port))
            server.listen(world_size)
            for _ in range(world_size - 1):
                server.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    connection, _ = server.accept()
                except socket.timeout:
                    raise DistError(f"[Rank 0] timed out after {timeout_s:g} s waiting for the other ranks to connect "
                                    f"to {address}:{port}") from None
                with connection:
                    connection.sendall(struct.pack("!I", len(payload)) + payload)
        return payload
    while True:  # rank 0 may not be listening yet
        try:
            with socket.create_connection((address, port), timeout=max(deadline - time.monotonic(), 0.001)) as peer:
                peer.settimeout(max(deadline - time.monotonic(), 0.001))
                (length,) = struct.unpack("!I", _read_exactly(peer, 4))
                return _read_exactly(peer, length)
        except (ConnectionRefusedError, socket.timeout, OSError) as error:
            if time.monotonic() > deadline:
                raise DistError(f"[Rank {rank}] timed out after {timeout_s:g} s reaching rank 0 at {address}:{port} "
                                f"({error})") from None
            time.sleep(0.05)


def _read_exactly(peer: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = peer.recv(size - len(data))
        if not chunk:
            raise ConnectionError("rank 0 closed the connection early")
        data += chunk
    return data
