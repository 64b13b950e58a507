"""The campaign's covered operator sequences, one bit per possible pair and 3-gram."""

import random
import zlib

import pytest

from fuzzconv.ops import for_frontend
from fuzzconv.seen import SeenSequences


def test_marked_keys_are_seen_and_nothing_else():
    seen = SeenSequences("torch")
    seen.add_keys(["edge:torch:relu>tanh", "ngram3:torch:relu>tanh>exp", "op:torch:relu",
                   "edge:keras:relu>exp", "edge:torch:relu>no_such_op"])
    assert ("relu", "tanh") in seen and ("relu", "tanh", "exp") in seen
    assert ("tanh", "relu") not in seen and ("relu", "exp") not in seen  # order, and the other frontend
    assert ("relu", "tanh", "tanh") not in seen and ("relu",) not in seen
    assert seen.added == 2


def test_unseen_after_agrees_with_a_plain_set():
    ops = for_frontend("torch")
    names = [op.name for op in ops]
    rng = random.Random(5)
    truth = {tuple(rng.choice(names) for _ in range(rng.choice((2, 3)))) for _ in range(20000)}
    seen = SeenSequences("torch")
    for sequence in truth:
        seen.add(sequence)
    for _ in range(300):
        tail = tuple(rng.choice(names) for _ in range(rng.choice((1, 2))))
        expected = [op for op in ops if (*tail, op.name) not in truth]
        assert seen.unseen_after(tail, ops) == expected, tail


def test_a_buffer_of_another_registry_is_refused():
    with pytest.raises(ValueError, match="different operator registries"):
        SeenSequences("torch", bytearray(10))


def test_a_reader_without_the_shared_memory_gets_a_snapshot_then_what_was_learned_since():
    """A Ray actor's copy: the whole set once, then each follower's new bits; it ends equal."""
    driver = SeenSequences("torch")
    driver.add_keys(["edge:torch:relu>tanh", "ngram3:torch:relu>tanh>exp"])
    learned = driver.follow()
    snapshot = driver.snapshot()
    assert len(snapshot) < len(driver.bits) // 50  # mostly zeroes: a few KB, not 600
    driver.add_keys(["edge:torch:exp>relu", "edge:torch:relu>tanh"])  # one new, one seen before
    assert len(learned) == 1
    actor = SeenSequences("torch")
    actor.load(snapshot, learned)
    assert bytes(actor.bits) == bytes(driver.bits)
    assert ("exp", "relu") in actor and ("relu", "tanh", "exp") in actor and ("tanh", "exp") not in actor
    with pytest.raises(ValueError, match="different operator registries"):
        actor.load(zlib.compress(b"\0" * 10))
