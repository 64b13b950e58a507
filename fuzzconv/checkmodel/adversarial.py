"""Adversarial robustness before and after conversion: FGSM and PGD crafted on the source model.

Attacks perturb the first input of a classifier (its first output is read as logits) within an
L-infinity ball of radius `eps`, clipped to the range the clean inputs span. The adversarial
inputs are crafted once, with the source model's gradients, and then shown to both the source
and the converted model: a converted model that is as robust as its source fools as often, and
the two agree on what the adversarial inputs are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

GradientFn = Callable[[list[np.ndarray], np.ndarray], np.ndarray]
PredictFn = Callable[[list[np.ndarray]], np.ndarray]  # class index per row

ATTACKS = ("fgsm", "pgd")


@dataclass(frozen=True)
class AttackSettings:
    eps_fraction: float = 0.1  # eps as a fraction of the clean inputs' value range
    pgd_steps: int = 10
    pgd_step_fraction: float = 0.25  # PGD step size as a fraction of eps


def fgsm(x: np.ndarray, gradient: np.ndarray, eps: float, low: float, high: float) -> np.ndarray:
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size eps along sign(grad)."""
    return np.clip(x + eps * np.sign(gradient), low, high).astype(x.dtype)


def pgd(inputs: list[np.ndarray], labels: np.ndarray, gradient_of: GradientFn, eps: float, steps: int,
        step: float, low: float, high: float) -> np.ndarray:
    """Projected gradient descent (Madry et al. 2018) from the clean point, projected to the eps ball."""
    x0 = inputs[0]
    x = x0.copy()
    for _ in range(steps):
        g = gradient_of([x, *inputs[1:]], labels)
        x = np.clip(np.clip(x + step * np.sign(g), x0 - eps, x0 + eps), low, high).astype(x0.dtype)
    return x


@dataclass
class AttackResult:
    eps: float
    samples: int
    success_source: float  # fraction of adversarial inputs the source model misclassifies
    success_converted: float  # the same adversarial inputs, through the converted model
    disagreement: float  # fraction where source and converted predict different classes

    def to_json(self) -> dict[str, Any]:
        return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in asdict(self).items()}


def craft(inputs: list[np.ndarray], labels: np.ndarray, gradient_of: GradientFn,
          settings: AttackSettings) -> tuple[float, dict[str, np.ndarray]]:
    """(eps, adversarial first inputs per attack), crafted on the source model."""
    x = inputs[0]
    low, high = float(x.min()), float(x.max())
    eps = settings.eps_fraction * ((high - low) or 1.0)
    adversarial = {
        "fgsm": fgsm(x, gradient_of(inputs, labels), eps, low, high),
        "pgd": pgd(inputs, labels, gradient_of, eps, settings.pgd_steps, settings.pgd_step_fraction * eps, low, high),
    }
    return eps, adversarial


def judge(adversarial: np.ndarray, rest: list[np.ndarray], labels: np.ndarray, eps: float,
          predict_source: PredictFn, predict_converted: PredictFn) -> AttackResult:
    source = predict_source([adversarial, *rest])
    converted = predict_converted([adversarial, *rest])
    return AttackResult(
        eps=eps,
        samples=len(labels),
        success_source=float((source != labels).mean()),
        success_converted=float((converted != labels).mean()),
        disagreement=float((source != converted).mean()),
    )
