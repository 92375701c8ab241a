#!/usr/bin/env bash
# Builds the psfile test provider (test/fixtures/provider: a Pulumi resource provider whose
# resource is a local file, for tests of refresh/drift and of previews that replace) and prints
# the folder that holds its binary, pulumi-resource-psfile, as the only line on stdout.
#
# The binary is cached outside the repo, in a folder named after a hash of the provider's
# sources ($PULUMISCALE_CACHE, default ~/.cache/pulumiscale, /test-provider-<hash>), so it is
# built once per machine and again only when the sources change. The build needs Go (the
# version in the provider's go.mod, or GOTOOLCHAIN=auto to fetch it) and the Go module proxy;
# it builds a copy of the sources, so the repo's go.mod and go.sum are never rewritten.
#
# A test then makes it known to Pulumi with
#   pulumi plugin install resource psfile 0.1.0 --file <folder>/pulumi-resource-psfile
# (see test/fixtures/projects/filedrift/README.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC_DIR="$root/test/fixtures/provider"
CACHE_ROOT="${PULUMISCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumiscale}"
BINARY=pulumi-resource-psfile

log() { echo "setup-test-provider: $*" >&2; }
die() {
  log "ERROR: $*"
  log "Install Go >= 1.26 (https://go.dev/doc/install) and run scripts/setup-test-provider.sh again."
  exit 1
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi
}

# The provider's sources: its Go files and module files, in a stable order.
sources=()
while IFS= read -r file; do sources+=("$file"); done < <(
  cd "$SRC_DIR" && find . -maxdepth 1 -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort
)
[[ ${#sources[@]} -gt 0 ]] || die "no provider sources in $SRC_DIR"

# Names and contents both count, so a renamed file is a new build too.
hash="$(cd "$SRC_DIR" && for f in "${sources[@]}"; do printf '%s\n' "$f"; cat "$f"; done | sha256 | cut -c1-16)"
OUT_DIR="$CACHE_ROOT/test-provider-$hash"

if [[ -x "$OUT_DIR/$BINARY" ]]; then
  log "using cached $BINARY from $OUT_DIR"
  echo "$OUT_DIR"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH to build the test provider"
mkdir -p "$OUT_DIR"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$SRC_DIR" && cp "${sources[@]}" "$WORK/")
log "building $BINARY from $SRC_DIR (first time on this machine: a few minutes)"
start=$SECONDS
(
  cd "$WORK"
  export GOFLAGS="${GOFLAGS:-} -mod=mod"
  export CGO_ENABLED=0
  # The same flags as scripts/setup-pulumi.sh, so the Pulumi packages both need are compiled once.
  go build -trimpath -ldflags "-s -w" -o "$WORK/$BINARY" . >&2
) || die "building $BINARY failed"

# Rename into place, so a concurrent run never sees half a binary.
mv -f "$WORK/$BINARY" "$OUT_DIR/$BINARY"
log "built $BINARY into $OUT_DIR in $((SECONDS - start))s"
echo "$OUT_DIR"
