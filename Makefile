# GoCaffe: the two commands a new user runs are `make demo` and `make test`.
#
#   make demo         set up what is missing, build, run the main job on a local Spark cluster
#   make test         set up, build, run every test (Go unit tests, portable kernels, Spark integration)
#   make selftest     start goexec on each executor of a local cluster and print what it answers
#   make jar          build build/libs/gocaffe.jar (goexec inside) with Debian's gradle
#   make goexec       build bin/goexec
#   make goexec-cuda  build bin/goexec-cuda (the CUDA variant; needs no GPU to build)
#   make integration  only the Spark integration tests (needs the jar; builds the YARN test launcher)
#   make minicluster  build the YARN tests' MiniYARNCluster launcher (build/minicluster)
#   make pytest       only the Python tests (python/tests: ONNX export, OpenCV, the gocaffe package), in .venv-pytest

SHELL := /bin/bash
# Fast CPU kernels (Go 1.26 simd/archsimd); `make test` also tests the portable path.
export GOEXPERIMENT := simd
# Spark talks only on loopback.
export SPARK_LOCAL_IP := 127.0.0.1
export SPARK_LOCAL_HOSTNAME := localhost

PYSPARK_VERSION ?= 4.2.0
export PYSPARK_VERSION
# The Spark the tests and the demo run: the pyspark in .venv (GOCAFFE_SPARK_HOME overrides).
SPARK_HOME = $(or $(GOCAFFE_SPARK_HOME),$(firstword $(wildcard $(CURDIR)/.venv/lib/python3*/site-packages/pyspark)))
JAR := build/libs/gocaffe.jar
VERSION := $(shell git describe --always --dirty --tags 2>/dev/null || echo dev)
TIMED := scripts/timed.sh
GRADLE := gradle --console=plain -q

# The main job `make demo` runs: LeNet on MNIST (Parquet, converted by
# tools/mnist2parquet) trained through spark-submit on local[2] (the driver's
# executor runs goexec), Caffe's lenet_solver (10,000 iterations), with
# progress and the test accuracy printed. The demo's solver and net are
# examples/lenet_* with the data sources pointed at the Parquet files.
DEMO_MASTER ?= local[2]
DEMO_DIR := build/demo
DEMO_ARGS ?= -train -conf $(CURDIR)/$(DEMO_DIR)/lenet_solver.prototxt -model $(CURDIR)/$(DEMO_DIR)/lenet.caffemodel -overwrite -clusterSize 1

.PHONY: all setup goexec jar minicluster demo demo-data selftest test unit kernels-portable vet integration pytest clean \
	cuda-setup cuda-kernels cuda-stub goexec-cuda cuda-check

all: jar

setup:
	@$(TIMED) setup scripts/setup.sh

goexec:
	@$(TIMED) goexec go build -trimpath -ldflags "-X main.version=0.1.0-$(VERSION)" -o bin/goexec ./goexec/cmd/goexec

jar: setup
	@$(TIMED) jar $(GRADLE) jar
	@ls -l $(JAR)

# The YARN integration tests' MiniYARNCluster + MiniDFSCluster launcher
# (integration/minicluster, Hadoop's hadoop-minicluster): test-only, never in the jar.
minicluster: setup
	@$(TIMED) minicluster $(GRADLE) miniCluster

demo-data:
	@mkdir -p $(DEMO_DIR)
	@test -d $(DEMO_DIR)/mnist/test || $(TIMED) mnist2parquet go run ./tools/mnist2parquet -out $(DEMO_DIR)/mnist
	@sed -e 's#"mnist::train"#"parquet:$(CURDIR)/$(DEMO_DIR)/mnist/train"#' -e 's#"mnist::test"#"parquet:$(CURDIR)/$(DEMO_DIR)/mnist/test"#' \
		examples/lenet_train_test.prototxt > $(DEMO_DIR)/lenet_train_test.prototxt
	@sed -e 's#^snapshot_prefix: .*#snapshot_prefix: "lenet"#' examples/lenet_solver.prototxt > $(DEMO_DIR)/lenet_solver.prototxt

demo: jar demo-data
	@$(TIMED) demo env SPARK_HOME=$(SPARK_HOME) $(SPARK_HOME)/bin/spark-submit \
		--master '$(DEMO_MASTER)' --conf spark.ui.enabled=false \
		--class GoCaffeRunner $(JAR) $(DEMO_ARGS)

# goexec on every executor of a 2-executor local cluster: one line per executor
# with its goexec version and devices.
selftest: jar
	@$(TIMED) selftest env SPARK_HOME=$(SPARK_HOME) $(SPARK_HOME)/bin/spark-submit \
		--master 'local-cluster[2,1,1024]' --conf spark.ui.enabled=false \
		--class GoCaffeRunner $(JAR) --selftest -clusterSize 2

# ---- The CUDA variant (build tag `cuda`): bin/goexec-cuda ----
# nvcc and the CUDA headers come from NVIDIA's pip wheels in .venv-cuda
# (scripts/cuda-setup.sh); the kernels (kernels/cuda/src/*.cu) compile to
# fatbins with SASS for sm_80 and sm_90 plus compute_90 PTX, embedded by
# go:embed; a stub libcuda.so generated from the symbols the cgo packages
# use lets the binary link on machines without the NVIDIA driver.
CUDA_VENV := $(CURDIR)/.venv-cuda
CUDA_NV = $(firstword $(wildcard $(CUDA_VENV)/lib/python3*/site-packages/nvidia))
NVCC = $(CUDA_NV)/cu13/bin/nvcc
CUDA_INC = $(CUDA_NV)/cuda_runtime/include
CUDA_STUB := build/cuda-stub
CUDA_SRC := $(wildcard kernels/cuda/src/*.cu)
CUDA_FATBINS := $(patsubst kernels/cuda/src/%.cu,kernels/cuda/fatbin/%.fatbin,$(CUDA_SRC))
NVCC_FLAGS := -std=c++17 -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90
CUDA_ENV = CGO_ENABLED=1 CGO_CFLAGS="-I$(CUDA_INC)" CGO_LDFLAGS="-L$(CURDIR)/$(CUDA_STUB)"

cuda-setup:
	@scripts/cuda-setup.sh

$(CUDA_VENV)/.versions: scripts/cuda-setup.sh
	@scripts/cuda-setup.sh

kernels/cuda/fatbin/%.fatbin: kernels/cuda/src/%.cu kernels/cuda/src/common.cuh $(CUDA_VENV)/.versions
	@mkdir -p kernels/cuda/fatbin
	$(NVCC) -fatbin $(NVCC_FLAGS) -o $@ $<

cuda-kernels: $(CUDA_FATBINS)

cuda-stub: cuda-kernels
	@$(TIMED) cuda-stub scripts/cuda-stub.sh $(CUDA_STUB) $(CUDA_INC)

# GOEXEC_CUDA_OUT and GOEXEC_LDEXTRA (-s -w) let the jar build take a stripped copy.
GOEXEC_CUDA_OUT ?= bin/goexec-cuda
GOEXEC_LDEXTRA ?=
goexec-cuda: cuda-stub
	@$(TIMED) goexec-cuda env $(CUDA_ENV) go build -tags cuda -trimpath -ldflags "$(GOEXEC_LDEXTRA) -X main.version=0.1.0-$(VERSION)" \
		-o $(GOEXEC_CUDA_OUT) ./goexec/cmd/goexec

# CI has no GPU: vet the CUDA variant, build it, and run its tests against
# the stub driver (they skip with a message that says no device was found).
cuda-check: goexec-cuda
	@$(TIMED) vet-cuda env $(CUDA_ENV) go vet -tags cuda ./...
	@$(TIMED) test-cuda env $(CUDA_ENV) LD_LIBRARY_PATH=$(CURDIR)/$(CUDA_STUB) go test -tags cuda -count=1 ./kernels/cuda/... && env $(CUDA_ENV) LD_LIBRARY_PATH=$(CURDIR)/$(CUDA_STUB) go test -tags cuda -count=1 -run TestCUDABuild ./goexec/cmd/goexec

vet:
	@$(TIMED) gofmt sh -c 'out=$$(gofmt -l $$(git ls-files "*.go")); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi'
	@$(TIMED) vet go vet ./...

# The all-reduce's transfers, aborts and cancels run on several goroutines:
# its tests run under the race detector too (a few seconds).
unit:
	@$(TIMED) go-test go test -count=1 ./...
	@$(TIMED) race-ring go test -race -count=1 ./goexec/ring/

# The kernels' portable (non-SIMD) path must keep building and passing, and
# the AVX2 path (CPUs without AVX-512) must pass the layers' and nets' tests
# too: GOCAFFE_CPU_LEVEL=avx2 forces it on this AVX-512 machine.
kernels-portable:
	@$(TIMED) kernels-portable env GOEXPERIMENT= go test -count=1 ./kernels/...
	@$(TIMED) kernels-avx2 env GOCAFFE_CPU_LEVEL=avx2 go test -count=1 ./kernels/... ./caffe/layers/... ./caffe/network/... ./caffe/solver/...

integration: minicluster
	@$(TIMED) integration env SPARK_HOME=$(SPARK_HOME) GOCAFFE_JAR=$(CURDIR)/$(JAR) \
		go test -tags integration -count=1 -timeout 70m -v ./integration/...

# The Python tests' own venv (onnxruntime, OpenCV, pytest), kept apart
# from .venv; rebuilt when python/requirements-test.txt changes.
PYTEST_VENV := .venv-pytest
# The gocaffe package (python/) is installed into it with pip, as a user would.
$(PYTEST_VENV)/.installed: python/requirements-test.txt python/pyproject.toml $(wildcard python/gocaffe/*) \
		$(wildcard python/com/gocaffe/ml/*)
	@test -x $(PYTEST_VENV)/bin/python || python3 -m venv $(PYTEST_VENV)
	@$(TIMED) pytest-venv $(PYTEST_VENV)/bin/pip install --quiet --disable-pip-version-check \
		-r python/requirements-test.txt ./python "pyspark==$(PYSPARK_VERSION)"
	@touch $@

# pytest exits 5 when it collects no tests: that fails here as any error does.
# A passing test's tmp_path is removed (ResNet-50's export alone writes
# 200 MB); a failing test's stays for a look.
pytest: jar goexec $(PYTEST_VENV)/.installed
	@$(TIMED) pytest env GOEXEC=$(CURDIR)/bin/goexec GOCAFFE_JAR=$(CURDIR)/$(JAR) \
		$(PYTEST_VENV)/bin/python -m pytest -p no:cacheprovider -o tmp_path_retention_policy=failed \
		-v --durations=0 python/tests

test: jar
	@$(MAKE) --no-print-directory vet cuda-check unit kernels-portable integration pytest

clean:
	rm -rf build bin .gradle
