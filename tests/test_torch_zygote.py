"""The fork server's warm-up: it runs real cases, and a case that kills or hangs a process
never reaches the fork server itself."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _in_fresh_process(code: str, warm_cases: int = 0) -> str:
    """Run `code` after importing the zygote module in a new interpreter (the module warms up
    at import, and it sets thread counts and freezes the heap: not for the test process)."""
    env = {**os.environ, "FUZZCONV_WARM_CASES": str(warm_cases), "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = "import fuzzconv.torch_zygote as zygote\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_trial_leaves_out_the_cases_that_kill_or_hang_a_process():
    out = _in_fresh_process("""
        import os, time
        cases = zygote.warm_up_cases(6)
        deadly = {cases[1].id: "abort", cases[2].id: "abort", cases[4].id: "hang"}
        ran_here = []

        def run(case):
            if deadly.get(case.id) == "abort":
                os.abort()
            if deadly.get(case.id) == "hang":
                time.sleep(60)
            ran_here.append(case.id)

        safe = zygote.survived(cases, run, limit_s=2)
        print([cases.index(case) for case in safe])
        print("parent alive, ran here:", len(ran_here))
    """)
    assert out.splitlines() == ["[0, 3, 5]", "parent alive, ran here: 0"]


def test_warm_up_runs_real_cases_and_the_fork_server_still_forks_clean_workers():
    out = _in_fresh_process("""
        import os, threading
        cases = zygote.warm_up_cases(4)
        threads = len(os.listdir("/proc/self/task"))
        print(len({op for case in cases for op in case.graph.op_sequence}) > 8)
        print(zygote.warm_up(cases))
        print(threading.active_count(), len(os.listdir("/proc/self/task")) == threads)
    """)
    lines = out.splitlines()
    assert lines[0] == "True"  # guided: the cases spread over many operators
    assert lines[1] == "4"  # all four ran in this process after the trial survived them
    assert lines[2] == "1 True"  # no thread started, Python's or native: forking stays safe


def test_warm_up_cases_are_the_same_every_time():
    first = _in_fresh_process("print([case.id for case in zygote.warm_up_cases(5)])")
    again = _in_fresh_process("print([case.id for case in zygote.warm_up_cases(5)])")
    assert first == again


def test_fork_server_preloads_the_dynamo_exporter_without_starting_threads():
    """What the first dynamo export would import is loaded in the fork server; neither that nor
    the warm-up cases start a thread (forking from it requires none), nor import TensorFlow."""
    out = _in_fresh_process("""
        import os, sys, threading
        print(all(name in sys.modules for name in ("torch._dynamo", "torch.export", "onnxscript", "sympy")))
        print(zygote.import_dynamo_modules() == len(zygote.DYNAMO_MODULES))
        print(threading.active_count(), len(os.listdir("/proc/self/task")))
        print(any(name.split(".")[0] in ("tensorflow", "keras", "tf2onnx") for name in sys.modules))
    """, warm_cases=2)
    bare = subprocess.run([sys.executable, "-c", "import os, onnx, onnxruntime, torch\n"
                           "print(len(os.listdir('/proc/self/task')))"],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120)
    lines = out.splitlines()
    assert lines[:2] == ["True", "True"]
    assert lines[2] == f"1 {bare.stdout.strip()}"  # no thread beyond what importing torch itself leaves
    assert lines[3] == "False"  # a torch worker never imports TensorFlow
