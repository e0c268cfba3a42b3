# hawser: build, test, demo and benchmark on a Debian 12 machine, as root.
#
#   make install   Debian packages (only the missing ones), .venv, editable install, fast launchers
#   make protos    regenerate shim/proto/ and supervisor/api/ from protos/*.proto (grpcio-tools)
#   make test      the pytest suite
#   make demo      start hawserd (embedded defaults) and run busybox containers with hawserctl
#   make bench     hawser vs runc vs crun start-up timings
#   make clean     remove .venv and build products
#
# A re-run of `make install` is fast: one dpkg-query, and pip runs again only when pyproject.toml
# is newer than the stamp file.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := install

REPO := $(CURDIR)
VENV := $(REPO)/.venv
VPY := $(VENV)/bin/python3
STAMP := $(VENV)/.installed
LAUNCHER := $(VENV)/bin/hawser
SHIM_LAUNCHER := $(VENV)/bin/containerd-shim-hawser-v2
SUPERVISOR_LAUNCHERS := $(VENV)/bin/hawserd $(VENV)/bin/hawserctl
PROTO_SRCS := $(shell find protos -path protos/hawser -prune -o -name '*.proto' -print 2>/dev/null | LC_ALL=C sort)
API_PROTO_SRCS := $(shell find protos/hawser -name '*.proto' 2>/dev/null | LC_ALL=C sort)
API_OUT := supervisor/api
API_MARK := $(API_OUT)/__init__.py
PROTO_OUT := shim/proto
PROTO_MARK := $(PROTO_OUT)/schema.py
# Python packages of the project whose bytecode is compiled at install time (those that exist).
PY_PACKAGES := runtime shim supervisor

APT_PACKAGES := busybox-static runc crun podman containerd \
	golang-github-opencontainers-specs-dev golang-github-containerd-containerd-dev \
	golang-github-containerd-ttrpc-dev iproute2 uidmap libseccomp2 python3.11 python3.11-venv \
	netavark iptables nftables docker.io docker-registry skopeo zstd gcc python3.11-dev

# Debian's own python3.11: its libpython is linked statically and _socket, fcntl, select, _struct
# and _sha256 are built in, so each `hawser` call starts ~0.8 ms sooner than with a shared-libpython
# build (pyenv's) that dlopens every one of them.
PYTHON ?= /usr/bin/python3.11
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install apt-packages bytecode native protos test demo bench clean

install: apt-packages $(LAUNCHER) $(SHIM_LAUNCHER) $(SUPERVISOR_LAUNCHERS) $(PROTO_MARK) $(API_MARK) bytecode \
	native

# One dpkg-query for all packages; apt-get only when something is missing.
apt-packages:
	@missing=$$({ dpkg-query -W -f='$${Package} $${db:Status-Abbrev}\n' $(APT_PACKAGES) 2>/dev/null || true; } \
		| awk '$$2 == "ii" { ok[$$1] = 1 } END { n = split("$(APT_PACKAGES)", want, " "); \
			for (i = 1; i <= n; i++) if (!(want[i] in ok)) printf "%s ", want[i] }'); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq; \
		apt-get install -y -qq $$missing </dev/null; \
	fi

# The virtualenv, made with $(PYTHON) (remade when it was made with another interpreter).
$(STAMP): pyproject.toml Makefile
	@py="$(PYTHON)"; \
	if ! [ -x $(VPY) ] || [ "$$(readlink -f $(VPY))" != "$$(readlink -f $$py)" ]; then \
		echo "creating $(VENV) with $$py"; \
		rm -rf $(VENV); \
		"$$py" -m venv $(VENV); \
	fi
	$(VPY) -m pip install -q -e '.[test]'
	@touch $@

# pip's console scripts import site and setuptools' editable finder (~20 ms a call). Each program
# gets instead a launcher: `$(call write_launcher,MODULE[,FUNC])` writes $@, which runs MODULE's
# FUNC() (default main) under `python -I -S` with the repository first on sys.path and the venv's
# site-packages last (for lazily imported dependencies: jsonschema, grpc...), so the hot path
# never searches it.
define write_launcher
	@site=$$($(VPY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	printf '%s\n' \
		'#!$(VPY) -IS' \
		'import sys; sys.path[0:0] = ["$(REPO)"]; sys.path.append("'"$$site"'")' \
		'from $(1) import $(or $(2),main)' \
		'sys.exit($(or $(2),main)())' > $@.tmp; \
	chmod 755 $@.tmp; \
	mv -f $@.tmp $@; \
	echo "wrote fast launcher $@"
endef

# hawser's: runtime.cli.launch() ends with os._exit() once stdout and stderr are flushed, without
# the interpreter's teardown (freeing every module and object: ~4 ms of a `run` or `exec`).
$(LAUNCHER): $(STAMP) Makefile
	$(call write_launcher,runtime.cli,launch)

# The shim's launcher, like hawser's: containerd runs `containerd-shim-hawser-v2 start` for every
# container (its start-up is on the path of `ctr run`; the daemon is that process, forked).
$(SHIM_LAUNCHER): $(STAMP) Makefile
	$(call write_launcher,shim.cli)

# protos/ -> shim/proto/: protoc's Python modules (--python_out; no grpc stubs: the shim serves
# ttrpc itself) with the imports between them made absolute under shim.proto, and schema.py, the
# message layouts for the shim's own codec (protos/schema_gen.py). The generated code is committed,
# so running the shim needs no grpcio-tools; `make protos` regenerates it, `make install` when a
# .proto is newer than it.
define gen_protos
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; mkdir "$$tmp/out"; \
	$(VPY) -m grpc_tools.protoc -Iprotos --python_out="$$tmp/out" --include_imports \
		--descriptor_set_out="$$tmp/descriptors.binpb" $(PROTO_SRCS); \
	tops=$$(cd protos && find . -mindepth 2 -name '*.proto' | cut -d/ -f2 | sort -u | paste -sd'|'); \
	find "$$tmp/out" -name '*_pb2.py' -exec sed -i -E \
		"s/^from ($$tops)((\.[A-Za-z0-9_]+)*) import /from shim.proto.\1\2 import /" {} +; \
	find "$$tmp/out" -type d -exec touch {}/__init__.py \;; \
	echo '"""Generated from protos/ by `make protos`: do not edit."""' > "$$tmp/out/__init__.py"; \
	$(VPY) protos/schema_gen.py "$$tmp/descriptors.binpb" "$$tmp/out/schema.py"; \
	rm -rf $(PROTO_OUT); \
	cp -r "$$tmp/out" $(PROTO_OUT); \
	echo "generated $(PROTO_OUT) from protos/"
endef

# The launchers too: a change to the Makefile re-runs pip (the stamp), whose console scripts
# would otherwise be left in their place.
protos: | $(STAMP) $(LAUNCHER) $(SHIM_LAUNCHER) $(SUPERVISOR_LAUNCHERS)
	$(gen_protos)
	$(gen_api)

$(PROTO_MARK): $(PROTO_SRCS) protos/schema_gen.py | $(STAMP)
	$(gen_protos)

# protos/hawser/ -> supervisor/api/: hawserd's gRPC API (package hawser.v1), messages and grpc
# stubs, flat in one package with the imports between them made absolute, and schema.py, the
# message layouts (with google.protobuf's Timestamp and Empty) for hawserctl's client, which uses
# shim/wire.py instead of grpc and protobuf (supervisor/client/grpclite.py). Committed, like shim/proto.
define gen_api
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(VPY) -m grpc_tools.protoc -Iprotos --python_out="$$tmp" --grpc_python_out="$$tmp" \
		--include_imports --descriptor_set_out="$$tmp/api.binpb" $(API_PROTO_SRCS); \
	sed -i -E 's/^from hawser\.v1 import /from supervisor.api import /' "$$tmp"/hawser/v1/*.py; \
	echo '"""Generated from protos/hawser/ by `make protos`: do not edit."""' > "$$tmp/hawser/v1/__init__.py"; \
	$(VPY) protos/schema_gen.py "$$tmp/api.binpb" "$$tmp/hawser/v1/schema.py" protos/hawser/; \
	rm -rf $(API_OUT); \
	cp -r "$$tmp/hawser/v1" $(API_OUT); \
	echo "generated $(API_OUT) from protos/hawser/"
endef

$(API_MARK): $(API_PROTO_SRCS) protos/schema_gen.py | $(STAMP)
	$(gen_api)

$(VENV)/bin/hawserd: $(STAMP) Makefile
	$(call write_launcher,supervisor.daemon.cli)

$(VENV)/bin/hawserctl: $(STAMP) Makefile
	$(call write_launcher,supervisor.client.ctl)

# PYTHONDONTWRITEBYTECODE=1 is set in this environment: without .pyc files every module would be
# compiled from source at every start of the CLI. compileall writes them whatever that variable says.
bytecode: $(STAMP)
	@pkgs=$$(for p in $(PY_PACKAGES); do [ -d "$$p" ] && echo "$$p"; done || true); \
	if [ -n "$$pkgs" ]; then \
		$(VPY) -m compileall -q --invalidation-mode timestamp $$pkgs || \
			echo "warning: compileall failed on some modules (see above)"; \
	fi

# runtime.syscall._native: the runtime's system calls as a small C module, so that no `hawser`
# call imports ctypes (~2 ms). Without a C compiler the build is skipped with a warning and
# runtime.syscall falls back to ctypes (runtime/syscall/linux.py).
NATIVE_SRC := runtime/syscall/_native.c
NATIVE_SO = runtime/syscall/_native$(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null || echo .so)

native: $(NATIVE_SO)

$(NATIVE_SO): $(NATIVE_SRC) Makefile
	@inc=$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("include"))'); \
	if $${CC:-cc} -O2 -Wall -Wextra -Wno-unused-parameter -shared -fPIC -I"$$inc" \
			-o $@.tmp $(NATIVE_SRC); then \
		mv -f $@.tmp $@; echo "built $@"; \
	else \
		rm -f $@.tmp; echo "warning: cannot build $@: hawser falls back to ctypes"; \
	fi

# pytest exits 5 when it collected no test: not a failure of the suite, say so and go on.
test: install
	@rc=0; $(VPY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no test"; rc=0; fi; \
	exit $$rc

demo: install
	@tools/demo.sh

bench: install
	$(VPY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
	rm -f runtime/syscall/_native*.so
