"""The operator pairs and 3-grams a campaign has covered, one bit per possible sequence.

Guided generation steers away from sequences already covered (fuzzconv.generate). The parent
learns them from every recorded case; the workers, which make the cases, need to know them
too. Shipping the keys in messages costs each new worker process the whole list (about 100,000
keys after an hour of torch-script, millions after days, and TorchScript cases kill their
worker every few hundred cases). Instead, every possible sequence of the operator registry has a
bit, in memory the parent shares with its worker processes: the parent is the one writer, the
workers read. With the registry's 169 operators that is 169**2 + 169**3 bits, about 600 KB per
frontend, fixed however long the campaign runs, and a new process sees it all at once.

Operator indexes come from the sorted names of the whole registry, the same in every process.
"""

from __future__ import annotations

import multiprocessing
import zlib
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar


class _Named(Protocol):
    @property
    def name(self) -> str: ...


NamedT = TypeVar("NamedT", bound=_Named)


def _op_names() -> list[str]:
    from fuzzconv.ops import all_ops

    return sorted({op.name for op in all_ops()})


class SeenSequences:
    """One frontend's covered operator pairs and 3-grams. `buffer` is the bit memory: a shared
    array (`shared`) to hand to worker processes, or a private one by default."""

    def __init__(self, frontend: str, buffer: Any = None) -> None:
        names = _op_names()
        self.frontend = frontend
        self.index = {name: i for i, name in enumerate(names)}
        self.n = n = len(names)
        self.ngram_base = n * n  # bits [0, n*n) are pairs, then n*n*n 3-grams
        size = (n * n + n * n * n + 7) // 8 + 1
        self.buffer = buffer if buffer is not None else bytearray(size)
        if len(self.buffer) != size:
            raise ValueError(f"a seen-sequences buffer of {len(self.buffer)} bytes, not {size}: "
                             "the parent and the worker have different operator registries")
        self.bits = memoryview(self.buffer).cast("B")
        self.added = 0  # sequences newly marked by this process
        # For readers that cannot share the memory (Ray actors on other machines): each list
        # collects the bits marked since its reader was last sent them (`follow`).
        self.followers: list[list[int]] = []

    @classmethod
    def shared(cls, frontend: str) -> SeenSequences:
        """Backed by zeroed shared memory, inherited by the worker processes it is passed to."""
        names = len(_op_names())
        return cls(frontend, multiprocessing.RawArray("B", (names * names + names ** 3 + 7) // 8 + 1))

    def _bit(self, sequence: tuple[str, ...]) -> int | None:
        index, n = self.index, self.n
        try:
            if len(sequence) == 2:
                return index[sequence[0]] * n + index[sequence[1]]
            if len(sequence) == 3:
                return self.ngram_base + (index[sequence[0]] * n + index[sequence[1]]) * n + index[sequence[2]]
        except KeyError:  # an operator the registry no longer has (an older campaign's key)
            return None
        return None

    def add(self, sequence: tuple[str, ...]) -> None:
        bit = self._bit(sequence)
        if bit is not None and not self.bits[bit >> 3] & (1 << (bit & 7)):
            self.bits[bit >> 3] |= 1 << (bit & 7)
            self.added += 1
            for follower in self.followers:
                follower.append(bit)

    def follow(self) -> list[int]:
        """A list that collects every bit marked from now on; the reader empties it as it is sent."""
        follower: list[int] = []
        self.followers.append(follower)
        return follower

    def snapshot(self) -> bytes:
        """Every bit, compressed (a young campaign's 600 KB of mostly zeroes is a few KB), for a
        reader that starts from nothing."""
        return zlib.compress(bytes(self.bits), 1)

    def load(self, snapshot: bytes = b"", bits: Iterable[int] = ()) -> None:
        """Take a `snapshot` (replacing what was marked), then mark `bits`: a reader's copy."""
        if snapshot:
            data = zlib.decompress(snapshot)
            if len(data) != len(self.bits):
                raise ValueError(f"a seen-sequences snapshot of {len(data)} bytes, not {len(self.bits)}: "
                                 "the driver and the actor have different operator registries")
            self.bits[:] = data
        for bit in bits:
            self.bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, sequence: object) -> bool:
        bit = self._bit(sequence) if isinstance(sequence, tuple) else None
        return bit is not None and bool(self.bits[bit >> 3] & (1 << (bit & 7)))

    def add_keys(self, keys: Iterable[str]) -> None:
        """Mark this frontend's `edge:` and `ngram3:` coverage keys among `keys`."""
        edge, ngram = f"edge:{self.frontend}:", f"ngram3:{self.frontend}:"
        for key in keys:
            if key.startswith(edge):
                self.add(tuple(key[len(edge):].split(">")))
            elif key.startswith(ngram):
                self.add(tuple(key[len(ngram):].split(">")))

    def unseen_after(self, tail: tuple[str, ...], ops: Iterable[NamedT]) -> list[NamedT]:
        """Those of `ops` that extend `tail` (one or two operator names) into a sequence not yet
        covered: one read of the row of bits `tail` starts, then a bit test per operator."""
        index, n = self.index, self.n
        ops = list(ops)
        if len(tail) not in (1, 2):
            return ops
        try:
            start = index[tail[0]] * n if len(tail) == 1 else \
                self.ngram_base + (index[tail[0]] * n + index[tail[1]]) * n
        except KeyError:
            return ops
        row = int.from_bytes(self.bits[start >> 3:((start + n) >> 3) + 1], "little") >> (start & 7)
        return [op for op in ops if op.name not in index or not (row >> index[op.name]) & 1]
