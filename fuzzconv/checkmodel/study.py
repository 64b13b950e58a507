"""`fuzzconv study`: the ICSME 2022 conversion study (Openja et al.) on the installed versions.

Five models (LeNet-5, a small ResNet, a small VGG, an LSTM, a GRU) are built in PyTorch and in
Keras, trained briefly on scikit-learn's digits in a spawned process per framework, saved with
a FUNC file each, and then checked exactly as `fuzzconv check-model FILE.py:FUNC --data
TEST.npz` would, one after the other (so latency figures do not compete with each other).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fuzzconv.checkmodel.loader import ModelSpec
from fuzzconv.checkmodel.runner import CheckSettings, check_model
from fuzzconv.store import atomic_write, now_iso

MODELS = ("lenet5", "resnet", "vgg", "lstm", "gru")
MODEL_LABEL = {"lenet5": "LeNet-5", "resnet": "ResNet (small)", "vgg": "VGG (small)", "lstm": "LSTM", "gru": "GRU"}
FRONTEND_LABEL = {"torch": "PyTorch", "keras": "Keras"}
TRAIN_TIMEOUT_S = 900.0

FUNC_FILE = '''"""{label} ({frontend}) trained by `fuzzconv study`; its weights lie beside this file."""

from fuzzconv.checkmodel.{zoo} import trained


def model():
    return trained({name!r}, __file__)
'''


@dataclass(frozen=True)
class StudySettings:
    out: Path
    epochs: int = 8
    models: tuple[str, ...] = ()
    frontends: tuple[str, ...] = ("torch", "keras")
    repeats: int = 30
    memory: bool = True


@dataclass
class StudyRun:
    settings: StudySettings
    started: float = field(default_factory=time.monotonic)
    training: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def models(self) -> tuple[str, ...]:
        return self.settings.models or MODELS


def func_file(out: Path, frontend: str, name: str) -> Path:
    return out / "models" / f"{frontend}_{name}.py"


def data_file(out: Path, frontend: str, name: str) -> Path:
    from fuzzconv.checkmodel.digits import data_path

    layout = "sequence" if name in ("lstm", "gru") else "nchw" if frontend == "torch" else "nhwc"
    return data_path(out / "data", layout)


def run_study(settings: StudySettings) -> int:
    from fuzzconv.checkmodel.digits import write_test_sets
    from fuzzconv.checkmodel.study_report import write_reports
    from fuzzconv.cli import UsageError

    unknown = [m for m in settings.models if m not in MODELS]
    if unknown:
        raise UsageError(f"unknown study model {unknown[0]!r}; choose from: {', '.join(MODELS)}")
    out = settings.out.resolve()
    run = StudyRun(settings)
    write_test_sets(out / "data")
    for frontend in settings.frontends:
        _progress(run, f"training {len(run.models)} {FRONTEND_LABEL[frontend]} models ({settings.epochs} epochs)")
        run.training.update(train_in_worker(out, frontend, run.models, settings.epochs))
    for frontend in settings.frontends:
        for name in run.models:
            run.checks.append(_check_one(run, out, frontend, name))
    elapsed = time.monotonic() - run.started
    recorded = {"epochs": settings.epochs, "repeats": settings.repeats, "memory": settings.memory}
    machine = {"finished": now_iso(), "cores": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1)}
    atomic_write(out / "results.json", json.dumps({"training": run.training, "checks": run.checks, "elapsed_s": elapsed,
                                                   "settings": recorded, "machine": machine}, indent=1) + "\n")
    paths = write_reports(out, run.training, run.checks, elapsed, settings, machine)
    _progress(run, f"done in {elapsed / 60:.1f} min: {paths[0]} and {paths[1]}")
    return 0


def rerender(settings: StudySettings) -> int:
    """Write the reports again from results.json (after a change to the report code, say)."""
    from fuzzconv.checkmodel.study_report import write_reports
    from fuzzconv.cli import UsageError

    path = settings.out / "results.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"no readable study results at {path} ({exc}); run `fuzzconv study --out {settings.out}` "
                         "first") from None
    settings = replace(settings, **stored.get("settings", {}))
    paths = write_reports(settings.out.resolve(), stored["training"], stored["checks"], stored["elapsed_s"], settings,
                          stored.get("machine", {}))
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


def _check_one(run: StudyRun, out: Path, frontend: str, name: str) -> dict[str, Any]:
    spec = ModelSpec(func_file(out, frontend, name), "model")
    settings = CheckSettings(repeats=run.settings.repeats, memory=run.settings.memory)
    start = time.monotonic()
    report = check_model(spec, str(data_file(out, frontend, name)), settings, out)
    report["study"] = {"model": name, "frontend": frontend, "check_s": round(time.monotonic() - start, 1)}
    verdicts = ", ".join(f"{r['converter']} {r['status']}" for r in report["converters"])
    _progress(run, f"{FRONTEND_LABEL[frontend]} {MODEL_LABEL[name]}: {verdicts} ({report['study']['check_s']:.0f}s)")
    return report


def _progress(run: StudyRun, text: str) -> None:
    print(f"[study {time.monotonic() - run.started:6.0f}s] {text}", file=sys.stderr, flush=True)


def train_in_worker(out: Path, frontend: str, names: tuple[str, ...], epochs: int) -> dict[str, dict[str, Any]]:
    """Train and save each model in a spawned process that imports only this frontend's framework."""
    for name in names:
        zoo = "zoo_torch" if frontend == "torch" else "zoo_keras"
        label = f"{MODEL_LABEL[name]}"
        atomic_write(func_file(out, frontend, name), FUNC_FILE.format(label=label, frontend=frontend, zoo=zoo, name=name))
    result_path = out / "models" / f"training_{frontend}.json"
    result_path.unlink(missing_ok=True)
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=train_worker, args=(str(out), frontend, names, epochs, str(result_path)),
                              name=f"fuzzconv-study-train-{frontend}")
    process.start()
    process.join(TRAIN_TIMEOUT_S)
    if process.is_alive():
        process.kill()
        process.join()
    if not result_path.is_file():
        raise RuntimeError(f"training the {frontend} models failed (exit code {process.exitcode}); "
                           f"see {out / 'models' / f'training_{frontend}.log'}")
    return dict(json.loads(result_path.read_text()))


def train_worker(out: str, frontend: str, names: tuple[str, ...], epochs: int, result_path: str) -> None:
    import os

    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    from fuzzconv.workers import _quiet_process

    _quiet_process(str(Path(out) / "models" / f"training_{frontend}.log"))
    if frontend == "torch":
        import torch

        torch.set_num_threads(1)
        from fuzzconv.checkmodel import zoo_torch as zoo
    else:
        from fuzzconv.checkmodel import zoo_keras as zoo  # type: ignore[no-redef]
    from fuzzconv.checkmodel.digits import digits_split, in_layout

    x_train, y_train, _, _ = digits_split()
    results = {}
    for name in names:
        start = time.monotonic()
        model = zoo.train(name, in_layout(x_train, zoo.layout_of(name)), y_train, epochs)
        zoo.save(model, func_file(Path(out), frontend, name).with_suffix(".pt"))
        results[f"{frontend}/{name}"] = {"train_s": round(time.monotonic() - start, 2), "epochs": epochs,
                                         "train_rows": len(x_train)}
    atomic_write(Path(result_path), json.dumps(results, indent=1) + "\n")
