"""Exact membership of a campaign's coverage keys in 8 bytes a key, by 64-bit hash.

A long campaign reaches tens of millions of coverage keys (most of them operator 3- and
4-grams). Keeping them unique in SQLite with an index on the key text costs one random b-tree
page write per new key, 4 KB of write-ahead log for about 100 bytes of data; keeping them in a
Python set costs about 120 bytes a key of memory. Instead the campaign database appends each
new key to a table without an index, and this structure answers "seen before?" from the keys'
64-bit BLAKE2b hashes: sorted numpy runs (merged as they grow, like a log-structured tree) and
a small set of the latest. Two different keys share a hash with probability about n^2 / 2^65
(0.03 % for a hundred million keys); the one that came second would go uncounted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

RUN = 1 << 16  # latest hashes kept in a set before they become a sorted run


def key_hash(key: str) -> int:
    """The stable 64-bit (signed, as SQLite stores it) hash of a coverage key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little", signed=True)


class KeyHashes:
    """A set of 64-bit hashes: sorted runs of decreasing size, and a set of the latest."""

    def __init__(self, hashes: Iterable[int] = ()) -> None:
        """From distinct hashes (a database's stored keys): one sorted run, built in numpy."""
        loaded = np.sort(np.fromiter(hashes, dtype=np.int64))
        self.runs: list[np.ndarray] = [loaded] if len(loaded) else []
        self.latest: set[int] = set()

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs) + len(self.latest)

    def __contains__(self, value: int) -> bool:
        if value in self.latest:
            return True
        for run in self.runs:
            at = int(np.searchsorted(run, value))
            if at < len(run) and int(run[at]) == value:
                return True
        return False

    def unseen(self, hashes: list[int]) -> list[bool]:
        """For each hash, whether the set lacks it (one vectorised search per run)."""
        if not hashes:
            return []
        wanted = np.array(hashes, dtype=np.int64)
        found = np.array([value in self.latest for value in hashes], dtype=bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, wanted), len(run) - 1)
            found |= run[at] == wanted
        return [not hit for hit in found.tolist()]

    def add_all(self, hashes: Iterable[int]) -> None:
        for value in hashes:
            self.latest.add(value)
            if len(self.latest) >= RUN:
                self._spill()

    def _spill(self) -> None:
        """Move the latest hashes into a sorted run; merge runs while the newer is not smaller
        than half the older, so there are O(log n) runs and each hash is merged O(log n) times."""
        self.runs.append(np.array(sorted(self.latest), dtype=np.int64))
        self.latest = set()
        while len(self.runs) > 1 and 2 * len(self.runs[-1]) >= len(self.runs[-2]):
            newer = self.runs.pop()
            self.runs[-1] = np.sort(np.concatenate([self.runs[-1], newer]), kind="stable")
