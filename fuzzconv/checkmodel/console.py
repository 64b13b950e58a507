"""The check-model table on the terminal: one row per converter, the source model on top."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from fuzzconv.report_console import console


def _num(value: Any, fmt: str = ".3g", unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _size(size: Any) -> str:
    return "-" if size is None else f"{size / 1024:.0f} KiB"


def _attack(result: dict[str, Any], attack: str) -> str:
    figures = (result.get("robustness") or {}).get(attack)
    return _pct(figures["success_converted"]) if figures else "-"


def _adversarial_disagreement(result: dict[str, Any]) -> str:
    figures = (result.get("robustness") or {}).values()
    return _pct(max(f["disagreement"] for f in figures)) if figures else "-"


def print_check(report: dict[str, Any]) -> None:
    model, source = report["model"], report["source"]
    shapes = ", ".join(f"{i['dtype']}{i['shape']}" for i in model["inputs"])
    console.print(f"[bold]{model['spec']}[/]: {model['frontend']} model, {model['parameters']} parameters, "
                  f"inputs {shapes}")
    table = Table(title="check-model: source vs converted (random inputs / --data rows)")
    for column in ("converter", "status", "max err random", "max err data", "top-1 agree", "accuracy",
                   "latency ms", "peak MB", "size", "FGSM fooled", "PGD fooled", "adv. differ"):
        named = column in ("converter", "status")
        table.add_column(column, justify="left" if named else "right", no_wrap=named)
    attack = source.get("attack_success") or {}
    table.add_row("source", "", "", "", "", _pct(source.get("accuracy")), _num(source["latency_ms"]),
                  _num(source.get("peak_memory_mb"), ".1f"), _size(model.get("native_size_bytes")),
                  _pct(attack.get("fgsm")), _pct(attack.get("pgd")), "")
    for result in report["converters"]:
        table.add_row(*_converter_row(result))
    console.print(table)
    _print_failures(report)


def _converter_row(result: dict[str, Any]) -> list[str]:
    random, data = result.get("random") or {}, result.get("data") or {}
    status = "pass" if result["status"] == "pass" else f"{result['stage']} {result['symptom']}"
    top1 = data.get("top1_agreement", random.get("top1_agreement"))
    return [result["converter"], status, _num(random.get("max_abs_err")), _num(data.get("max_abs_err")), _pct(top1),
            _pct(data.get("accuracy_converted")), _num(result.get("latency_ms")),
            _num(result.get("peak_memory_mb"), ".1f"), _size(result.get("onnx_size_bytes")),
            _attack(result, "fgsm"), _attack(result, "pgd"), _adversarial_disagreement(result)]


def _print_failures(report: dict[str, Any]) -> None:
    for result in report["converters"]:
        if result["status"] != "pass":
            console.print(f"[red]{result['title']}[/]\n  decided by: {result.get('decided_by') or 'n/a'}"
                          + (f"\n  bucket: {result['bucket']}" if result.get("bucket") else ""))
    tolerance = report["settings"]["tolerance"]
    verdict = "all converters pass" if not report["failed"] else f"failed: {', '.join(report['failed'])}"
    console.print(f"{verdict} (tolerance |a-e|/(1+|e|) <= {tolerance:g}; latency = median of "
                  f"{report['settings']['repeats']} single-threaded runs at the example batch; fooled = share of "
                  "FGSM/PGD inputs crafted on the source that the model misclassifies; adv. differ = share of "
                  "them on which source and converted disagree)")
