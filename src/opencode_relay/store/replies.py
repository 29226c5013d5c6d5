"""Narrowing of redis-py replies to what the relay's clients return.

redis-py types a reply for either client mode: bytes, or str under `decode_responses=True`.
The relay's clients never decode (and speak RESP2), so replies are bytes; these helpers give
the type checker (and the reader) that one shape, and work for the other mode too.
"""

from __future__ import annotations

from typing import cast

from redis.typing import StreamRangeResponse, XReadResponse, ZSetRangeResponse

# One stream entry: its id and its fields.
Entry = tuple[bytes, dict[bytes, bytes]]


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def data(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def zset_members(found: ZSetRangeResponse) -> list[str]:
    """The members of a ZRANGE / ZREVRANGE reply read without scores."""
    out: list[str] = []
    for member in found:
        if not isinstance(member, bytes | str):
            raise TypeError("expected a sorted set range without scores")
        out.append(text(member))
    return out


def entries(found: StreamRangeResponse | None) -> list[Entry]:
    """The entries of an XRANGE / XREVRANGE reply (none for a missing stream)."""
    out: list[Entry] = []
    for raw_id, fields in found or []:
        # Only XCLAIM replies hold (None, None), for entries deleted meanwhile.
        if raw_id is None or fields is None:
            raise TypeError("a stream range reply holds no deleted entries")
        if isinstance(raw_id, bytes):
            # The fields come from the same undecoded reply as the id: bytes too (no copy on
            # this hot path: the hub reads up to 1000 entries a time).
            out.append((raw_id, cast(dict[bytes, bytes], fields)))
        else:
            out.append((data(raw_id), {data(k): data(v) for k, v in fields.items()}))
    return out


def xread_entries(found: XReadResponse | None) -> list[tuple[bytes, list[Entry]]]:
    """Each stream of an XREAD reply with its entries (a RESP2 reply: [[stream, entries], …];
    None when a blocking read timed out)."""
    if found is None:
        return []
    if not isinstance(found, list):
        raise TypeError(f"expected a RESP2 XREAD reply (a list), got {type(found).__name__}")
    return [(data(stream), entries(found_entries)) for stream, found_entries in found]
