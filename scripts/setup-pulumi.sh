#!/usr/bin/env bash
# Makes a Pulumi CLI (and the YAML language host the repo's projects use) available,
# and prints the directory that holds them on its last line of stdout.
#
# Order of preference:
#   1. a `pulumi` already on PATH (an official install) whose version is >= the pinned one
#      and that has a pulumi-language-yaml beside it;
#   2. the per-machine cache ($PULUMISCALE_CACHE, default ~/.cache/pulumiscale);
#   3. the official release tarball, when it can be downloaded;
#   4. a build from the Go modules at the pinned versions (needs Go >= the module's go line).
# Everything is cached by version outside the repo, so the build happens once per machine.
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-3.276.0}"
PULUMI_YAML_VERSION="${PULUMI_YAML_VERSION:-1.25.0}"
CACHE_ROOT="${PULUMISCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumiscale}"
BIN_DIR="$CACHE_ROOT/pulumi-v$PULUMI_VERSION/bin"

log() { echo "setup-pulumi: $*" >&2; }
die() {
  log "ERROR: $*"
  log "Install the Pulumi CLI the official way (https://www.pulumi.com/docs/install/), or install Go"
  log ">= 1.26 and run scripts/setup-pulumi.sh again to build it from its Go module."
  exit 1
}

have_complete() { [[ -x "$1/pulumi" && -x "$1/pulumi-language-yaml" ]]; }

version_ge() { # version_ge A B: A >= B (semver without pre-release)
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

# 1. An official install on PATH.
if command -v pulumi >/dev/null 2>&1; then
  onpath="$(dirname "$(command -v pulumi)")"
  v="$(pulumi version 2>/dev/null | sed 's/^v//')"
  if [[ -n "$v" ]] && version_ge "$v" "$PULUMI_VERSION" && [[ -x "$onpath/pulumi-language-yaml" ]]; then
    log "using pulumi v$v from $onpath"
    echo "$onpath"
    exit 0
  fi
fi

# 2. The cache.
if have_complete "$BIN_DIR"; then
  log "using cached pulumi v$PULUMI_VERSION from $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

mkdir -p "$BIN_DIR"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# 3. The official release tarball (ships the CLI and its language hosts).
url="https://get.pulumi.com/releases/sdk/pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz"
if [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] && curl -fsSL --connect-timeout 5 --max-time 300 -o "$WORK/pulumi.tgz" "$url" 2>/dev/null; then
  tar -xzf "$WORK/pulumi.tgz" -C "$WORK"
  cp "$WORK"/pulumi/* "$BIN_DIR/"
  log "installed the official pulumi v$PULUMI_VERSION release into $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi
log "no release download reachable; building from the Go modules instead"

# 4. Build from the Go modules.
command -v go >/dev/null 2>&1 || die "no Pulumi CLI on PATH, no release download, and no Go toolchain to build one"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

# build_from_module NAME MODULE VERSION MAINPKG LDFLAGS
# Builds MAINPKG of MODULE@VERSION in a throwaway wrapper module that copies the module's own
# non-local `replace` lines (local ones point into the monorepo and resolve to the published
# module instead), so the dependency graph is the one the release was built with.
build_from_module() {
  local name="$1" module="$2" version="$3" mainpkg="$4" ldflags="$5"
  local dir="$WORK/$name"
  mkdir -p "$dir"
  local modfile
  modfile="$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [[ -f "$modfile" ]] || die "could not download $module@$version from the Go module proxy"
  {
    echo "module pulumiscale.local/build/$name"
    echo
    grep -E '^go [0-9]' "$modfile"
    echo
    echo "require $module $version"
    # Single-line replace directives whose target is a module version, not a local path.
    grep -E '^replace [^ ]+ (v[^ ]+ )?=> [^ .][^ ]* v[^ ]+$' "$modfile" || true
  } >"$dir/go.mod"
  (
    cd "$dir"
    go get "$mainpkg@$version" >&2
    go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$name" "$mainpkg" >&2
  ) || die "building $name from $module@$version failed"
  log "built $name from $module@$version"
}

build_from_module pulumi github.com/pulumi/pulumi/pkg/v3 "v$PULUMI_VERSION" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
  "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"
build_from_module pulumi-language-yaml github.com/pulumi/pulumi-yaml "v$PULUMI_YAML_VERSION" \
  github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
  "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=v$PULUMI_YAML_VERSION"

have_complete "$BIN_DIR" || die "the build finished without producing every binary in $BIN_DIR"
echo "$BIN_DIR"
