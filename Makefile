# Drives CMake and the test suites.  `make run` and `make check` do all the
# set-up on a fresh Debian 12 machine (as root): packages, build, templates.

BUILD       ?= build
BUILD_ASAN  ?= build-asan
HSP_ROOT    ?= /var/lib/hsp
HSP_RUN_DIR ?= /run/hsp
JOBS        ?= $(shell nproc)

.PHONY: all deps build build-asan run check unit unit-asan integration integration-asan integration-cephfs ceph-test vm-test cluster-test cluster-test-asan cluster-test-valgrind interop-deps bench format clean

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

build-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DHSP_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS) -- --no-print-directory

run: build
	@HSP_BUILD=$(CURDIR)/$(BUILD) HSP_ROOT=$(HSP_ROOT) HSP_RUN_DIR=$(HSP_RUN_DIR) \
		sh scripts/run.sh

unit: build
	@cd $(BUILD) && ctest --output-on-failure

unit-asan: build-asan
	@cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure

integration: build
	@HSP=$(CURDIR)/$(BUILD)/src/runtime/hsp-runtime bash test/integration/run.sh

# The same suites against the sanitizer build: monitors and exec helpers
# run instrumented too, and a leak fails the command that leaked.
integration-asan: build-asan
	@HSP=$(CURDIR)/$(BUILD_ASAN)/src/runtime/hsp-runtime ASAN_OPTIONS=detect_leaks=1 \
		bash test/integration/run.sh

# The lifecycle, disk and root file system suites again, with every VE in a
# CephFS pool on a throw-away cluster (both storage backends, same tests).
integration-cephfs: build
	@HSP=$(CURDIR)/$(BUILD)/src/runtime/hsp-runtime HSP_TEST_POOL=cephfs \
		bash test/integration/run.sh t_lifecycle.sh t_disk.sh t_rootfs.sh

# The throw-away Ceph cluster the storage tests run against.
ceph-test: deps
	@bash test/ceph/t_cluster.sh

# The cgroup v2 suite, then the kernel CephFS client (a second, short boot
# with a NIC into a test cluster); both run even if the first fails.
vm-test: build
	@rc=0; HSP_BUILD=$(CURDIR)/$(BUILD) bash test/vm/run.sh || rc=1; \
	HSP_BUILD=$(CURDIR)/$(BUILD) bash test/vm/ceph-kernel.sh || rc=1; exit $$rc

# The independent gRPC client the interop tests use (grpc-js, from npm).
interop-deps: deps
	@cd test/interop && { [ -d node_modules/@grpc/grpc-js ] || npm ci --no-audit --no-fund --loglevel=error; }

# The control plane: controller + agents of a simulated cluster
# (test/sim-cluster), driven by hspctl and the grpc-js client; then again
# with every daemon built with ASan+UBSan.
cluster-test: build interop-deps
	@HSP_BUILD=$(CURDIR)/$(BUILD) bash test/cluster/run.sh

cluster-test-asan: build-asan interop-deps
	@HSP_BUILD=$(CURDIR)/$(BUILD_ASAN) ASAN_OPTIONS=detect_leaks=1 bash test/cluster/run.sh

# ... and with the controller and agents under valgrind: any error or leak
# it reports fails the suite (grpc's one-time globals suppressed).
cluster-test-valgrind: build interop-deps
	@HSP_BUILD=$(CURDIR)/$(BUILD) HSP_SIM_VALGRIND=1 bash test/cluster/run.sh

check: unit unit-asan integration integration-asan integration-cephfs ceph-test cluster-test cluster-test-asan cluster-test-valgrind vm-test

bench: build
	@HSP=$(CURDIR)/$(BUILD)/src/runtime/hsp-runtime HSP_BUILD=$(CURDIR)/$(BUILD) bash bench/run.sh

format:
	@find src test -name '*.[ch]' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
