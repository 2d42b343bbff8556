# clinical-backbone: two commands matter, `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := events projections services

.PHONY: setup run test lint down infra-up

setup:
	bash infra/setup.sh

infra-up: setup
	$(BIN)/backbone infra up

run: setup
	$(BIN)/backbone up
	$(BIN)/backbone status
	@echo "logs: .data/logs/ (JSON lines), broker log: .data/kafka/broker.log; stop with: make down"

test: infra-up
	$(BIN)/pytest -q tests

lint: setup
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests
	$(BIN)/mypy $(PACKAGES)

down:
	@if [ -x $(BIN)/backbone ]; then $(BIN)/backbone down; else echo "nothing to stop (no .venv)"; fi
