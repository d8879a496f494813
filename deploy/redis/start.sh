#!/bin/sh
# Renders the ACL file and starts redis-server with it (docker-compose.yml, deploy/k8s/redis.yaml,
# tests/integration/test_redis_acl.py).
#
#   REDIS_PASSWORD_FILE=/run/secrets/redis_password  start.sh [redis-server flags ...]
#
# The gateway user's password is read from REDIS_PASSWORD_FILE (one trailing newline ignored,
# as the gateway does) and written into the rendered ACL as its SHA-256 only, in a file only
# this user can read. redis-server replaces this shell (exec), so signals reach it directly.
set -eu

here="$(dirname "$0")"
template="${REDIS_ACL_TEMPLATE:-$here/users.acl}"
rendered="${REDIS_ACL_RENDERED:-/tmp/vlgw-users.acl}"
password_file="${REDIS_PASSWORD_FILE:?set REDIS_PASSWORD_FILE to the file holding the gateway password}"

password="$(cat "$password_file")"
if [ -z "$password" ]; then
    echo "start.sh: $password_file is empty" >&2
    exit 1
fi
hash="$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)"
umask 077
# redis-server's ACL file takes `user` lines only: comments and blank lines are dropped here.
sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e "s/@GATEWAY_PASSWORD_SHA256@/$hash/" \
    "$template" > "$rendered"
exec "${REDIS_SERVER:-redis-server}" "$@" --aclfile "$rendered"
