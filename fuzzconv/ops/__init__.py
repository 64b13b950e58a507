"""The operator registry: every operator declared once, in its family's module."""

from __future__ import annotations

from fuzzconv.ops.spec import Op

REGISTRY: dict[str, Op] = {}


def register(*ops: Op) -> None:
    for op in ops:
        if op.name in REGISTRY:
            raise ValueError(f"operator {op.name!r} is declared twice")
        REGISTRY[op.name] = op


def get(name: str) -> Op:
    _load()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown operator {name!r}; `fuzzconv ops` lists the registry") from None


def all_ops() -> list[Op]:
    _load()
    return sorted(REGISTRY.values(), key=lambda op: (op.family, op.name))


def for_frontend(frontend: str) -> list[Op]:
    return [op for op in all_ops() if op.impl(frontend) is not None]


_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from fuzzconv.ops import (  # noqa: F401 - importing registers each family
        activations,
        attention,
        dtypes,
        elementwise,
        indexing,
        layers,
        logic,
        normalization,
        recurrent,
        reductions,
        shaping,
        spatial,
    )

    dtypes.apply(REGISTRY)
