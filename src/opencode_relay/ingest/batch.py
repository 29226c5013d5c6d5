"""What one ingest commit stages: one batch of events, one transaction per session's slot
(store/staging.py), then the global log's publish step (store/log.py).

Writes go on the pipeline in event order, with one exception: a streamed part changes with every
delta, so only the latest version of each changed part is written, when the batch commits.
Likewise in the event log, a run of text deltas to one field of one part is one entry, its
pieces joined, when no other entry of its sessions comes between them (`add_delta`): a burst
that arrived while the last batch committed is as many log entries, and frames to each client,
as it has parts, not as many as it has deltas. A reader sees the same text in the same order,
sooner.
Removals are staged as scripts that read what they remove inside Redis at EXEC time, so they
need no read (and no commit) in the middle of the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..store.log import LogEntry, new_entry
from ..store.staging import Staging
from ..store.state import dumps

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
    # The index in `log` of each session's latest entry; the delta runs still open, by part and
    # field, and the first event and pieces of each run, by index (written by `finish`).
    _latest: dict[str, int] = field(default_factory=dict)
    _open_runs: dict[tuple[str, str], int] = field(default_factory=dict)
    _runs: dict[int, tuple[JSON, list[str]]] = field(default_factory=dict)
    # The last entry, when it is a run: its part id and field, its text's pieces and its own.
    _last_run: tuple[str, str, list[str], list[str]] | None = None

    def add_entry(self, entry: LogEntry) -> None:
        """Appends an entry to the batch's part of the event log."""
        index = len(self.log)
        self.log.append(entry)
        for sid in entry.sessions:
            self._latest[sid] = index
        self._last_run = None

    def change_part(self, part: JSON) -> None:
        self.parts[part["id"]] = part

    def append_text(self, part: JSON, name: str, piece: str) -> list[str]:
        """Adds `piece` to the text field `name` of `part` (a changed part of this batch);
        answers the field's pending pieces."""
        pending = self._texts.get((id(part), name))
        if pending is None:
            current = part.get(name)
            pieces = [current if isinstance(current, str) else "", piece]
            self._texts[(id(part), name)] = (part, pieces)
            return pieces
        pending[1].append(piece)
        return pending[1]

    def add_delta(self, payload: JSON, part: JSON, name: str, piece: str,
                  sessions: tuple[str, ...]) -> None:
        """Adds a text delta event (`piece` added to field `name` of `part`, a changed part of
        this batch, about `sessions`): to the part's text, and to the log, onto the run of
        deltas to that field when the run's entry is still the latest of every session it
        belongs to, else as a new entry (and run)."""
        texts = self.append_text(part, name, piece)
        key = (part["id"], name)
        index = self._open_runs.get(key)
        if index is not None and self.log[index].sessions == sessions and self._is_latest(
                index, sessions):
            run = self._runs[index][1]
            run.append(piece)
        else:
            self._open_runs[key] = len(self.log)
            run = [piece]
            self._runs[len(self.log)] = (payload, run)
            self.add_entry(new_entry(b"", sessions))  # its data: `finish`
        self._last_run = (key[0], name, texts, run)

    def extend_last_run(self, props: JSON) -> bool:
        """`add_delta` for a delta (its properties) to the part and field of the last entry, a
        run (most of a stream): no lookup. False when it is not one."""
        last = self._last_run
        if last is None or props.get("partID") != last[0] or props.get("field") != last[1]:
            return False
        piece = props.get("delta")
        if type(piece) is not str:
            return False
        last[2].append(piece)
        last[3].append(piece)
        return True

    def _is_latest(self, index: int, sessions: tuple[str, ...]) -> bool:
        for sid in sessions:
            if self._latest[sid] != index:
                return False
        return True

    def join_texts(self) -> None:
        """Joins the pending deltas onto their parts (before they are written or read)."""
        for (_id, name), (part, pieces) in self._texts.items():
            part[name] = "".join(pieces)
        self._texts.clear()

    def finish(self) -> None:
        """Joins the pending deltas onto their parts and writes the delta runs' log entries:
        the batch is staged."""
        self.join_texts()
        for index, (payload, pieces) in self._runs.items():
            if len(pieces) > 1:
                payload = {**payload, "properties": {**payload["properties"],
                                                     "delta": "".join(pieces)}}
            self.log[index] = new_entry(dumps(payload), self.log[index].sessions)
        self._runs.clear()
        self._open_runs.clear()
        self._last_run = None

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
