"""The ICSME 2022 study's published headline findings, as the study report sets them beside ours.

Openja, Nikanjam, Haj Yahmed, Khomh, Jiang: "An Empirical Study of Challenges in Converting Deep
Learning Models", ICSME 2022 (arXiv:2206.14322). The project records none of the paper's numbers
(see /work/shared), so each finding is paraphrased from the paper's abstract, qualitatively.
"""

from __future__ import annotations

from dataclasses import dataclass

CITATION = ("M. Openja, A. Nikanjam, A. H. Yahmed, F. Khomh, Z. M. Jiang. An Empirical Study of Challenges in "
            "Converting Deep Learning Models. ICSME 2022. arXiv:2206.14322")

SETUP = ("Keras and PyTorch; LeNet-5, ResNet-18, VGG-16, LSTM and GRU trained on three popular datasets; converted "
         "to ONNX and CoreML and run in those formats' runtimes.")


@dataclass(frozen=True)
class Finding:
    key: str  # which of our figures answers it
    paper: str  # paraphrased from the abstract; qualitative, no numbers


FINDINGS = (
    Finding("accuracy", "Converted models predict with accuracy at the same level as the originals."),
    Finding("performance", "Time cost and memory of converted models were measured; the authors warn that converted "
                           "models may run slowly (the abstract gives no direction for memory)."),
    Finding("size", "Models are smaller after conversion."),
    Finding("robustness", "Converted models are generally as robust to adversarial attacks as the originals."),
    Finding("coreml", "CoreML models are more vulnerable to adversarial attacks than ONNX models."),
)
