"""Section 3: are failures caused by operator sequences rather than operator types?"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from fuzzconv.analyze import association, classify, cores, sequences
from fuzzconv.analyze.data import CaseRecord
from fuzzconv.analyze.operator_types import result_table, volcano
from fuzzconv.analyze.sections import (
    ALPHA_CLASSIFIER,
    NOT_ENOUGH,
    NOT_SUPPORTED,
    SUPPORTED,
    Figure,
    Section,
    Table,
    fmt_p,
)

QUESTION = ("Do operator pairs and n-grams predict failure beyond the operators they are made of, "
            "on cases the model has not seen?")


def _unseen_table(measure: sequences.UnseenShare) -> tuple[Table, Figure]:
    def spread(values: list[float]) -> str:
        if not values:
            return "-"
        low, mid, high = np.percentile(values, [2.5, 50, 97.5])
        return f"{100 * mid:.1f} % [{100 * low:.1f}, {100 * high:.1f}]"
    known = measure.holders_of_known_ops
    rows = [["observed", f"{measure.holders}/{measure.failing} ({100 * measure.share:.1f} %)", "-"],
            ["observed, only sequences of operators that also occur in passing cases",
             f"{known}/{measure.failing} ({100 * known / max(1, measure.failing):.1f} %)", "-"],
            ["labels shuffled within converter", spread(measure.permuted), fmt_p(measure.p_value(measure.permuted))],
            ["labels shuffled within converter and graph size", spread(measure.permuted_by_size),
             fmt_p(measure.p_value(measure.permuted_by_size))]]
    table = Table("The study's measure: failing cases holding a sequence never seen in a passing case",
                  ["labels", "share of failing cases (median [95 % range])", "p (share this high by chance)"], rows,
                  f"Sequences: operator pairs, 3-grams and 4-grams of the source graph; {len(measure.permuted)} "
                  "shuffles each. The study reported 312 of 320 (97.5 %).")
    figure = Figure("sequences-unseen", "Unseen-sequence share: observed against shuffled labels", "hist",
                    {"series": {"shuffled within converter": [round(100 * v, 2) for v in measure.permuted],
                                "shuffled within converter and size": [round(100 * v, 2) for v in measure.permuted_by_size]},
                     "markers": {"observed": round(100 * measure.share, 2),
                                 "observed, operators that also pass":
                                     round(100 * measure.holders_of_known_ops / max(1, measure.failing), 2),
                                 "study (97.5 %)": 97.5}},
                    xlabel="failing cases holding a never-passing sequence (%)", ylabel="shuffles")
    return table, figure


def _classifier_figure(results: list[classify.Comparison]) -> Figure:
    categories = [r.converter for r in results]
    return Figure("sequences-auc", "Held-out AUC: operator types against types + directed pairs", "bars",
                  {"categories": categories,
                   "series": {"types + co-occurrence": [round(r.auc_types, 4) for r in results],
                              "types + directed pairs": [round(r.auc_sequences, 4) for r in results]},
                   "errors": {"types + co-occurrence": [list(r.interval_types) for r in results],
                              "types + directed pairs": [list(r.interval_sequences) for r in results]},
                   "ylim": [0.4, 1.0]},
                  ylabel="held-out AUC", caption="Bars: held-out AUC (mean over the cross-fitted folds); whiskers: paired-bootstrap interval.")


def _cores_table(folders: list[Path]) -> tuple[Table, Counter[str]]:
    found = [core for folder in folders for core in cores.load_cores(folder)]
    kinds = Counter(core.kind for core in found)
    note = ("What each bucket's minimized case keeps (same title), sequences first: " +
            ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()) + "." if found else "No bucket folders found.")
    return Table("Minimized bucket cores: the sequences that actually cause each bug", cores.COLUMNS,
                 [core.row() for core in found], note, limit=60), kinds


def _context(beyond: list[association.Association], onnx_beyond: list[association.Association],
             measure: sequences.UnseenShare, kinds: Counter[str]) -> str:
    """The evidence besides the classifiers, as the tail of the verdict sentence."""
    n_beyond = sum(t.significant and t.odds_ratio > 1 for t in beyond)
    known = 100 * measure.holders_of_known_ops / max(1, measure.failing)
    shuffled = 100 * float(np.median(measure.permuted_by_size or [np.nan]))
    text = (f"{n_beyond} source sequences fail more than their operators alone; the study's measure is "
            f"{100 * measure.share:.1f} % here ({known:.1f} % counting only sequences of operators that also pass) "
            f"against {shuffled:.1f} % with labels shuffled within graph size")
    onnx_hits = [t for t in onnx_beyond if t.significant and t.odds_ratio > 1]
    if onnx_hits:
        top = onnx_hits[0]
        text += (f"; {len(onnx_hits)} ONNX operator pairs of converted graphs fail more than their operators alone "
                 f"(e.g. {top.feature} in {top.converter}: {100 * top.rate_with:.1f} % against "
                 f"{100 * top.rate_without:.1f} %)")
    minimized = sum(n for kind, n in kinds.items() if kind != "not minimized")
    if minimized:
        text += f"; {kinds['single operator']} of {minimized} minimized bucket cores are a single operator"
    return text


def _sentence(results: list[classify.Comparison], skipped: list[str], context: str) -> tuple[str, str]:
    if not results:
        return NOT_ENOUGH, (f"Not enough data: no converter has {classify.MIN_PER_CLASS} failing and "
                            f"{classify.MIN_PER_CLASS} passing cases ({'; '.join(skipped)}); {context}.")
    wins = [r for r in results if r.sequences_win]
    if wins:
        best = max(wins, key=lambda r: r.gain)
        return SUPPORTED, (f"Supported: operator pairs raise held-out AUC over operator types and their "
                           f"co-occurrence in {len(wins)} of {len(results)} converters "
                           f"(best {best.converter}: {best.auc_types:.3f} -> {best.auc_sequences:.3f}, gain "
                           f"{best.gain:+.3f}, CI [{best.interval_gain[0]:+.3f}, {best.interval_gain[1]:+.3f}]); "
                           f"{context}.")
    gains = ", ".join(f"{r.converter} {r.gain:+.3f}" for r in results)
    negligible = [r for r in results if r.significant]
    if negligible:
        gains += (f"; significant but below the {classify.MIN_GAIN} that would matter in "
                  + ", ".join(f"{r.converter} (CI [{r.interval_gain[0]:+.3f}, {r.interval_gain[1]:+.3f}])"
                              for r in negligible))
    return NOT_SUPPORTED, (f"Not supported: operator pairs do not raise held-out AUC over operator types and their "
                           f"co-occurrence by {classify.MIN_GAIN} or more in any of {len(results)} converters "
                           f"(gains {gains}); {context}.")


def _classifier_table(results: list[classify.Comparison], skipped: list[str], resamples: int) -> Table:
    level = 100 * (results[0].level if results else 1 - ALPHA_CLASSIFIER)
    return Table("Classifiers on held-out cases", classify.COLUMNS, [r.row() for r in results],
                 f"Cross-fitted: each of {classify.FOLDS} folds of a converter's cases is scored by a model fitted on "
                 f"the others, AUC is the mean over folds; intervals at {level:.2f} % (Bonferroni over converters) "
                 f"from {resamples} paired bootstrap resamples. Both models see graph size, opset, operator types and "
                 "which operators occur together; only the second sees directed pairs. Pairs win when the gain's "
                 f"interval lies above 0, the pair model's above 0.5 and the gain is at least {classify.MIN_GAIN}."
                 + (" Left out: " + "; ".join(skipped) + "." if skipped else ""))


def section(cases: list[CaseRecord], tests: dict[str, list[association.Association]], folders: list[Path],
            seed: int, permutations: int, resamples: int) -> Section:
    marginal = association.ranked(tests["edge"] + tests["ngram3"])
    beyond, onnx_beyond = tests["beyond"], tests["onnx-beyond"]
    measure = sequences.unseen_share(cases, permutations, seed)
    results, skipped = classify.compare(cases, seed, resamples)
    unseen_table, unseen_figure = _unseen_table(measure)
    cores_table, kinds = _cores_table(folders)
    tables = [
        _classifier_table(results, skipped, resamples),
        result_table("Sequences beyond their operators (source graph)", beyond, "sequences"),
        result_table("ONNX operator pairs beyond their operators (converted graph)", onnx_beyond, "sequences"),
        result_table("Sequences, marginal (source graph: pairs and 3-grams)", marginal, "sequences"),
        unseen_table, cores_table]
    figures = [_classifier_figure(results), volcano("sequences-beyond", "Sequences beyond their operators", beyond),
               unseen_figure]
    verdict, sentence = _sentence(results, skipped, _context(beyond, onnx_beyond, measure, kinds))
    failing = sum(c.failed for c in cases)
    basis = (f"{len(cases)} valid cases ({failing} failing) over {len({c.converter for c in cases})} converters; "
             f"{len(marginal)} marginal and {len(beyond)} conditional sequence tests; classifiers on "
             f"{len(results)} converters; {sum(kinds.values())} bucket cores.")
    findings = ([f"beyond: {t.converter}: {t.feature}" for t in beyond + onnx_beyond if t.significant] +
                [f"classifier: {r.converter}" for r in results if r.sequences_win])
    notes = ["'Beyond their operators' compares, among the cases holding every operator of a sequence, those with "
             "the sequence against those without it, so a sequence that only carries a failing operator does not count.",
             "The marginal table is what a plain count sees; it is dominated by sequences holding a failing operator."]
    return Section("sequences", "3. Operator sequences", QUESTION, verdict, sentence, basis, tables, figures, notes, findings)
