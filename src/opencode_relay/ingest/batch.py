"""What one ingest commit stages: one batch of events, one transaction per session's slot
(store/staging.py), then the global log's publish step (store/log.py).

Writes go on the pipeline in event order, with one exception: a streamed part changes with every
delta, so only the latest version of each changed part is written, when the batch commits.
Removals are staged as scripts that read what they remove inside Redis at EXEC time, so they
need no read (and no commit) in the middle of the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..store.log import LogEntry
from ..store.staging import Staging

JSON = dict[str, Any]


@dataclass
class Batch:
    stage: Staging  # the writes, by slot: nothing is sent until the commit
    parts: dict[str, JSON] = field(default_factory=dict)  # changed parts by id, written last
    log: list[LogEntry] = field(default_factory=list)     # appended to the event log last
    hints: dict[str, set[str]] = field(default_factory=dict)  # search: term -> sessions
    # Heard once committed: the events for the ingest observers, the count of each type.
    events: list[JSON] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    # Sessions (sid,), messages (sid, mid) and parts (sid, mid, pid) removed by this batch: Redis
    # still holds them until the commit, so a read must not bring them back.
    _removed: set[tuple[str, ...]] = field(default_factory=set)
    # Text deltas not yet joined onto their part, by part object and field: joined once per
    # batch (`join_texts`). A part grows one delta at a time, and adding each to its text
    # copied the whole text per delta: quadratic in the answer's length.
    _texts: dict[tuple[int, str], tuple[JSON, list[str]]] = field(default_factory=dict)

    def change_part(self, part: JSON) -> None:
        self.parts[part["id"]] = part

    def append_text(self, part: JSON, name: str, piece: str) -> None:
        """Adds `piece` to the text field `name` of `part` (a changed part of this batch)."""
        pending = self._texts.get((id(part), name))
        if pending is None:
            current = part.get(name)
            self._texts[(id(part), name)] = (part, [current if isinstance(current, str) else "",
                                                     piece])
        else:
            pending[1].append(piece)

    def join_texts(self) -> None:
        """Joins the pending deltas onto their parts (before they are written or read)."""
        for (_id, name), (part, pieces) in self._texts.items():
            part[name] = "".join(pieces)
        self._texts.clear()

    def drop_parts(self, removed: Callable[[JSON], bool]) -> None:
        """Forgets the changed parts that a removal staged meanwhile takes away."""
        for pid in [pid for pid, part in self.parts.items() if removed(part)]:
            del self.parts[pid]

    def mark_removed(self, *path: str) -> None:
        """Records a removal: `(sid)`, `(sid, mid)` or `(sid, mid, pid)`."""
        self._removed.add(path)

    def session_removed(self, sid: str) -> bool:
        """Whether this batch removed the session."""
        return (sid,) in self._removed

    def removed(self, sid: str, mid: str, pid: str) -> bool:
        """Whether this batch removed the part, its message or its session."""
        return bool(self._removed & {(sid,), (sid, mid), (sid, mid, pid)})
