# ktrdr: every target installs what it needs into .venv first (pip, so the CPU torch wheel on this
# machine is used; uv and poetry would download a multi-GB CUDA build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest
export KTRDR_DATA_DIR ?= $(CURDIR)/data
export KTRDR_MODELS_DIR ?= $(CURDIR)/models

# $(call require,FILE,TARGET): fail with "not yet built" until the feature behind TARGET exists.
require = test -f $(1) || { echo "make $(2): not yet built ($(1) does not exist)"; exit 1; }

.PHONY: install promtool train test test-unit test-integration test-e2e-training test-docs quality bench bench-compare \
        compare-paths rollout-rehearsal sample clean

install: $(STAMP) promtool

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,sample,ray]'
	@touch $(STAMP)

# promtool checks the shipped alert rules and the services' /metrics in the tests: the binary of
# Debian's prometheus package, unpacked into .venv/bin (nothing installed system-wide).
promtool: $(BIN)/promtool

$(BIN)/promtool:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	scripts/install-promtool.sh $(BIN)

sample: install
	$(BIN)/ktrdr data sample

train: sample
	@$(call require,ktrdr/cli/train.py,train)
	$(BIN)/ktrdr train strategies/neuro_mean_reversion.yaml --start 2017-01-01 --end 2017-12-31

# Every test that exists; pytest's exit 5 (nothing collected) is a failure like any other.
test: install
	$(PYTEST) tests -q

test-unit: install
	$(PYTEST) tests/unit -q

test-integration: install
	$(PYTEST) tests/integration -q

test-e2e-training: install
	$(PYTEST) tests/e2e -q

# Every example in README.md and docs/ runs, and every file they point to exists.
test-docs: install
	$(PYTEST) tests/docs -q

quality: install
	$(BIN)/ruff check ktrdr tests scripts
	$(BIN)/ruff format --check ktrdr tests scripts
	$(BIN)/mypy

bench: install
	@$(call require,scripts/bench/run.py,bench)
	$(BIN)/python scripts/bench/run.py

# The regression guard: every benchmark on a worktree of BASE and on this tree, alternating; fails
# when a figure is more than 10% worse beyond its spread. Example: make bench-compare BASE=HEAD~1
bench-compare: install
	@test -n "$(BASE)" || { echo "make bench-compare: give BASE=<git ref>, e.g. BASE=HEAD~1"; exit 2; }
	$(BIN)/python scripts/bench/compare.py $(BASE) $(BENCH)

# The rollout rehearsal: backend and host on loopback, 10/50/100% with shadows, each injected
# fault, and a rollback without a restart. Example: make rollout-rehearsal ARGS="--runs 30"
rollout-rehearsal: install
	scripts/rollout-rehearsal.sh $(ARGS)

compare-paths: install
	@$(call require,scripts/compare-training-paths.py,compare-paths)
	$(BIN)/python scripts/compare-training-paths.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench-results.json
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
