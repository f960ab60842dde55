# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
DEMO_VENV := .venv-demo
TEST_VENV := .venv-test
UV_DEMO := $(DEMO_VENV)/bin/uv
UV_TEST := $(TEST_VENV)/bin/uv
# The machine's pip configuration must not leak into our own environments.
HERMETIC := env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null
# The docs site: every warning an error (--quiet would hide them from --strict), built
# offline into site/ (ignored by git).
MKDOCS := $(HERMETIC) NO_MKDOCS_2_WARNING=1 $(TEST_VENV)/bin/mkdocs build --strict --site-dir site

.PHONY: demo test test-unit docs lint bench clean system-packages

# git for Git installs; OpenSSH for SSH hosts and SSH-served repositories in tests;
# iproute2 for hosts in network namespaces of their own; SLURM and munge for a real batch
# system in tests (tests/support/slurm.py starts and stops its daemons)
system-packages:
	@command -v git >/dev/null && test -x /usr/sbin/sshd && command -v ssh >/dev/null && \
		command -v ip >/dev/null && test -x /usr/sbin/slurmctld && test -x /usr/sbin/munged || \
		(apt-get update -qq && \
		apt-get install -y -qq git openssh-server openssh-client iproute2 && \
		apt-get install -y -qq --no-install-recommends slurm-wlm munge)

$(UV_DEMO):
	$(PYTHON) -m venv $(DEMO_VENV)
	$(HERMETIC) $(DEMO_VENV)/bin/pip install --quiet --no-input uv

$(UV_TEST):
	$(PYTHON) -m venv $(TEST_VENV)
	$(HERMETIC) $(TEST_VENV)/bin/pip install --quiet --no-input uv

demo: system-packages $(UV_DEMO)
	$(HERMETIC) $(UV_DEMO) pip install --quiet --python $(DEMO_VENV)/bin/python \
		. httpx -e examples/seed_demo/my_local_package
	cd examples/seed_demo && $(HERMETIC) ../../$(DEMO_VENV)/bin/python run_demo.py

# The tests build many one-off wheels into uv's cache: pruned after the run, pass or fail.
test: system-packages $(UV_TEST)
	$(HERMETIC) $(UV_TEST) pip install --quiet --python $(TEST_VENV)/bin/python -e '.[test,docs]'
	$(HERMETIC) $(TEST_VENV)/bin/ruff check src tests benchmarks examples docs/hooks
	$(HERMETIC) $(TEST_VENV)/bin/mypy
	$(MKDOCS)
	$(HERMETIC) $(TEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); \
		status=$$?; $(UV_TEST) cache prune --quiet || true; exit $$status

test-unit: $(UV_TEST)
	$(HERMETIC) $(TEST_VENV)/bin/python -m pytest -q tests/unit

docs: $(UV_TEST)
	$(HERMETIC) $(UV_TEST) pip install --quiet --python $(TEST_VENV)/bin/python -e '.[docs]'
	$(MKDOCS)

bench: system-packages $(UV_TEST)
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_launch.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_sync.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_rebuild.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_ssh.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_fanout.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_watch.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_relaunch_process.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_tls.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_workdir_scan.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_slurm.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_damage_check.py
	$(HERMETIC) $(TEST_VENV)/bin/python benchmarks/bench_cache_gc.py

clean:
	rm -rf $(DEMO_VENV) $(TEST_VENV)
