#!/usr/bin/env bash
# Makes the real peers the tests drive available, from Debian's packages:
#   - Prometheus Alertmanager (`prometheus-alertmanager`): test/e2e/alertmanager.test.ts;
#   - promtool (in `prometheus`): the /metrics check of test/e2e/daemon.test.ts;
#   - the openssl CLI (`openssl`): certificates for the SNS signature tests;
#   - a PostgreSQL server (`postgresql`): test/unit/store-postgres.test.ts starts a throwaway
#     one with its initdb and pg_ctl (test/support/postgres.ts).
#   - Chromium (`chromium`): test/e2e/status-page.test.ts drives the status page in it, headless,
#     through puppeteer-core (which downloads no browser).
# scripts/with-env.sh --test-peers runs it, so `npm test` and .ci/run set up the same way;
# `npm start` and `npm run bench` need none of them.
#
# A missing peer is installed with apt-get (after `apt-get update`): as root directly, else with
# `sudo -n` when that works without a password. Otherwise the script stops at once, printing
# the one command that installs what is missing; no test is ever skipped for want of a peer.
#
# Prints `NAME=PATH` lines on stdout, for the variables the tests read (PULUMISCALE_ALERTMANAGER,
# PULUMISCALE_PROMTOOL, PULUMISCALE_CHROMIUM); with-env.sh exports them. A variable that is
# already set wins, and must name an executable.
set -euo pipefail

log() { echo "setup-peers: $*" >&2; }

# Each peer: the variable the tests read (- for none), the commands that may provide it (Debian's
# name first, then upstream's), and the Debian package that holds it.
PEERS=(
  "PULUMISCALE_ALERTMANAGER prometheus-alertmanager,alertmanager prometheus-alertmanager"
  "PULUMISCALE_PROMTOOL promtool prometheus"
  "- openssl openssl"
  "PULUMISCALE_CHROMIUM chromium,chromium-browser chromium"
  # Debian keeps the server's binaries off PATH, one folder per version: a path pattern.
  "- /usr/lib/postgresql/*/bin/initdb postgresql"
)

# A variable set by hand must name an executable: checked first, so nothing is installed for it.
for peer in "${PEERS[@]}"; do
  read -r var _ _ <<<"$peer"
  if [[ "$var" != - && -n "${!var:-}" && ! -x "${!var}" ]]; then
    log "ERROR: $var=${!var} is not an executable; unset it or point it at one"
    exit 1
  fi
done

# find VAR COMMANDS: the peer's path on stdout, or nothing when it is missing.
find_peer() {
  local var="$1" commands="$2" cmd
  if [[ "$var" != - && -n "${!var:-}" ]]; then
    echo "${!var}"
    return
  fi
  for cmd in ${commands//,/ }; do
    # An absolute path (a pattern is already expanded by the loop's word splitting).
    if [[ "$cmd" == /* ]]; then
      if [[ -x "$cmd" ]]; then
        echo "$cmd"
        return
      fi
    elif command -v "$cmd" >/dev/null 2>&1; then
      command -v "$cmd"
      return
    fi
  done
}

missing_packages() {
  local peer var commands pkg
  for peer in "${PEERS[@]}"; do
    read -r var commands pkg <<<"$peer"
    [[ -n "$(find_peer "$var" "$commands")" ]] || echo "$pkg"
  done
}

missing="$(missing_packages)"
pkgs=()
[[ -z "$missing" ]] || mapfile -t pkgs <<<"$missing"

if ((${#pkgs[@]} > 0)); then
  install_cmd="sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    log "ERROR: the tests need ${pkgs[*]} (Debian package names), and this machine has no apt-get."
    log "Install them with its package manager, or set PULUMISCALE_ALERTMANAGER and PULUMISCALE_PROMTOOL to the binaries."
    exit 1
  fi
  if [[ "$(id -u)" -eq 0 ]]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    log "ERROR: the tests need the Debian packages ${pkgs[*]}, and installing them needs root. Run:"
    log "  $install_cmd"
    exit 1
  fi
  log "installing Debian packages: ${pkgs[*]}"
  # Another apt run (a second `npm test`, unattended-upgrades) may hold the lock: wait for it.
  "${sudo[@]}" apt-get -qq -o DPkg::Lock::Timeout=300 update >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${pkgs[@]}" >&2
  # On a machine that runs systemd, Debian starts the packages' services (a Prometheus
  # scraping, an Alertmanager listening on every interface, a PostgreSQL cluster). The tests
  # start their own, so turn off what this script just installed rather than leave it running.
  if [[ -d /run/systemd/system ]]; then
    for pkg in "${pkgs[@]}"; do
      case "$pkg" in
        prometheus | prometheus-alertmanager | postgresql)
          "${sudo[@]}" systemctl disable --now "$pkg.service" >&2 2>&1 && log "stopped and disabled the $pkg service" || true
          ;;
      esac
    done
  fi
fi

for peer in "${PEERS[@]}"; do
  read -r var commands pkg <<<"$peer"
  path="$(find_peer "$var" "$commands")"
  if [[ -z "$path" ]]; then
    log "ERROR: ${commands%%,*} is still missing after installing $pkg. Run:"
    log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $pkg"
    exit 1
  fi
  [[ "$var" == - ]] || echo "$var=$path"
done
