#!/usr/bin/env bash
# Prepares this host for rootless Podman sandboxes (Debian 12; run as root).
# Idempotent: every step checks first, so a second run only verifies.
#   - packages: podman, runc, uidmap, mmdebstrap, acl
#   - the sandbox user with subordinate uid/gid ranges
#   - /etc/containers/{containers,storage}.conf
#   - the user's runtime directory (XDG_RUNTIME_DIR)
set -euo pipefail

SANDBOX_USER=${APPLIANCE_SANDBOX_USER:-appliance-sandbox}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then
  echo "setup-host.sh must run as root (it installs packages and creates $SANDBOX_USER)" >&2
  exit 1
fi

need=""
for cmd in podman runc newuidmap mmdebstrap setfacl; do
  command -v "$cmd" >/dev/null 2>&1 || need="$need $cmd"
done
if [ -n "$need" ]; then
  echo "sandbox host: installing podman runc uidmap mmdebstrap acl (missing:$need)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    podman runc uidmap mmdebstrap acl ca-certificates
fi

if ! getent passwd "$SANDBOX_USER" >/dev/null; then
  echo "sandbox host: creating user $SANDBOX_USER"
  useradd --system --create-home --home-dir "/var/lib/$SANDBOX_USER" \
    --shell /usr/sbin/nologin --add-subids-for-system "$SANDBOX_USER"
fi
# A range no other user has: the next free block after the highest one in use.
for file in /etc/subuid /etc/subgid; do
  if ! grep -q "^$SANDBOX_USER:" "$file" 2>/dev/null; then
    start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$file" 2>/dev/null || echo 100000)
    echo "$SANDBOX_USER:$start:65536" >> "$file"
  fi
done

install -d -m 0755 /etc/containers
for conf in containers.conf storage.conf; do
  if ! cmp -s "$HERE/$conf" "/etc/containers/$conf"; then
    echo "sandbox host: writing /etc/containers/$conf"
    install -m 0644 "$HERE/$conf" "/etc/containers/$conf"
  fi
done

uid=$(id -u "$SANDBOX_USER")
gid=$(id -g "$SANDBOX_USER")
install -d -m 0755 /run/user
install -d -m 0700 -o "$uid" -g "$gid" "/run/user/$uid" "/run/user/$uid/podman"

echo "sandbox host: ready (user $SANDBOX_USER uid $uid, runtime /run/user/$uid, $(podman --version))"
