# Every target creates and uses its venv by itself: a fresh machine needs only Python 3.11 (3.11 and 3.13 are
# supported). PYTHON picks the interpreter; each has its own venv, side by side: .venv for the default one's version,
# .venv-3.13 for PYTHON=python3.13 (or a path to it).
DEFAULT_PYTHON := $(shell command -v python3.11 || command -v python3)
PYTHON ?= $(DEFAULT_PYTHON)
python_version = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ifeq ($(PYTHON),$(DEFAULT_PYTHON))
VENV ?= .venv
else
PYTHON_VERSION := $(call python_version,$(PYTHON))
ifeq ($(PYTHON_VERSION),)
$(error PYTHON=$(PYTHON) does not run; give an interpreter that does, e.g. PYTHON=/root/.pyenv/versions/3.13.0/bin/python3.13)
endif
VENV ?= $(if $(filter $(PYTHON_VERSION),$(call python_version,$(DEFAULT_PYTHON))),.venv,.venv-$(PYTHON_VERSION))
endif
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

WORKLOAD ?= mixed
USERS ?= 20
SPAWN_RATE ?= 10
RUN_TIME ?= 30s
WORKERS ?= 2
HOST ?=
ARGS ?=
RUN ?=
GATES ?=
WEB_PORT ?= 8089
WEB ?=

RUN_DIR := reports/runs/$(shell date -u +%Y%m%dT%H%M%SZ)-$(WORKLOAD)
# Without HOST, the embedded reference server is started around the command and stopped after it,
# sized so that it is not what limits a run (make server keeps the real service's defaults).
SERVER_ARGS ?= --queue-size 500000 --flush-batch 1000 --flush-period 0.5
TARGET := $(if $(HOST),env LOCUST_HOST=$(HOST),$(PY) -m reference_server.around $(SERVER_ARGS) --)
# It acknowledges faster than SQLite stores: the delivery audit gets time to see the backlog stored.
# (Not with ARGS="--no-audit --no-freshness": nothing would wait, and the option would be refused.)
EMBEDDED_AUDIT := $(if $(or $(HOST),$(and $(filter --no-audit,$(ARGS)),$(filter --no-freshness,$(ARGS)))),,--audit-timeout 120)
LOCUST_RUN = $(BIN)/locust -f locustfiles/$(WORKLOAD).py $(EMBEDDED_AUDIT)
# After a run: a run folder left empty (the test never started) is removed; a failed run's last line gives
# Locust's exit code in words, since make itself exits 2 whenever a command fails, whatever the code.
EXIT_CODES := 1 failures, a target that is no LogService or a failed action; 2 a bad option; 3 logs lost; 4 delivery unknown (unsettled, incomplete, interrupted, or the audit could not count)
# A SIGINT to make's process group (Ctrl-C, timeout -s INT, a CI cancel) reaches the recipe's shell too, which would
# quit as soon as the run's command returns, before finish_run: the shell ignores it (the command, signalled in the
# same group, stops and audits by itself), so the run's last lines and its exit code are written. make itself then
# exits by the signal (GNU make's rule: 130, whatever the command's code).
KEEP_ON_INT := trap : INT;
define finish_run
rmdir $(1) 2>/dev/null && echo "no run folder: the test never started" || echo "run folder: $(1)"; \
	[ $$status -eq 0 ] || echo "locust exited with code $$status ($(EXIT_CODES))"; exit $$status
endef

.PHONY: help options venv proto test test-fast promtool test-browser lint demo capacity history prometheus-check deploy-check server replicas web headless report bench soak distributed clean

help:
	@echo "make demo        set up, start the reference server, run a short headless mixed load, write a report"
	@echo "make test        the whole test suite (PYTEST_ARGS=, TEST_WORKERS=; PYTHON=/path/to/python3.13: in .venv-3.13)"
	@echo "make test-fast   the tests not marked slow, for everyday work (under a minute)"
	@echo "make lint        ruff check, ruff format --check, mypy"
	@echo "make test-browser the web UI in a real headless Chromium (installs chromium, chromium-driver, selenium)"
	@echo "make server      run the reference log service on 127.0.0.1:50051"
	@echo "make replicas    N=3 reference servers on 127.0.0.1:50051.. sharing one store (a replicated service)"
	@echo "make web         Locust web UI on http://127.0.0.1:$(WEB_PORT) (WORKLOAD=, HOST=)"
	@echo "make headless    USERS= SPAWN_RATE= RUN_TIME= WORKLOAD=single|batch|mixed HOST= ARGS="
	@echo "make report      report the newest run under reports/runs (RUN=, GATES=)"
	@echo "make history     every run under reports/runs against the ones before it (HISTORY_ARGS=)"
	@echo "make distributed WORKERS= WORKLOAD= HOST= [WEB=1] (a master and WORKERS worker processes here)"
	@echo "make capacity    WORKLOAD= HOST= ARGS= : the highest rate the service sustains, and what breaks above it"
	@echo "make deploy-check does a deploy under load lose logs? a restart 10 s into 30 s of load, drop-queue and flush"
	@echo "make bench       CPU per call vs a bare grpc.aio loop, server and report throughput"
	@echo "make soak        10 minutes against the reference server, RSS at start, middle, end"
	@echo "make proto       regenerate grpc_user/pb from proto/log_service.proto"
	@echo "make options     Locust's --help with the suite's options in their groups (ARGS=\"...\": check a command line)"

# make options = locust --help (and a command line's verdict): Locust prints its help before it imports a locustfile
# (locustio/locust#2917), so the venv gets grpc_user_locust_help.pth, which imports the plugin first for `locust --help`.
options: $(STAMP)
	@$(PY) -m grpc_user.locust.settings $(ARGS)

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt grpc_user/locust/settings/locust_help.pth
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -c "import shutil, sysconfig; shutil.copy('grpc_user/locust/settings/locust_help.pth', \
		sysconfig.get_paths()['purelib'] + '/grpc_user_locust_help.pth')"
	touch $(STAMP)

proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Igrpc_user/pb=proto --python_out=. --pyi_out=. --grpc_python_out=. \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=. proto/log_service.proto

# promtool (Debian's prometheus package, installed here when missing, which needs root) checks /metrics in the tests.
# The tests run in TEST_WORKERS processes (pytest-xdist): most of them wait on real servers and Locust runs rather
# than compute. On 2 cores, with the longest tests started first (tests/conftest.py): 4 took 4m09s with the cores 62%
# idle (180 CPU-s over 970 s of tests), 6 2m53s (48% idle), and 6 beside two busy loops 3m14s, where two tests that
# read a rate off the workers' 3 s reports and a drop's cause failed until they read the server's own counts and
# allowed a call that outlived a start. TEST_WORKERS=0 runs them in this one process.
# The suite's hundreds of processes (Locust, reference servers, test processes) import the same modules: with
# PYTHONDONTWRITEBYTECODE set each of them compiled the suite's sources again (0.12 CPU-s per Locust process, 2.4 per
# test process's collection), so the tests run with it unset and Python caches the bytecode in __pycache__.
TEST_WORKERS ?= 6
PYTEST := PYTHONDONTWRITEBYTECODE= $(PY) -m pytest
test: $(STAMP) promtool
	$(PYTEST) -n $(TEST_WORKERS) --dist worksteal --ignore=tests/browser $(PYTEST_ARGS)

# Everyday work: the tests not marked slow (no Locust run, no process of several seconds), in under a minute.
test-fast: $(STAMP)
	$(PYTEST) -n $(TEST_WORKERS) --dist worksteal -m "not slow" --ignore=tests/browser $(PYTEST_ARGS)

promtool:
	@command -v promtool >/dev/null || { \
		echo "installing Debian's prometheus (its promtool checks /metrics)"; \
		apt-get -o DPkg::Lock::Timeout=600 update -qq && \
		apt-get -o DPkg::Lock::Timeout=600 install -y -qq prometheus >/dev/null || { \
		echo "make test: could not install prometheus (as root: apt-get install prometheus)"; exit 2; }; }

# The web UI in a real headless Chromium: Debian's chromium and chromium-driver (installed here when missing,
# which needs root), selenium from PyPI into the venv.
test-browser: $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "installing Debian's chromium and chromium-driver"; \
		apt-get -o DPkg::Lock::Timeout=600 update -qq && \
		apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium chromium-driver >/dev/null || { \
		echo "make test-browser: could not install chromium and chromium-driver (as root: apt-get install chromium chromium-driver)"; exit 2; }; }
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,browser]'
	$(PY) -m pytest tests/browser $(PYTEST_ARGS)

# ruff's lint rules and its formatter's check on every Python file; mypy on grpc_user, reference_server and reports
# (pyproject.toml's [tool.mypy]: the client package strictly, grpc_user/locust/ and the rest with check_untyped_defs).
LINT_PATHS := grpc_user reference_server reports locustfiles tests benchmarks
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

server: $(STAMP)
	$(PY) -m reference_server --host 127.0.0.1 --port 50051 $(ARGS)

# N reference servers on 127.0.0.1:50051.. over one SQLite store; prints the --host that lists them.
N ?= 3
replicas: $(STAMP)
	$(PY) -m reference_server.replicas $(N) $(ARGS)

web: $(STAMP)
	mkdir -p $(RUN_DIR)
	@$(KEEP_ON_INT) status=0; $(TARGET) $(LOCUST_RUN) --web-host 127.0.0.1 --web-port $(WEB_PORT) \
		--csv $(RUN_DIR)/locust --csv-full-history --html $(RUN_DIR)/locust.html $(ARGS) || status=$$?; \
	$(call finish_run,$(RUN_DIR))

headless: $(STAMP)
	mkdir -p $(RUN_DIR)
	@$(KEEP_ON_INT) status=0; $(TARGET) $(LOCUST_RUN) --headless -u $(USERS) -r $(SPAWN_RATE) -t $(RUN_TIME) \
		--csv $(RUN_DIR)/locust --csv-full-history --html $(RUN_DIR)/locust.html $(ARGS) || status=$$?; \
	$(call finish_run,$(RUN_DIR))

# Every run under reports/runs against the ones before it (HISTORY_ARGS="--last 20 --max-regression-pct 10").
HISTORY_ARGS ?=
history: $(STAMP)
	$(PY) -m reports history reports/runs $(HISTORY_ARGS)

report: $(STAMP)
	$(PY) -m reports $(if $(RUN),$(RUN),$$(ls -d reports/runs/*/ | sort | tail -n 1)) $(GATES)

# The report is written even when the run failed; the demo then exits with the run's code. Its load is paced
# (DEMO_RPS calls/s, about 20 logs a call in the mixed workload) so that the embedded store keeps up: the audit
# finds every log stored at once instead of waiting longer than the run (unpaced, 20 users acknowledged 309,014
# logs in 20 s and SQLite took 20 to 74 s to store them). Its freshness probe samples all the time: at the default
# --freshness-query-share 1.5 a window of samples is paid for ~25 s into a run at 100 calls/s, after the demo.
DEMO_RPS ?= 100
demo: $(STAMP)
	@$(KEEP_ON_INT) status=0; \
	$(MAKE) --no-print-directory headless WORKLOAD=mixed USERS=20 SPAWN_RATE=10 RUN_TIME=20s HOST= RUN_DIR=$(RUN_DIR) \
		ARGS="--target-rps $(DEMO_RPS) --freshness-query-share 15" || status=$$?; \
	[ ! -d $(RUN_DIR) ] || $(MAKE) --no-print-directory report RUN=$(RUN_DIR) || exit $$?; \
	exit $$status

# The master listens for its workers on loopback only (spawn messages carry every option in cleartext), on a free
# port: the suite does so for --processes at Locust's default master ports (docs/distributed.md).
distributed: $(STAMP)
	mkdir -p $(RUN_DIR)
	@$(KEEP_ON_INT) status=0; $(TARGET) $(LOCUST_RUN) --processes $(WORKERS) \
		$(if $(WEB),--web-host 127.0.0.1 --web-port $(WEB_PORT),--headless -u $(USERS) -r $(SPAWN_RATE) -t $(RUN_TIME)) \
		--csv $(RUN_DIR)/locust --csv-full-history --html $(RUN_DIR)/locust.html $(ARGS) || status=$$?; \
	$(call finish_run,$(RUN_DIR))

# The capacity search ends the run by itself; -u is the most calls in flight (the open model's users).
CAPACITY_USERS ?= 1000
CAPACITY_DIR := reports/runs/$(shell date -u +%Y%m%dT%H%M%SZ)-capacity-$(WORKLOAD)
capacity: $(STAMP)
	mkdir -p $(CAPACITY_DIR)
	@$(KEEP_ON_INT) status=0; \
	$(TARGET) $(LOCUST_RUN) --headless -u $(CAPACITY_USERS) -r $(CAPACITY_USERS) --capacity-search \
		--csv $(CAPACITY_DIR)/locust --csv-full-history --html $(CAPACITY_DIR)/locust.html $(ARGS) || status=$$?; \
	[ ! -s $(CAPACITY_DIR)/locust_stats.csv ] || $(PY) -m reports $(CAPACITY_DIR) || exit $$?; \
	$(call finish_run,$(CAPACITY_DIR))

# Does a deploy under load lose logs? 30 s of the single workload with a restart at 10 s, with a server that drops
# its queue on stop (as the real service does) and with one that flushes it; both reports; exit 0 when as expected.
deploy-check: $(STAMP)
	$(PY) deploy/check/deploy_check.py

# A real Prometheus (Debian's prometheus package) scrapes a real run's /metrics; a figure is queried back.
prometheus-check: $(STAMP)
	$(PY) deploy/prometheus/scrape_check.py

bench: $(STAMP)
	$(PY) -m benchmarks

soak: $(STAMP)
	$(PY) -m benchmarks.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build *.egg-info
