# Every README command is a target here; `make help` lists them.
.DEFAULT_GOAL := help
UV ?= uv
PY := $(UV) run --frozen

.PHONY: help setup run test lint fmt unit bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## install uv if missing and the locked Python dependencies
	@command -v $(UV) >/dev/null 2>&1 || pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: setup ## the gateway on :8080 with a demo key; starts the bundled vLLM emulator if no vLLM answers on :8000
	@$(PY) vlgw dev

test: setup ## lint, type-check and the whole test suite (installs redis-server and validators if missing)
	@bash scripts/install-test-deps.sh
	@$(MAKE) --no-print-directory lint
	@$(PY) pytest

lint: ## ruff format check, ruff lint, mypy --strict on gateway/
	@$(PY) ruff format --check gateway tests bench
	@$(PY) ruff check gateway tests bench
	@$(PY) mypy gateway

fmt: setup ## format and auto-fix (ruff)
	@$(PY) ruff format gateway tests bench
	@$(PY) ruff check --fix gateway tests bench

unit: setup ## the fast unit tests only
	@$(PY) pytest tests/unit -q

bench: setup ## the benchmarks (bounded, loopback only); see docs/benchmarks.md
	@$(PY) python bench/overhead.py

clean: ## remove caches
	rm -rf .pytest_cache .mypy_cache .ruff_cache
