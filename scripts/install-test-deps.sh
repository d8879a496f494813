#!/usr/bin/env bash
# What the test suite needs beyond Python packages: a real redis-server (and the validators the
# deployment tests run, when their installer is present). Idempotent and quick once installed.
set -euo pipefail
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the /docs page test (tests/integration/test_docs_page.py)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "installing ${need_apt[*]} with apt-get" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ -x scripts/install-validators.sh ] || [ -f scripts/install-validators.sh ]; then
  bash scripts/install-validators.sh
fi
