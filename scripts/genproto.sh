#!/usr/bin/env bash
# genproto.sh: generate the Go code for every .proto in the repository and
# install (pinned) the tools needed to do so. The generated *.pb.go files are
# committed, so an ordinary build needs none of this.
#
# Usage:
#   scripts/genproto.sh                 install tools if missing, regenerate in place
#   scripts/genproto.sh --install       only install the pinned tools into .venv-tools/
#   scripts/genproto.sh --out DIR       generate into DIR (a module-root-shaped tree)
#   scripts/genproto.sh --check [DIRS]  regenerate into a temp dir and diff against
#                                       the committed files (exit 1 on any difference)
#   Any trailing DIRS restrict generation/checking to those proto dirs.
#
# Tools (all pinned, installed under .venv-tools/, which .gitignore covers):
#   protoc             from the PyPI package grpcio-tools (python -m grpc_tools.protoc)
#   protoc-gen-go      google.golang.org/protobuf/cmd/protoc-gen-go
#   protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
# Without --install the script never touches the network when the tools are
# already present; --check exits 2 with a hint when they are missing.
#
# HOW TO ADD A PROTO DIRECTORY: append one line to PROTO_DIRS below,
#   "<dir relative to repo root>:<plugins>"
# where <plugins> is a comma list of "go" and/or "grpc". Every *.proto directly
# in that dir is compiled with -I <repo root>, so imports are written relative
# to the repo root (e.g. import "caffe/caffepb/caffe.proto";). Each proto file
# needs option go_package = "github.com/gocaffe/gocaffe/<dir>[/<subdir>];<pkg>";
# --check follows generated files wherever go_package puts them.
set -euo pipefail

PROTO_DIRS=(
	"caffe/caffepb:go"
	"goexec/rpc:go,grpc"
	"caffe/onnxexport/onnxpb:go"
)

GRPCIO_TOOLS_VERSION=1.85.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.1
MODULE=github.com/gocaffe/gocaffe

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${GOCAFFE_PROTO_TOOLS:-$ROOT/.venv-tools}"
PY="$TOOLS/bin/python"

have_tools() {
	[[ -x "$PY" ]] && "$PY" -c 'import grpc_tools.protoc' 2>/dev/null &&
		[[ -x "$TOOLS/bin/protoc-gen-go" ]] && [[ -x "$TOOLS/bin/protoc-gen-go-grpc" ]] &&
		[[ "$(cat "$TOOLS/.versions" 2>/dev/null)" == "$(versions)" ]]
}

versions() {
	echo "grpcio-tools=$GRPCIO_TOOLS_VERSION protoc-gen-go=$PROTOC_GEN_GO_VERSION protoc-gen-go-grpc=$PROTOC_GEN_GO_GRPC_VERSION"
}

install_tools() {
	echo "genproto: installing pinned tools into $TOOLS" >&2
	if [[ ! -x "$PY" ]]; then
		python3 -m venv "$TOOLS"
	fi
	"$PY" -m pip install --quiet --disable-pip-version-check "grpcio-tools==$GRPCIO_TOOLS_VERSION"
	GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
	GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
	versions >"$TOOLS/.versions"
}

# generate OUTDIR [DIRS...]: compile the selected proto dirs into OUTDIR.
generate() {
	local out="$1"
	shift
	local entry dir plugins files
	for entry in "${PROTO_DIRS[@]}"; do
		dir="${entry%%:*}"
		plugins="${entry#*:}"
		if (($#)) && ! printf '%s\n' "$@" | grep -qxF "$dir"; then
			continue
		fi
		shopt -s nullglob
		files=("$ROOT/$dir"/*.proto)
		shopt -u nullglob
		((${#files[@]})) || continue
		local rel=()
		local f
		for f in "${files[@]}"; do rel+=("${f#"$ROOT"/}"); done
		local args=(-I "$ROOT" --plugin=protoc-gen-go="$TOOLS/bin/protoc-gen-go"
			--go_out="$out" --go_opt=module="$MODULE")
		if [[ ",$plugins," == *",grpc,"* ]]; then
			args+=(--plugin=protoc-gen-go-grpc="$TOOLS/bin/protoc-gen-go-grpc"
				--go-grpc_out="$out" --go-grpc_opt=module="$MODULE")
		fi
		mkdir -p "$out/$dir"
		(cd "$ROOT" && "$PY" -m grpc_tools.protoc "${args[@]}" "${rel[@]}")
	done
}

mode=gen
out="$ROOT"
dirs=()
while (($#)); do
	case "$1" in
	--install) mode=install ;;
	--check) mode=check ;;
	--out)
		out="$2"
		shift
		;;
	-h | --help)
		sed -n '2,27p' "$0"
		exit 0
		;;
	*) dirs+=("${1%/}") ;;
	esac
	shift
done

case "$mode" in
install)
	install_tools
	;;
gen)
	have_tools || install_tools
	generate "$out" "${dirs[@]}"
	;;
check)
	if ! have_tools; then
		echo "genproto: pinned protoc/protoc-gen-go tools missing in $TOOLS; run scripts/genproto.sh --install" >&2
		exit 2
	fi
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	generate "$tmp" "${dirs[@]}"
	status=0
	for entry in "${PROTO_DIRS[@]}"; do
		dir="${entry%%:*}"
		if ((${#dirs[@]})) && ! printf '%s\n' "${dirs[@]}" | grep -qxF "$dir"; then
			continue
		fi
		# Compare generated files both ways: changed/new and committed-but-stale.
		while IFS= read -r -d '' f; do
			rel="${f#"$tmp"/}"
			if ! cmp -s "$f" "$ROOT/$rel"; then
				echo "genproto: $rel differs from a fresh generation" >&2
				diff -u "$ROOT/$rel" "$f" | head -40 >&2 || true
				status=1
			fi
		done < <(grep -rlZE --include='*.pb.go' "^// source: $dir/[^/]+\.proto\$" "$tmp" || true)
		# Generated files in the tree whose source is a proto of this dir,
		# wherever go_package put them, must still be generated.
		while IFS= read -r f; do
			rel="${f#"$ROOT"/}"
			if [[ ! -f "$tmp/$rel" ]]; then
				echo "genproto: $rel is committed but no longer generated" >&2
				status=1
			fi
		done < <(grep -rlE --include='*.pb.go' --exclude-dir='.*' "^// source: $dir/[^/]+\.proto\$" "$ROOT" || true)
	done
	if ((status)); then
		echo "genproto: generated code is stale; run scripts/genproto.sh and commit" >&2
	fi
	exit $status
	;;
esac
