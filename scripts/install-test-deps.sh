#!/usr/bin/env bash
# What the test suite needs beyond Python packages: a real redis-server, redis-cli and
# redis-sentinel (the Cluster and Sentinel tests), and the validators the deployment tests run
# (scripts/install-validators.sh extracts promtool, prometheus and caddy from Debian's packages).
# Idempotent and quick once installed.
set -euo pipefail
need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)  # redis-cli --cluster create (tests/redis_topologies.py)
command -v redis-sentinel >/dev/null 2>&1 || need_apt+=(redis-sentinel)  # the Sentinel group tests
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)  # certificates for the rediss:// tests
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the /docs page test (tests/integration/test_docs_page.py)
# The Kotlin client guide is compiled and run against the gateway (tests/integration/test_clients.py):
# OkHttp and Android's own org.json from Debian; the Kotlin compiler from npm (below).
[ -f /usr/share/java/okhttp.jar ] || need_apt+=(libokhttp-java)
[ -f /usr/share/java/com.android.json.jar ] || need_apt+=(libandroid-json-java)
# The generated Kotlin client's models compile against gson (tests/integration/test_openapi_clients.py).
[ -f /usr/share/java/gson.jar ] || need_apt+=(libgoogle-gson-java)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "installing ${need_apt[*]} with apt-get" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
KOTLIN_TOOLS="${VLGW_TOOLS:-$HOME/.cache/vlgw-tools}/kotlin"
if [ ! -x "$KOTLIN_TOOLS/node_modules/kotlin-compiler/bin/kotlinc" ] && command -v npm >/dev/null 2>&1; then
  echo "installing kotlin-compiler 2.4.20 from npm into $KOTLIN_TOOLS" >&2
  mkdir -p "$KOTLIN_TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$KOTLIN_TOOLS" kotlin-compiler@2.4.20 >/dev/null
fi
# Generated TypeScript clients are type-checked and run against the gateway
# (tests/integration/test_openapi_clients.py): openapi-typescript, openapi-fetch and tsc from npm.
TS_TOOLS="${VLGW_TOOLS:-$HOME/.cache/vlgw-tools}/ts"
if [ ! -x "$TS_TOOLS/node_modules/typescript/bin/tsc" ] || [ ! -d "$TS_TOOLS/node_modules/openapi-fetch" ] \
  || [ ! -d "$TS_TOOLS/node_modules/@types/node" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "installing openapi-typescript, openapi-fetch and typescript from npm into $TS_TOOLS" >&2
    mkdir -p "$TS_TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$TS_TOOLS" \
      openapi-typescript@7.13.0 openapi-fetch@0.17.0 typescript@5.9.3 @types/node@20.19.43 >/dev/null
  fi
fi
if [ -x scripts/install-validators.sh ] || [ -f scripts/install-validators.sh ]; then
  bash scripts/install-validators.sh
fi
