"""`fuzzconv check-model` and `fuzzconv study`: their parsers and what they run.

Registered through `fuzzconv.cli.SUBCOMMAND_MODULES`; nothing heavy is imported here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fuzzconv.case import CONVERTERS


def add_parser(sub: Any) -> None:
    check = sub.add_parser("check-model", help="check one model of your own with every converter",
                           description="Convert FILE.py:FUNC's model with every applicable converter and compare "
                                       "outputs, accuracy, latency, memory, size and adversarial robustness.")
    check.add_argument("model", metavar="FILE.py:FUNC",
                       help="FUNC returns (torch.nn.Module, tuple of tensors) or (keras.Model, list of arrays)")
    check.add_argument("--data", metavar="FILE.npz", help="real inputs: x (or x0, x1, ...) and optional labels y")
    check.add_argument("--converter", action="append", metavar="NAME",
                       help=f"converter to use, repeatable (default: all that fit the model, of {', '.join(CONVERTERS)})")
    check.add_argument("--opset", type=int, default=None, help="ONNX opset (default: each converter's own)")
    check.add_argument("--tolerance", type=float, default=1e-3,
                       help="largest allowed |a-e|/(1+|e|) between source and converted outputs (default 1e-3)")
    check.add_argument("-n", "--random-inputs", type=int, default=8,
                       help="random batches drawn like the example inputs (default 8)")
    check.add_argument("--repeats", type=int, default=30, help="timed runs per latency figure (default 30)")
    check.add_argument("--no-robustness", action="store_true", help="skip the FGSM/PGD robustness check")
    check.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes (fresh processes)")
    check.add_argument("--eps", type=float, default=0.1,
                       help="attack radius as a fraction of the inputs' value range (default 0.1)")
    check.add_argument("--attack-samples", type=int, default=256, help="rows to attack (default 256)")
    check.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    check.add_argument("--timeout", default="10m", help="longest wait for any one step (default 10m)")
    check.add_argument("--out", default=".", help="folder for crashes/<bucket>/ of failing converters (default: .)")
    check.add_argument("--json", action="store_true", help="print the whole result as JSON")
    check.set_defaults(func=cmd_check_model)

    study = sub.add_parser("study", help="reproduce the ICSME 2022 conversion study (Openja et al.) here",
                           description="Train LeNet-5, a small ResNet, a small VGG, an LSTM and a GRU in PyTorch and "
                                       "Keras on scikit-learn's digits, convert each with every converter, measure "
                                       "as check-model does, and write report.html and report.md.")
    study.add_argument("--out", default="study", help="folder for the report, models and data (default: ./study)")
    study.add_argument("--epochs", type=int, default=8, help="training epochs per model (default 8)")
    study.add_argument("--model", action="append", metavar="NAME",
                       help="only these models, repeatable: lenet5, resnet, vgg, lstm, gru (default: all)")
    study.add_argument("--frontend", action="append", choices=("torch", "keras"), help="only these frameworks")
    study.add_argument("--repeats", type=int, default=30, help="timed runs per latency figure (default 30)")
    study.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    study.add_argument("--report-only", action="store_true",
                       help="re-render report.md and report.html from a finished study's results.json")
    study.set_defaults(func=cmd_study)


def settings_from(args: argparse.Namespace) -> Any:
    from fuzzconv.checkmodel.runner import CheckSettings
    from fuzzconv.cli import UsageError, check_converters, parse_duration

    if args.random_inputs < 0 or args.repeats < 1 or args.attack_samples < 1:
        raise UsageError("-n must be 0 or more, --repeats and --attack-samples 1 or more")
    if not 0 < args.tolerance < 1e3 or not 0 < args.eps <= 1:
        raise UsageError(f"--tolerance must be positive (got {args.tolerance}) and --eps in (0, 1] (got {args.eps})")
    return CheckSettings(
        converters=check_converters(args.converter) if args.converter else (), opset=args.opset,
        n_random=args.random_inputs, seed=args.seed, tolerance=args.tolerance, repeats=args.repeats,
        robustness=not args.no_robustness, memory=not args.no_memory, attack_samples=args.attack_samples,
        eps_fraction=args.eps, timeout_s=parse_duration(args.timeout),
    )


def cmd_check_model(args: argparse.Namespace) -> int:
    from fuzzconv.checkmodel.loader import UserModelError, parse_spec, read_data
    from fuzzconv.checkmodel.runner import check_model, dumps
    from fuzzconv.cli import UsageError

    settings = settings_from(args)
    try:
        spec = parse_spec(args.model)
        if args.data:
            read_data(args.data)  # fail early on a malformed file; its fit to the model is checked in the worker
        report = check_model(spec, args.data, settings, Path(args.out))
    except UserModelError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(dumps(report))
    else:
        from fuzzconv.checkmodel.console import print_check

        print_check(report)
    return int(report["exit_code"])


def cmd_study(args: argparse.Namespace) -> int:
    from fuzzconv.checkmodel.study import StudySettings, run_study
    from fuzzconv.cli import UsageError

    if args.epochs < 1 or args.repeats < 1:
        raise UsageError("--epochs and --repeats must be 1 or more")
    settings = StudySettings(out=Path(args.out), epochs=args.epochs, models=tuple(args.model or ()),
                             frontends=tuple(args.frontend or ("torch", "keras")), repeats=args.repeats,
                             memory=not args.no_memory)
    if args.report_only:
        from fuzzconv.checkmodel.study import rerender

        return rerender(settings)
    return run_study(settings)
