"""NNSmith 0.1.0's `nnsmith.fuzz` loop (torch -> ONNX -> onnxruntime), mended to run on the
torch and onnx that fuzzconv uses. Run by `nnsmith_baseline.py` with NNSmith on PYTHONPATH;
its arguments are NNSmith's own hydra overrides.

Two mends, applied at run time; NNSmith's installed files are not edited:
- torch.onnx.export now defaults to the dynamo exporter; NNSmith 0.1.0 was written for the
  TorchScript exporter, and with the dynamo one its operator probe finds no operator at all.
- onnx removed the private `onnx._serialize` that NNSmith's onnxruntime backend calls.
Without either, NNSmith generates nothing. It prints `FUZZ_LOOP_STARTED` when its loop begins,
`FUZZ_GRAPH_OPS n` for each graph it generates (its operators, inputs and constants not
counted, as fuzzconv counts them), and a `Timing:` line (its own) for every case it completes.
"""

import sys

import onnx
import torch.onnx

if not hasattr(onnx, "_serialize"):
    onnx._serialize = lambda proto: proto.SerializeToString()  # type: ignore[attr-defined]

_export = torch.onnx.export


def _torchscript_export(*args, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("dynamo", False)
    return _export(*args, **kwargs)


torch.onnx.export = _torchscript_export

from nnsmith.cli import fuzz  # noqa: E402

_run = fuzz.FuzzingLoop.run


def _announced_run(self):  # type: ignore[no-untyped-def]
    print("FUZZ_LOOP_STARTED", flush=True)
    return _run(self)


fuzz.FuzzingLoop.run = _announced_run
_model_gen = fuzz.model_gen


def _counted_model_gen(*args, **kwargs):  # type: ignore[no-untyped-def]
    generator = _model_gen(*args, **kwargs)
    make_concrete = generator.make_concrete

    def counted():  # type: ignore[no-untyped-def]
        graph = make_concrete()
        print(f"FUZZ_GRAPH_OPS {graph.n_compute_inst()}", flush=True)
        return graph

    generator.make_concrete = counted
    return generator


fuzz.model_gen = _counted_model_gen

if __name__ == "__main__":
    sys.exit(fuzz.main())
