# Two commands do all the set-up (see README.md):
#   make demo   — play a synthetic town through the engine (no Kafka needed; ~10 s)
#   make test   — lint, type-check, check the layers and run the whole test suite; the integration tests start
#                 a real single-node Kafka broker themselves (deploy/local/kafka: Java + Maven)
#                 and a real PostgreSQL server (deploy/local/postgres: Debian's postgresql)
# Both create their own virtual environment in .venv from pyproject.toml + constraints.txt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-stress stress-bench lint typecheck layers unit integration bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fengqiao demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The layers (schemas <- engine <- consumers, and the rooms of consumers/): pyproject.toml.
layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -m "unit" -q

integration: $(STAMP)
	FENGQIAO_REQUIRE_KAFKA=1 FENGQIAO_REQUIRE_POSTGRES=1 $(BIN)/pytest -m "integration" -q

# FENGQIAO_REQUIRE_KAFKA=1 / FENGQIAO_REQUIRE_POSTGRES=1: a broker or a PostgreSQL server that
# cannot be started fails the run instead of skipping.
test: $(STAMP) lint typecheck layers
	FENGQIAO_REQUIRE_KAFKA=1 FENGQIAO_REQUIRE_POSTGRES=1 $(BIN)/pytest -q

# The integration tests with a CPU burner per core alongside (what shook out the hangs of a
# loaded CI machine); and the Kafka benchmark's smoke test 20 times in a row under load.
test-stress: $(STAMP)
	FENGQIAO_REQUIRE_KAFKA=1 $(BIN)/python -m tests.stress -- $(BIN)/pytest -m "integration" -q

stress-bench: $(STAMP)
	FENGQIAO_REQUIRE_KAFKA=1 $(BIN)/python -m tests.stress --repeat 20 -- \
		$(BIN)/pytest -q -p no:cacheprovider tests/integration/test_bench.py -k kafka_tiny

bench: $(STAMP)
	$(BIN)/fengqiao bench core

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
