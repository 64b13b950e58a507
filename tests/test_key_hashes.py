"""Exact membership by 64-bit hash, in sorted runs: it must agree with a plain set."""

import random

from fuzzconv import key_hashes
from fuzzconv.key_hashes import KeyHashes, key_hash


def test_agrees_with_a_set_through_many_spills_and_merges(monkeypatch):
    monkeypatch.setattr(key_hashes, "RUN", 64)
    rng = random.Random(7)
    reference: set[int] = set()
    hashes = KeyHashes()
    for _ in range(300):
        batch = [rng.getrandbits(64) - (1 << 63) for _ in range(rng.randint(0, 40))]
        batch += rng.sample(sorted(reference), min(len(reference), rng.randint(0, 20)))
        unseen = hashes.unseen(batch)
        assert unseen == [value not in reference for value in batch]
        assert all((value in hashes) == (value in reference) for value in batch)
        fresh = [value for value, new in zip(batch, unseen) if new]
        hashes.add_all(fresh)
        reference.update(fresh)
    assert len(hashes) == len(reference) > 5000
    assert len(hashes.runs) < 12  # merged as they grow, not one run per spill
    assert all(list(run) == sorted(run) for run in hashes.runs)


def test_the_hash_is_stable_and_signed_64_bit():
    value = key_hash("op:torch:relu")
    assert value == key_hash("op:torch:relu") != key_hash("op:torch:relu6")
    assert -(1 << 63) <= value < (1 << 63)
    assert value == -623656456733116582  # the same in every process and run (BLAKE2b, not hash())


def test_loaded_hashes_are_one_sorted_run_that_answers_like_the_set():
    values = random.Random(3).sample(range(-(1 << 62), 1 << 62, 997), 5000)
    hashes = KeyHashes(iter(values))
    assert len(hashes.runs) == 1 and len(hashes) == 5000
    probe = values[:50] + [v + 1 for v in values[:50]]
    assert hashes.unseen(probe) == [False] * 50 + [True] * 50
    assert KeyHashes().unseen([1]) == [True] and len(KeyHashes()) == 0
