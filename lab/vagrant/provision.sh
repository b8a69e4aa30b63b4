#!/usr/bin/env bash
# Provision one berth lab VM (run by the Vagrantfile as root):
#   provision.sh ROLE INDEX ADDR SERVER_IPS
# ROLE is server or agent, ADDR this VM's private address, SERVER_IPS the
# servers' addresses, comma-separated. Installs containerd, runc and
# nftables, puts the locally built berth (bin/berth in the synced folder)
# in /usr/local/bin, renders /etc/berth/ROLE.hcl from lab/config (the
# templates the netns lab uses too) and starts the systemd unit from
# lab/systemd.
set -euo pipefail

role=${1:?usage: provision.sh ROLE INDEX ADDR SERVER_IPS}
index=${2:?missing INDEX}
addr=${3:?missing ADDR}
servers=${4:?missing SERVER_IPS}
src=${BERTH_SRC:-/vagrant}

case "$role" in
server | agent) ;;
*)
	echo "provision.sh: unknown role '$role' (server or agent)" >&2
	exit 2
	;;
esac

if [[ ! -x "$src/bin/berth" ]]; then
	echo "provision.sh: $src/bin/berth is missing: run 'make build' on the host, then 'vagrant provision'" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
packages=(nftables iproute2 ca-certificates)
if [[ "$role" == agent ]]; then
	packages+=(containerd runc)
fi
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

install -m 0755 "$src/bin/berth" /usr/local/bin/berth
install -d -m 0755 /etc/berth
install -d -m 0700 /var/lib/berth

render=(/usr/local/bin/berth lab render-config -role "$role" -index "$index" -addr "$addr"
	-servers "$servers" -data-dir /var/lib/berth -out "/etc/berth/$role.hcl")
if [[ "$role" == agent ]]; then
	systemctl enable --now containerd
	render+=(-containerd-address /run/containerd/containerd.sock -containerd-namespace berth)
fi
"${render[@]}"

install -m 0644 "$src/lab/systemd/berth-$role.service" "/etc/systemd/system/berth-$role.service"
systemctl daemon-reload
systemctl enable "berth-$role.service"
# A re-provision picks up a new binary and config.
systemctl restart "berth-$role.service"

echo "berth $role-$index provisioned at $addr: systemctl status berth-$role; config /etc/berth/$role.hcl"
