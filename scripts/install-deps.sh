#!/usr/bin/env bash
# Installs what berth needs beyond the Go toolchain: containerd and runc (the
# agent's runtime), nftables and iproute2 (the network plugin and the labs),
# shellcheck (the tests lint the lab's provisioning scripts).
# Idempotent: installs only what is missing; safe to run on every `make`.
set -euo pipefail

packages=(containerd runc nftables iproute2 shellcheck)
binaries=(containerd runc nft ip shellcheck)

missing=()
for i in "${!packages[@]}"; do
  if ! command -v "${binaries[$i]}" >/dev/null 2>&1; then
    missing+=("${packages[$i]}")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root (or: sudo $0)" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
