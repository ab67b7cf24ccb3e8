# One command to run the stack, one to test it. Everything lands in .venv and .data.
# The venv's interpreter: the one that made .venv, when there is one and PYTHON is not given;
# else the distribution's python3.11 where there is one that can make venvs (Debian's and
# Ubuntu's are built with profile-guided and link-time optimisation, as the official images the
# Dockerfile starts from are; a default pyenv build is neither: the services used 4-10 % less CPU
# per ticket on the distribution's: docs/performance.md, round 21); else python3. `make install PYTHON=...`
# remakes the venv with another one.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell sed -n 's/^executable = //p' .venv/pyvenv.cfg 2>/dev/null),$(shell /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 && echo /usr/bin/python3.11),python3)
endif
PYTHON_REAL := $(shell $(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null)
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
SERVICES := gateway customer-svc ticket-svc sla-svc analytics-svc notify-svc kb-svc
EDITABLES := -e 'libs/common[embedded]' $(foreach s,$(SERVICES),-e services/$(s))
STAMP  := $(VENV)/.installed
#: the interpreter that made the venv (empty without one)
VENV_PYTHON := $(realpath $(shell sed -n 's/^executable = //p' $(VENV)/pyvenv.cfg 2>/dev/null))
DATA_DIR ?= .data

.PHONY: install run test test-fast bench migrate clean help wrk chromium analytics-rebuild kafka java chaos prometheus compose-schema

help:
	@echo "make run    - the whole stack on the embedded default (gateway http://127.0.0.1:8080)"
	@echo "make kafka  - a 3-node Apache Kafka 4.4 cluster (KRaft, jars from Maven Central) on 127.0.0.1:9092,9094,9096 in the foreground (docs/kafka.md)"
	@echo "make chaos  - the fault suite: 2 replicas of every service on 3-node Apache Kafka, brokers, replicas and PostgreSQL killed under load (<= 20 min; .data/chaos/report.json)"
	@echo "make test   - unit, integration and end-to-end tests on real PostgreSQL + broker"
	@echo "make bench  - wrk benchmarks with baselines, intake/search with 1M tickets stored, SLA firing at 1M timers, 100k automation timers' fire lag, customer 360/import/RFM (BENCH_CUSTOMERS=1000000 for the full size), the board's freshness, dashboards over 10M tickets' read model (BENCH_ANALYTICS_TICKETS), knowledge-base search/suggestions over 100k articles and search relevance (BENCH_KB_ARTICLES); bench/results/latest.json"
	@echo "make analytics-rebuild - rebuild analytics-svc's read models from the topics and swap them in while the stack runs (REBUILD_ARGS=--dry-run compares only; docs/metrics.md 'Rebuild')"

$(STAMP): libs/common/pyproject.toml $(foreach s,$(SERVICES),services/$(s)/pyproject.toml) requirements-dev.txt
	@test -n "$(PYTHON_REAL)" && "$(PYTHON_REAL)" -c 'import ensurepip, venv' 2>/dev/null \
	  || { echo "PYTHON=$(PYTHON) is not a Python that can make venvs (on Debian: apt-get install python3-venv)"; exit 1; }
	@if [ -d $(VENV) ] && [ "$(VENV_PYTHON)" != "$(PYTHON_REAL)" ]; then echo "remaking $(VENV) with $(PYTHON_REAL)"; rm -rf $(VENV); fi
	@echo "$(VENV) on $(PYTHON_REAL) ($$("$(PYTHON_REAL)" --version 2>&1))"
	"$(PYTHON_REAL)" -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.9
	$(UV) pip install -q --python $(PY) $(EDITABLES) -r requirements-dev.txt
	touch $(STAMP)

# an interpreter other than the venv's asked for (PYTHON=...): the venv is made anew
ifneq ($(VENV_PYTHON),)
ifneq ($(VENV_PYTHON),$(PYTHON_REAL))
$(STAMP): venv-python-changed
.PHONY: venv-python-changed
venv-python-changed:
endif
endif

install: $(STAMP)

run: install
	exec $(PY) -m helpdesk_common.devstack run --data-dir $(DATA_DIR)

# analytics-svc's settings from the environment (the make run stack by default); exit codes and
# options: python -m analytics_svc.rebuild --help
analytics-rebuild: install
	$(PY) -m analytics_svc.rebuild $(REBUILD_ARGS)

# Java and Maven (Apache Kafka for `make kafka` and the smoke test in tests/kafka) come from Debian
java:
	@command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else exit 0; fi; \
	  echo "installing java and maven (apt-get install -y openjdk-17-jre-headless maven)"; \
	  $$SUDO apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null 2>&1 || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openjdk-17-jre-headless maven; }; }

# Apache Kafka from Maven Central (tools/kafka/pom.xml; jars cached in ~/.cache/helpdesk), KAFKA_NODES
# combined broker+controller nodes in the foreground; Ctrl-C stops them
KAFKA_NODES ?= 3
KAFKA_PORT ?= 9092
kafka: install java
	exec $(PY) -m helpdesk_common.apache_kafka --nodes $(KAFKA_NODES) --port $(KAFKA_PORT) --data-dir $(DATA_DIR)/kafka

# the fault suite (tools/chaos.py, docs/kafka.md "The fault suite"): two replicas of every service on a
# 3-node Apache Kafka, CHAOS_TICKETS tickets at CHAOS_RATE per second through both gateways while brokers,
# replicas and PostgreSQL are killed in turn; bounded by CHAOS_DEADLINE_S (20 minutes); report in
# .data/chaos/report.json
chaos: install java
	$(PY) tools/chaos.py

migrate: install
	$(PY) -m helpdesk_common.devstack migrate --data-dir $(DATA_DIR)

# pytest-xdist: TEST_WORKERS processes (2 by default, one per core of the CI machine), a test file
# never split between them (its module fixtures: databases, apps, stacks); every worker starts its
# own PostgreSQL, broker and, for tests/e2e and tests/security, its own stack on free ports.
# Most tests wait on I/O, so two workers finish in about half the time of one even on 2 cores.
# TEST_WORKERS=0 runs everything in one process, in file order.
TEST_WORKERS ?= 2
TEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

# then the erasure test once more on a 1-node Apache Kafka (E2E_BROKER, tests/e2e/conftest.py): there
# the event log's purge (DeleteRecords) must leave no record naming the person (docs/security.md
# "Erasure"; the embedded broker cannot delete records, so the first run xfails it); about 80 s
# -rfE: the names and tracebacks of failures and errors in the final summary (a CI log is often
# all there is of a failed run); --durations=25: where the time went. TEST_RERUNS: a test that
# fails runs once more after 5 s (the timing-bound end-to-end tests on a shared 2-core machine); the
# summary counts reruns ("N rerun") and -rR lists them, so a flaky test stays visible.
# TEST_RERUNS=0 turns it off
TEST_RERUNS ?= 1
test: install chromium java prometheus compose-schema
	$(PY) -m pytest -q -p no:cacheprovider -rfER --durations=25 --reruns $(TEST_RERUNS) --reruns-delay 5 $(TEST_PARALLEL); rc=$$?; \
	E2E_BROKER=apache-kafka $(PY) -m pytest -q -p no:cacheprovider -rfE tests/e2e/test_erasure.py; rc2=$$?; \
	[ $$rc -eq 0 ] && [ $$rc2 -eq 0 ] || { echo "test exit codes: suite=$$rc erasure-on-kafka=$$rc2"; exit 1; }

# Chromium comes from Debian too (the survey end-to-end test opens the e-mailed link in it, through
# Playwright with executable_path=/usr/bin/chromium: Playwright never downloads a browser here);
# without root or sudo nothing is installed, and the test fails naming the command to run
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else exit 0; fi; \
	  echo "installing chromium (apt-get install -y chromium)"; \
	  $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }; }

# Prometheus and promtool from Debian (tests/deploy/test_prometheus_config.py runs promtool's checks
# and rule tests, tests/e2e/test_prometheus.py a real Prometheus against the stack); installed here
# when missing, as root or through sudo; without either the tests fail naming this target
prometheus:
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else exit 0; fi; \
	  echo "installing prometheus (apt-get install -y prometheus)"; \
	  $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus; }; \
	  $$SUDO pkill -x prometheus >/dev/null 2>&1 || true; }

# The Compose Specification's JSON schema, as Debian's docker-compose package ships it (2021; nothing
# is installed: the package is downloaded and the one file taken) for tests/deploy/test_compose.py
COMPOSE_SCHEMA := .cache/compose-spec/compose_spec.json
compose-schema: $(COMPOSE_SCHEMA)
$(COMPOSE_SCHEMA):
	@mkdir -p .cache/compose-spec/deb
	@cd .cache/compose-spec/deb && { apt-get download docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq; elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq; fi; \
	  apt-get download docker-compose; }; }
	@dpkg-deb -x .cache/compose-spec/deb/docker-compose_*.deb .cache/compose-spec/deb/x
	@cp .cache/compose-spec/deb/x/usr/lib/python3/dist-packages/compose/config/compose_spec.json $@
	@rm -rf .cache/compose-spec/deb

# wrk comes from Debian like every other system dependency: installed here when missing (as
# root, or through sudo); without either, bench/run.py exits 2 with the command to run
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else exit 0; fi; \
	  echo "installing wrk (apt-get install -y wrk)"; \
	  $$SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk; }; }

bench: install wrk
	$(PY) bench/run.py; rc=$$?; $(PY) bench/scale.py; rc2=$$?; $(PY) bench/sla.py; rc3=$$?; $(PY) bench/customers.py; rc4=$$?; \
	$(PY) bench/automation_timers.py; rc5=$$?; $(PY) bench/analytics_scale.py; rc6=$$?; \
	$(PY) bench/kb_scale.py; rc7=$$?; \
	[ $$rc -eq 0 ] && [ $$rc2 -eq 0 ] && [ $$rc3 -eq 0 ] && [ $$rc4 -eq 0 ] && [ $$rc5 -eq 0 ] && [ $$rc6 -eq 0 ] && [ $$rc7 -eq 0 ] || { echo "bench exit codes: run=$$rc scale=$$rc2 sla=$$rc3 customers=$$rc4 timers=$$rc5 analytics=$$rc6 kb=$$rc7"; exit 1; }

clean:
	rm -rf $(VENV) $(DATA_DIR) bench/results/*.json
