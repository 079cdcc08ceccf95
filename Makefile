# GoCaffe: the two commands a new user runs are `make demo` and `make test`.
#
#   make demo         set up what is missing, build, run the main job on a local Spark cluster
#   make test         set up, build, run every test (Go unit tests, portable kernels, Spark integration)
#   make selftest     start goexec on each executor of a local cluster and print what it answers
#   make jar          build build/libs/gocaffe.jar (goexec inside) with Debian's gradle
#   make goexec       build bin/goexec
#   make integration  only the Spark integration tests (needs the jar)

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
DEMO_ARGS ?= -train -conf $(CURDIR)/$(DEMO_DIR)/lenet_solver.prototxt -model $(CURDIR)/$(DEMO_DIR)/lenet.caffemodel -clusterSize 1

.PHONY: all setup goexec jar demo demo-data selftest test unit kernels-portable vet integration clean

all: jar

setup:
	@$(TIMED) setup scripts/setup.sh

goexec:
	@$(TIMED) goexec go build -trimpath -ldflags "-X main.version=0.1.0-$(VERSION)" -o bin/goexec ./goexec/cmd/goexec

jar: setup
	@$(TIMED) jar $(GRADLE) jar
	@ls -l $(JAR)

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

vet:
	@$(TIMED) gofmt sh -c 'out=$$(gofmt -l $$(git ls-files "*.go")); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi'
	@$(TIMED) vet go vet ./...

unit:
	@$(TIMED) go-test go test -count=1 ./...

# The kernels' portable (non-SIMD) path must keep building and passing, and
# the AVX2 path (CPUs without AVX-512) must pass the layers' and nets' tests
# too: GOCAFFE_CPU_LEVEL=avx2 forces it on this AVX-512 machine.
kernels-portable:
	@$(TIMED) kernels-portable env GOEXPERIMENT= go test -count=1 ./kernels/...
	@$(TIMED) kernels-avx2 env GOCAFFE_CPU_LEVEL=avx2 go test -count=1 ./kernels/... ./caffe/layers/... ./caffe/network/... ./caffe/solver/...

integration:
	@$(TIMED) integration env SPARK_HOME=$(SPARK_HOME) GOCAFFE_JAR=$(CURDIR)/$(JAR) \
		go test -tags integration -count=1 -timeout 40m -v ./integration/...

test: jar
	@$(MAKE) --no-print-directory vet unit kernels-portable integration

clean:
	rm -rf build bin .gradle
