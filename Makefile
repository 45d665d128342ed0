# Two commands on a fresh machine (see README.md):
#   make new DEST=../my-service   generate a project from this checkout (asks the questions)
#   make test                     install the pinned test tools and run the whole suite
# Copier options go in COPIER_ARGS, e.g. make new COPIER_ARGS="--defaults --data language=go".
DEST ?= ../my-service
COPIER_ARGS ?=
PYTEST_ARGS ?=

.PHONY: new test lint docs bench

# Records this checkout's absolute path and commit, so `copier update` works in the project;
# renders the newest release tag (REF=HEAD: this commit; DRAFT=1 with it: uncommitted changes too).
new:
	@scripts/bootstrap render
	@.venv/bin/python scripts/new.py "$(DEST)" $(COPIER_ARGS)

test:
	scripts/bootstrap dev
	PATH="$(CURDIR)/.tools/bin:$(CURDIR)/.venv/bin:$$PATH" .venv/bin/pytest -n auto $(PYTEST_ARGS)

lint:
	scripts/bootstrap dev
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

docs:
	scripts/bootstrap dev
	.venv/bin/mkdocs build --strict

bench:
	scripts/bootstrap dev
	.venv/bin/python benchmarks/render.py
	.venv/bin/python benchmarks/update.py
	.venv/bin/python benchmarks/fleet.py
	.venv/bin/python benchmarks/services.py
