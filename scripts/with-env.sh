#!/usr/bin/env bash
# Runs a command with what the project needs first on PATH: Node.js >= 24 and the Pulumi CLI
# with its YAML language host (each brought or built once per machine, cached outside the
# repo), and the npm dependencies installed. Used by `npm start`, `npm test`, `npm run bench`
# and .ci/run, so a newcomer's machine and CI set up the same way.
#
#   with-env.sh [--test-peers] CMD...
#
# --test-peers (`npm test`) also brings the real peers the tests drive (Alertmanager, promtool,
# openssl, a PostgreSQL server; scripts/setup-peers.sh) and exports their paths, and builds the tests' resource
# provider (scripts/setup-test-provider.sh, with Go). The peers come first, so a machine that
# cannot install them stops at once, before minutes of building Pulumi.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ "${1:-}" == --test-peers ]]; then
  shift
  with_test_peers=1
  peers="$(bash "$root/scripts/setup-peers.sh")"
  while IFS= read -r line; do
    if [[ -n "$line" ]]; then export "$line"; fi
  done <<<"$peers"
fi

node_dir="$(bash "$root/scripts/setup-node.sh")"
export PATH="$node_dir:$PATH"

pulumi_dir="$(bash "$root/scripts/setup-pulumi.sh")"
export PATH="$pulumi_dir:$PATH"
export PULUMISCALE_PULUMI_DIR="$pulumi_dir"

# The tests' resource provider (a local file as a resource, for drift and guard tests), built
# from its Go module once per machine; after the CLI's build it shares its Go build cache.
if [[ -n "${with_test_peers:-}" ]]; then
  PULUMISCALE_TEST_PROVIDER_DIR="$(bash "$root/scripts/setup-test-provider.sh")"
  export PULUMISCALE_TEST_PROVIDER_DIR
fi
export PULUMI_SKIP_UPDATE_CHECK=true
# The demo's stacks use a passphrase secrets provider; a real deployment sets its own.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-pulumiscale-demo}"

# Install (or refresh) dependencies when node_modules is missing or older than the lockfile.
if [[ ! -f "$root/node_modules/.package-lock.json" || "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]]; then
  echo "with-env: installing npm dependencies" >&2
  (cd "$root" && npm ci --no-audit --no-fund >&2)
fi

exec "$@"
