# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of torch lies on this machine's disk; a bare `torch` pulls a CUDA build.
TORCH  ?= torch==2.13.0
TIME   ?= 10m
OUT    ?= .
ARGS   ?=
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.fuzzconv-installed

export TF_CPP_MIN_LOG_LEVEL = 3

.PHONY: install run test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,ray]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/fuzzconv fuzz --time $(TIME) --out $(OUT) $(ARGS)

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check fuzzconv tests benchmarks
	$(BIN)/mypy fuzzconv

BENCH_DIR ?= .bench/scratch/campaign

bench: install
	$(BIN)/python benchmarks/throughput.py 60
	rm -rf $(BENCH_DIR)
	$(BIN)/fuzzconv fuzz --time 3m --seed 20261122 --out $(BENCH_DIR) --minimize-budget 0 --replays 1 > /dev/null
	$(BIN)/python benchmarks/minimize.py $(BENCH_DIR)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# A second virtualenv that shares this one's packages except the named releases, to try an upgrade:
#   make env-candidate SPEC="onnxruntime==1.30.0"   then   fuzzconv recheck --python .venv-candidate/bin/python crashes/
CANDIDATE ?= .venv-candidate
SPEC      ?=

.PHONY: env-candidate
env-candidate: install
	@test -n "$(SPEC)" || { echo 'usage: make env-candidate SPEC="onnxruntime==1.30.0 [tf2onnx==1.16.1]" [CANDIDATE=.venv-candidate]'; exit 2; }
	$(BIN)/python -m fuzzconv.candidate_env --env $(CANDIDATE) $(SPEC)
