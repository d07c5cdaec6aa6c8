# Two commands run the course:
#   make lab    set up (first time) and open your workbook (exercise versions) in JupyterLab
#   make test   set up (first time) and run the linter, unit tests, every notebook (fast mode)
#               and the course site's browser test
# and one builds the course site (every notebook with the outputs of a normal-mode run):
#   make site   then open _site/index.html

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Per-cell limit for notebooks in the test suite (fast mode cells take seconds).
CELL_TIMEOUT ?= 300

.PHONY: lab test lint unit notebooks exercises site site-test lock clean git-filter

# Extra JupyterLab options, e.g. make lab LAB_ARGS="--no-browser --port 8899"
LAB_ARGS ?=
# Jupyter refuses to run as root unless told (containers often run as root).
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

# Your own copies of the notebooks, exercises blank, in workbook/ (made once, never
# overwritten); JupyterLab opens there, and the worked solutions stay in notebooks/.
lab: $(STAMP) git-filter
	$(BIN)/course workbook --out workbook
	$(BIN)/jupyter lab $(ROOT_ARGS) --LabApp.default_url=/lab/tree/workbook $(LAB_ARGS)

test: git-filter lint unit notebooks exercises site-test

# In a git checkout, store notebooks clean whatever JupyterLab saved into them (metadata,
# outputs): the clean filter that .gitattributes names, as nbstripout installs its own.
git-filter: $(STAMP)
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git config filter.course-notebook.clean \
			"'$(abspath $(BIN))/python' tools/clean_notebooks.py --stdin"; fi

lint: $(STAMP)
	$(BIN)/ruff check .

# Two test processes (pytest-xdist): the grading tests run whole notebooks, so they are
# spread over both cores. UNIT_ARGS="-n 0" runs them in one process.
UNIT_ARGS ?= -n 2 --dist worksteal

unit: $(STAMP)
	$(BIN)/pytest -q $(UNIT_ARGS) --durations=10 -m "not exercises" tests --ignore=tests/site

# Two notebooks at a time (pytest-xdist; --dist loadfile keeps each notebook's cells in one
# kernel, in order): while one kernel starts, imports or plots on one core, the other trains.
# NOTEBOOK_ARGS="-n 0" runs them one after another.
NOTEBOOK_ARGS ?= -n 2 --dist loadfile

notebooks: $(STAMP)
	COURSE_FAST=1 $(BIN)/pytest -q -p no:cacheprovider --nbval-lax $(NOTEBOOK_ARGS) \
		--nbval-cell-timeout=$(CELL_TIMEOUT) --nbval-kernel-startup-timeout=120 \
		--durations=0 notebooks

# Every chapter notebook's exercises, as the autograder sees them: assigned, graded with the
# solutions (full marks), then with the blank answers (every question loses points). A notebook
# check, run after the notebooks themselves (tests/test_grading.py, marked "exercises").
exercises: $(STAMP)
	$(BIN)/pytest -q $(UNIT_ARGS) -p no:cacheprovider --durations=5 -m exercises tests/test_grading.py

# The course site, from the executed copies in site/executed/ (refresh them with
# python benchmarks/notebooks.py --normal --keep site/executed: about 35 minutes on a 2-core CPU).
site: $(STAMP)
	$(BIN)/python tools/build_site.py --out _site

# The site in headless Chromium: formulas, images, animations, links. Skipped, with one line
# saying so, where no Chromium is installed (apt install chromium).
site-test: site
	COURSE_SITE=_site $(BIN)/pytest -q -p no:cacheprovider -rs tests/site

# The virtual environment, rebuilt when the requirements change. On the Python CI uses (3.11)
# every package is pinned by requirements-lock.txt; elsewhere the ranges in requirements.txt
# apply.
$(STAMP): requirements.txt requirements-lock.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), \
		"the course needs Python 3.10 or newer, found " + sys.version.split()[0] + \
		": run make PYTHON=python3.12 (or another 3.10+ interpreter)"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -c requirements-lock.txt
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-pin requirements-lock.txt from the current environment (after changing requirements.txt).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^pip==' \
		| sed 's/$$/ ; python_version == "3.11"/' > requirements-lock.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache _site
