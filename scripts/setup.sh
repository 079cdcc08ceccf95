#!/usr/bin/env bash
# setup.sh: install whatever a fresh machine lacks to build and test GoCaffe:
# Debian's gradle (and a JDK), the .venv with pyspark, and the Go modules.
# Idempotent; each step is skipped when already done. Downloads go to the
# usual caches (apt, ~/.cache/pip, the Go module cache, ~/.gradle).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYSPARK_VERSION="${PYSPARK_VERSION:-4.2.0}"
cd "$ROOT"

need_apt=()
command -v gradle >/dev/null 2>&1 || need_apt+=(gradle)
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
if ((${#need_apt[@]})); then
	echo "setup: installing ${need_apt[*]} with apt-get"
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp=".venv/.pyspark-$PYSPARK_VERSION"
if [ ! -f "$stamp" ]; then
	echo "setup: creating .venv with pyspark==$PYSPARK_VERSION"
	[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check "pyspark==$PYSPARK_VERSION"
	touch "$stamp"
fi

# Pinned protoc tools for the generated-code freshness tests (scripts/genproto.sh).
want="$(sed -n 's/^GRPCIO_TOOLS_VERSION=/grpcio-tools=/p; s/^PROTOC_GEN_GO_VERSION=/protoc-gen-go=/p; s/^PROTOC_GEN_GO_GRPC_VERSION=/protoc-gen-go-grpc=/p' scripts/genproto.sh | paste -sd' ')"
if [ "$(cat .venv-tools/.versions 2>/dev/null)" != "$want" ]; then
	echo "setup: installing protoc tools ($want) into .venv-tools"
	bash scripts/genproto.sh --install
fi

echo "setup: go mod download"
go mod download
echo "setup: done (gradle $(gradle --version 2>/dev/null | sed -n 's/^Gradle //p'), pyspark $PYSPARK_VERSION, $(go version | cut -d' ' -f3))"
