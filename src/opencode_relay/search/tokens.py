"""Splitting text into search terms, and finding them again for snippets.

A term is a run of Unicode letters and digits (underscores split words), case-folded, 2 to 40
characters long; longer runs (hashes, base64) are not words anyone types. The same rules serve
the index and the query, so both sides agree on what a word is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+")
MIN_LENGTH = 2
MAX_LENGTH = 40
MAX_TERMS_PER_TEXT = 2000  # a huge pasted text still indexes its first distinct words


def _term(spelling: str) -> str | None:
    """The term a word spelled so is: case-folded; None when too short or too long for one."""
    word = spelling.casefold()
    return word if MIN_LENGTH <= len(word) <= MAX_LENGTH else None


def _spans(text: str) -> Iterator[tuple[str, int, int]]:
    for match in _WORD.finditer(text):
        word = _term(match.group())
        if word is not None:
            yield word, match.start(), match.end()


def terms(text: str) -> list[str]:
    """The distinct terms of `text`, in order of first appearance."""
    found: dict[str, None] = {}
    # Each distinct spelling once (an answer repeats its words), first appearance first: the
    # first spelling that folds to a term is that term's first appearance.
    for spelling in dict.fromkeys(_WORD.findall(text)):
        word = _term(spelling)
        if word is not None:
            found[word] = None
            if len(found) >= MAX_TERMS_PER_TEXT:
                break
    return list(found)


@dataclass(frozen=True)
class Query:
    """What a search asks for: every `exact` term, and a term starting with `prefix` (if set).

    The last word is a prefix unless the query ends in a space: a search box asks while typing."""

    exact: tuple[str, ...]
    prefix: str | None

    @property
    def empty(self) -> bool:
        return not self.exact and not self.prefix

    def matches(self, word: str) -> bool:
        return word in self.exact or (self.prefix is not None and word.startswith(self.prefix))


def parse_query(text: str, max_terms: int = 8) -> Query:
    words = list(dict.fromkeys(w for w, _s, _e in _spans(text)))[:max_terms]
    if words and not text[-1:].isspace():
        last = words.pop()
        return Query(tuple(w for w in words if w != last), last)
    return Query(tuple(words), None)


def snippet(text: str, query: Query, width: int = 160) -> tuple[str, list[tuple[int, int]]]:
    """A window of `text` around the first match, and the matches in it as [start, end)
    offsets into the returned snippet (plain text: the browser marks them, so nothing here is
    HTML)."""
    hits = [(s, e) for w, s, e in _spans(text) if query.matches(w)]
    if not hits:
        cut = text[:width]
        return cut, []
    first = hits[0][0]
    start = max(0, first - width // 4)
    if start > 0:  # begin on a word boundary
        space = text.find(" ", start, first)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + width)
    window = text[start:end]
    lead = "…" if start > 0 else ""
    tail = "…" if end < len(text) else ""
    shift = len(lead) - start
    ranges = [(s + shift, e + shift) for s, e in hits if s >= start and e <= end]
    return lead + window.replace("\n", " ") + tail, ranges
