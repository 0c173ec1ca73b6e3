# Every target sets up its own environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
# make test runs the suite on this many pytest-xdist workers, one test module each at a time
# (a module's shared search runs once); many tests spend much of their time waiting on
# processes they started (Ray, a search, a server), which the other worker uses.
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: search train test lint bench clean fashion-mnist

$(STAMP): pyproject.toml scripts/install-torch.sh
	$(PYTHON) -m venv $(VENV)
	bash scripts/install-torch.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## search: search the bundled default space on the bundled digits
search: $(STAMP)
	$(BIN)/nas search

## train: train the bundled ResNet-20 candidate on the bundled digits data
train: $(STAMP)
	$(BIN)/nas train --config search_spaces/resnet20.yaml

## fashion-mnist: install the official Fashion-MNIST offline (Debian's dataset-fashion-mnist)
# nas finds it in /usr/share/datasets/fashion-mnist; without root this prints the command.
fashion-mnist:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then \
		echo "fashion-mnist: installed in /usr/share/datasets/fashion-mnist"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -qq dataset-fashion-mnist >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; \
		test -d /usr/share/datasets/fashion-mnist && echo "fashion-mnist: installed"; \
	else \
		echo "fashion-mnist: run as root: apt-get install dataset-fashion-mnist" >&2; exit 1; \
	fi

## test: run the whole test suite (installs Chromium and PostgreSQL for their tests if it can)
# The Debian packages install while pip fills .venv: on a fresh machine that halves the set-up.
test:
	@bash scripts/install-test-packages.sh & packages=$$!; \
	$(MAKE) --no-print-directory $(STAMP); venv=$$?; \
	wait $$packages; [ $$venv = 0 ] || exit $$venv
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

lint: $(STAMP)
	$(BIN)/ruff check nas tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/search_overhead.py
	$(BIN)/python benchmarks/search_startup.py
	$(BIN)/python benchmarks/startup_order.py
	$(BIN)/python benchmarks/pruning.py
	$(BIN)/python benchmarks/depth_cost.py
	$(BIN)/python benchmarks/speed_stability.py
	$(BIN)/python benchmarks/load_search.py

clean:
	rm -rf $(VENV)
