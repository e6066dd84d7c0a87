# Set-up and everyday commands. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# A bare `torch` requirement would pull a multi-GB CUDA build: install the CPU build first.
TORCH_CPU ?= torch==2.13.0

.PHONY: venv demo test bench-deps paper-data lint mutation clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_CPU)"
	$(PIP) install -q -e ".[test,distributed]"
	touch $@

venv: $(VENV)/.installed

## Inpaint a sample painting-like image shipped with scikit-image, using the shipped v128 weights.
demo: venv
	mkdir -p demo_out
	$(VENV)/bin/inpaint demo -o demo_out --force

## Run the test suite (CPU only, no network).
test: venv
	$(PY) -m pytest -q

## Extra packages for the peer comparisons in benchmarks/ (OpenCV contrib xphoto, matplotlib).
bench-deps: venv
	$(PIP) install -q -e ".[bench]"

## Photo corpus of the paper-2 benchmark (`benchmarks/vae_tables.py --images data/paper/images`):
## the photographs that Debian packages ship as desktop backgrounds, fetched with `apt-get
## download` and unpacked with `dpkg -x` (nothing installed) into $(PAPER_DATA) (git-ignored), with
## each package's version and licences in $(PAPER_DATA)/PROVENANCE.md. About 250 MB from the
## Debian mirror; needs a Debian-based system. Never run by `inpaint` itself or by CI.
PAPER_DATA ?= data/paper
paper-data:
	$(PYTHON) benchmarks/paper_data.py --out $(PAPER_DATA)

## Mutation testing of the algorithmic core (mrf/ search, energies, inference, composition;
## descriptor/ IR pooling, extraction, field; see [tool.mutmut] in pyproject.toml) against the
## fast tests; prints the surviving mutants.
## CPU-heavy (hours on 2 cores): runs niced. Narrow it with MUTANTS, e.g.
## `make mutation MUTANTS='mrf.inference*'`. mutmut is installed here only, not in the test extra.
MUTMUT   ?= mutmut==3.8.1
MUTANTS  ?=
MUTATION_JOBS ?= 2
mutation: venv
	$(PIP) install -q "$(MUTMUT)"
	rm -rf mutants
	nice -n 10 $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS) > mutation.log 2>&1 || (tail -20 mutation.log; exit 1)
	$(PY) benchmarks/mutation_summary.py

lint: venv
	$(PIP) install -q ruff
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) demo_out build *.egg-info mutants mutation.log
