"""The study's results as rows (one per model x framework x converter) and tables laid out like the paper's.

The paper reports each measure in its own table: one row per model, a column group per
framework holding the original model and its converted forms. Here the converted forms are the
two converters of each framework. Pure data; rendering is `study_report`'s.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fuzzconv.checkmodel.study import FRONTEND_LABEL, MODEL_LABEL, MODELS

FRONTEND_CONVERTERS = {"keras": ("tf2onnx", "keras-export"), "torch": ("torch-dynamo", "torch-script")}
FRONTEND_ORDER = ("keras", "torch")  # the paper's tables put Keras first


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Row:
    """One converted model beside its source."""

    model: str
    frontend: str
    check: dict[str, Any]
    result: dict[str, Any]

    @property
    def converter(self) -> str:
        return str(self.result["converter"])

    @property
    def passed(self) -> bool:
        return self.result["status"] == "pass"

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.check["source"])

    def data(self, key: str) -> Any:
        return (self.result.get("data") or {}).get(key)

    def attack(self, attack: str, key: str) -> Any:
        return ((self.result.get("robustness") or {}).get(attack) or {}).get(key)


def rows_of(checks: list[dict[str, Any]]) -> list[Row]:
    return [Row(c["study"]["model"], c["study"]["frontend"], c, r) for c in checks for r in c["converters"]]


def _pct(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _num(value: Any, fmt: str = ".3g") -> str:
    return "-" if value is None else f"{value:{fmt}}"


def _failed(row: Row | None) -> str:
    if row is None:
        return "n/a"
    return f"fails ({row.result['stage']} {row.result['symptom']})"


def paper_layout(title: str, checks: list[dict[str, Any]], source_cell: Callable[[dict[str, Any]], str],
                 converted_cell: Callable[[Row], str], note: str = "") -> Table:
    """Rows: models. Column groups: Keras (original, tf2onnx, keras-export), PyTorch (original, dynamo, script)."""
    frontends = [f for f in FRONTEND_ORDER if any(c["study"]["frontend"] == f for c in checks)]
    header = ["model"]
    for frontend in frontends:
        header += [f"{FRONTEND_LABEL[frontend]} original", *FRONTEND_CONVERTERS[frontend]]
    rows = []
    for model in MODELS:
        found = {c["study"]["frontend"]: c for c in checks if c["study"]["model"] == model}
        if not found:
            continue
        cells = [MODEL_LABEL[model]]
        for frontend in frontends:
            check = found.get(frontend)
            cells.append(source_cell(check) if check else "n/a")
            for converter in FRONTEND_CONVERTERS[frontend]:
                row = _row_for(check, converter) if check else None
                cells.append(converted_cell(row) if row is not None and row.passed else _failed(row))
        rows.append(tuple(cells))
    return Table(title, tuple(header), tuple(rows), note)


def _row_for(check: dict[str, Any], converter: str) -> Row | None:
    result = next((r for r in check["converters"] if r["converter"] == converter), None)
    return Row(check["study"]["model"], check["study"]["frontend"], check, result) if result else None


def paper_tables(checks: list[dict[str, Any]]) -> list[Table]:
    def attack_cell(attack: str) -> Callable[[Row], str]:
        return lambda r: f"{_pct(r.attack(attack, 'success_converted'))} (differ {_pct(r.attack(attack, 'disagreement'))})"

    def source_attack(attack: str) -> Callable[[dict[str, Any]], str]:
        return lambda c: _pct((c["source"].get("attack_success") or {}).get(attack))

    return [
        paper_layout("Table A. Prediction accuracy (%) on the digits test rows, before and after conversion", checks,
                     lambda c: _pct(c["source"].get("accuracy")), lambda r: _pct(r.data("accuracy_converted"))),
        paper_layout("Table B. Top-1 disagreement (%) and largest output difference, converted vs original", checks,
                     lambda c: "(reference)", lambda r: f"{_pct(1 - r.data('top1_agreement'), 2)} / {_num(r.data('max_abs_err'))}",
                     "Cell: share of test rows whose predicted class differs / max |converted - original| over all "
                     "logits of the test rows."),
        paper_layout("Table C. Inference time (ms per batch of 32, median, single thread)", checks,
                     lambda c: _num(c["source"].get("latency_ms"), ".2f"), lambda r: _num(r.result.get("latency_ms"), ".2f"),
                     "Original: eager PyTorch / Keras call. Converted: onnxruntime CPU session, all graph "
                     "optimizations on. A Keras eager call carries tens of milliseconds of per-call overhead here, "
                     "so the PyTorch columns are the fairer comparison."),
        paper_layout("Table D. Peak memory (MB) to load the model and run one batch, fresh process", checks,
                     lambda c: _num(c["source"].get("peak_memory_mb"), ".1f"),
                     lambda r: _num(r.result.get("peak_memory_mb"), ".1f")),
        paper_layout("Table E. Model size (KiB)", checks,
                     lambda c: _num((c["model"].get("native_size_bytes") or 0) / 1024, ".0f"),
                     lambda r: _num(r.result.get("onnx_size_bytes", 0) / 1024, ".0f"),
                     "Original: the framework's weights file (torch.save of the state_dict / Keras save_weights .weights.h5). "
                     "Converted: the serialized ONNX model (weights and graph)."),
        paper_layout("Table F. FGSM attack success (%), adversarial inputs crafted on the original", checks,
                     source_attack("fgsm"), attack_cell("fgsm"),
                     "Converted cell: share of the same adversarial inputs the converted model misclassifies "
                     "(share on which it predicts differently from the original)."),
        paper_layout("Table G. PGD attack success (%), adversarial inputs crafted on the original", checks,
                     source_attack("pgd"), attack_cell("pgd")),
    ]


def full_table(checks: list[dict[str, Any]]) -> Table:
    header = ("model", "framework", "converter", "status", "acc. orig %", "acc. conv %", "top-1 differ %",
              "max abs err", "tolerance needed", "latency orig ms", "latency ORT ms", "mem orig MB", "mem ORT MB",
              "size orig KiB", "size ONNX KiB", "FGSM orig/conv %", "PGD orig/conv %", "adv. differ %")
    rows = []
    for row in rows_of(checks):
        source = row.source
        attacks = source.get("attack_success") or {}
        status = "pass" if row.passed else f"{row.result['stage']} {row.result['symptom']}"
        differ = [row.attack(a, "disagreement") for a in ("fgsm", "pgd") if row.attack(a, "disagreement") is not None]
        top1 = row.data("top1_agreement")
        rows.append((MODEL_LABEL[row.model], FRONTEND_LABEL[row.frontend], row.converter, status,
                     _pct(source.get("accuracy")), _pct(row.data("accuracy_converted")),
                     _pct(None if top1 is None else 1 - top1, 2), _num(row.data("max_abs_err")),
                     _num(row.data("required_tol")), _num(source.get("latency_ms"), ".2f"),
                     _num(row.result.get("latency_ms"), ".2f"), _num(source.get("peak_memory_mb"), ".1f"),
                     _num(row.result.get("peak_memory_mb"), ".1f"),
                     _num((row.check["model"].get("native_size_bytes") or 0) / 1024, ".0f"),
                     _num(row.result.get("onnx_size_bytes", 0) / 1024, ".0f") if row.passed else "-",
                     f"{_pct(attacks.get('fgsm'))}/{_pct(row.attack('fgsm', 'success_converted'))}",
                     f"{_pct(attacks.get('pgd'))}/{_pct(row.attack('pgd', 'success_converted'))}",
                     _pct(max(differ)) if differ else "-"))
    return Table("All results: one row per model x framework x converter", header, tuple(rows))


def failures_table(checks: list[dict[str, Any]]) -> Table:
    rows = tuple((MODEL_LABEL[r.model], FRONTEND_LABEL[r.frontend], r.converter, r.result["title"],
                  r.result.get("decided_by", ""), r.result.get("bucket", ""))
                 for r in rows_of(checks) if not r.passed)
    return Table("Conversion failures (each left a bucket, as a campaign finding does)",
                 ("model", "framework", "converter", "bucket title", "stage decided by", "bucket folder"), rows)


# --- headline comparisons -------------------------------------------------------------------


def _ratios(rows: list[Row], converted: Callable[[Row], Any], original: Callable[[Row], Any]) -> list[float]:
    pairs = [(converted(r), original(r)) for r in rows]
    return [c / o for c, o in pairs if c is not None and o]


def ours(key: str, checks: list[dict[str, Any]]) -> tuple[str, str]:
    """(what this run measured, whether the paper's finding holds here) for one finding."""
    passed = [r for r in rows_of(checks) if r.passed]
    total = len(rows_of(checks))
    if not passed:
        return "no converter produced a working model", "cannot tell"
    return _OURS[key](passed, total)


def _accuracy(passed: list[Row], total: int) -> tuple[str, str]:
    gaps = [abs(r.data("accuracy_converted") - r.source["accuracy"]) for r in passed
            if r.data("accuracy_converted") is not None and r.source.get("accuracy") is not None]
    differ = [1 - r.data("top1_agreement") for r in passed if r.data("top1_agreement") is not None]
    worst_gap, worst_differ = max(gaps, default=0.0), max(differ, default=0.0)
    text = (f"{len(passed)} of {total} conversions produced a working model; among them the largest accuracy change "
            f"is {100 * worst_gap:.2f} points and at most {100 * worst_differ:.2f}% of test rows change class.")
    return text, "yes" if worst_gap <= 0.01 else "no"


def _performance(passed: list[Row], total: int) -> tuple[str, str]:
    speed = _ratios(passed, lambda r: r.result.get("latency_ms"), lambda r: r.source.get("latency_ms"))
    memory = _ratios(passed, lambda r: r.result.get("peak_memory_mb"), lambda r: r.source.get("peak_memory_mb"))
    text = (f"onnxruntime time / original time: median {statistics.median(speed):.2g}x "
            f"(range {min(speed):.2g}x to {max(speed):.2g}x)" if speed else "no latency figures")
    if memory:
        text += (f"; onnxruntime peak memory / original: median {statistics.median(memory):.2g}x "
                 f"(range {min(memory):.2g}x to {max(memory):.2g}x)")
    if not speed:
        return text + ".", "cannot tell"
    slower = sum(1 for s in speed if s > 1)
    verdict = f"slower in {slower} of {len(speed)}" if slower else f"no: faster in all {len(speed)}"
    return text + ".", verdict


def _size(passed: list[Row], total: int) -> tuple[str, str]:
    ratios = _ratios(passed, lambda r: r.result.get("onnx_size_bytes"), lambda r: r.check["model"].get("native_size_bytes"))
    if not ratios:
        return "no size figures", "cannot tell"
    smaller = sum(1 for s in ratios if s < 1)
    text = (f"ONNX size / native size: median {statistics.median(ratios):.2g}x "
            f"(range {min(ratios):.2g}x to {max(ratios):.2g}x); smaller in {smaller} of {len(ratios)}.")
    return text, "yes" if smaller == len(ratios) else "partly" if smaller else "no"


def _robustness(passed: list[Row], total: int) -> tuple[str, str]:
    gaps = [abs((r.attack(a, "success_converted") or 0) - (r.source.get("attack_success") or {}).get(a, 0))
            for r in passed for a in ("fgsm", "pgd") if r.attack(a, "success_converted") is not None]
    differ = [r.attack(a, "disagreement") for r in passed for a in ("fgsm", "pgd")
              if r.attack(a, "disagreement") is not None]
    if not gaps:
        return "no robustness figures", "cannot tell"
    text = (f"largest change in attack success between original and converted: {100 * max(gaps):.2f} points; "
            f"they disagree on at most {100 * max(differ):.2f}% of adversarial inputs.")
    return text, "yes" if max(gaps) <= 0.01 else "no"


def _coreml(passed: list[Row], total: int) -> tuple[str, str]:
    return "CoreML is not among fuzzconv's converters; not measured.", "not tested"


_OURS = {"accuracy": _accuracy, "performance": _performance, "size": _size, "robustness": _robustness,
         "coreml": _coreml}


def findings_table(checks: list[dict[str, Any]]) -> Table:
    from fuzzconv.checkmodel.paper import FINDINGS

    rows = tuple((str(i), f.paper, *ours(f.key, checks)) for i, f in enumerate(FINDINGS, 1))
    return Table("Headline findings: the paper beside this run", ("#", "Openja et al. 2022 (paraphrased from the "
                 "abstract)", "this run", "holds here?"), rows,
                 "The paper's own numbers are not recorded in this project, so its findings are stated qualitatively.")
