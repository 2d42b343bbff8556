# clinical-backbone: two commands matter, `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := events projections services

.PHONY: setup run test lint down infra-up bench

setup:
	bash infra/setup.sh

infra-up: setup
	$(BIN)/backbone infra up

DEMO_PATIENTS ?= 200
# `make run PROJECTION_INSTANCES=2`: projection processes sharing each consumer group.
PROJECTION_INSTANCES ?= 1

run: setup
	BACKBONE_PROJECTION_INSTANCES=$(PROJECTION_INSTANCES) $(BIN)/backbone up
	$(BIN)/backbone demo --patients $(DEMO_PATIENTS)
	$(BIN)/backbone status
	@echo ""
	@echo "API:         https://127.0.0.1:8000   (docs: https://127.0.0.1:8000/docs; CA: .data/tls/ca.pem)"
	@echo "log in:      users named after their role; passwords in .data/demo/credentials.json"
	@echo "walkthrough: README.md, 'Try it'; logs in .data/logs/; stop everything with: make down"

test: infra-up
	$(BIN)/pytest -q tests

lint: setup
	$(BIN)/ruff check $(PACKAGES) bench tests
	$(BIN)/ruff format --check $(PACKAGES) bench tests
	$(BIN)/mypy $(PACKAGES) bench

# Every scenario against its raw baseline; prints the table, writes bench/results.json.
bench: infra-up
	$(BIN)/python -m bench

down:
	@if [ -x $(BIN)/backbone ]; then $(BIN)/backbone down; else echo "nothing to stop (no .venv)"; fi
