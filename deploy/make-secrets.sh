#!/bin/sh
# Writes the secret files docker-compose.yml mounts (see deploy/secrets/README.md).
#
#   deploy/make-secrets.sh [DIR]       DIR defaults to deploy/secrets (VLGW_SECRETS_DIR for compose)
#   HF_TOKEN=hf_... deploy/make-secrets.sh
#
# Existing files are kept, so running it again only fills in what is missing; delete a file
# and run it again to rotate that secret (docs/operations.md "Secret rotation"). The directory
# is 0700 (no other host user can open the files) and the files 0644: compose bind-mounts them
# as they are, and the containers read them as their own non-root users (gateway 10001,
# redis 999, prometheus 65534, grafana 472).
set -eu

dir="${1:-${VLGW_SECRETS_DIR:-$(dirname "$0")/secrets}}"
mkdir -p "$dir"
chmod 0700 "$dir"

random() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

write() {  # write NAME VALUE, unless NAME exists
    if [ -e "$dir/$1" ]; then
        echo "make-secrets: keeping $dir/$1"
        return
    fi
    (umask 022 && printf '%s' "$2" > "$dir/$1.tmp")
    chmod 0644 "$dir/$1.tmp"
    mv "$dir/$1.tmp" "$dir/$1"
    echo "make-secrets: wrote $dir/$1"
}

write vllm_api_key "$(random)"
write redis_password "$(random)"
# The URL carries the password: written from the file so the two always agree.
write redis_url "redis://gateway:$(cat "$dir/redis_password")@redis:6379/0"
write metrics_token "$(random)"
write key_secret "$(random)"
write grafana_admin_password "$(random)"
write hf_token "${HF_TOKEN:-}"
