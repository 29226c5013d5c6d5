"""Commands packed by hiredis, in C.

redis-py's asyncio connections pack each command in Python (its synchronous ones use hiredis's
packer when hiredis is installed): about a microsecond per argument, which an ingest batch (two
arguments per event, a thousand per commit) paid for every event. `packed_in_c` gives a client's
connection pool the same connection class with hiredis's packer; the bytes sent are the same.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

_SERIALIZER = HiredisRespSerializer()


class _PackedInC:
    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = _SERIALIZER.pack(*args)
        return packed


_CLASSES: dict[type, type] = {}


def packed_in_c(client: Redis) -> Redis:
    """`client`, its connections (plain, TLS, Unix socket or Sentinel-managed) packing in C."""
    pool = client.connection_pool
    base = pool.connection_class
    if HIREDIS_AVAILABLE and not issubclass(base, _PackedInC):
        packing = _CLASSES.get(base)
        if packing is None:
            packing = _CLASSES[base] = type(base.__name__, (_PackedInC, base), {})
        pool.connection_class = packing
    return client
