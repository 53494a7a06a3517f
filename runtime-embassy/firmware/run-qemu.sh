#!/usr/bin/env bash
# Builds the clusterer firmware for a node configuration (if needed) and boots it under QEMU
# on mps2-an386, its LAN9118 attached to an existing TAP device. Installs nothing:
# qemu-system-arm and the thumbv7em-none-eabihf target must be there.
#
#   run-qemu.sh --config FILE --tap NAME --ip CIDR [--gateway IP] [--build-only]
#
#   --config FILE   the node's `clusterer run` TOML (db_mode 0, embedded keys only)
#   --tap NAME      the TAP device (ip tuntap add dev NAME mode tap); needs root
#   --ip CIDR       the node's address and prefix, e.g. 10.42.0.3/24 (its local URL's IP)
#   --gateway IP    default gateway
#   --build-only    build the image and print its path, do not boot it
#
# The firmware prints its event lines on stdout (UART0); stop it with Ctrl-C or a signal.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
config='' tap='' ip='' gateway='' build_only=0
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=${2:?--config needs a FILE}; shift 2 ;;
    --tap) tap=${2:?--tap needs a NAME}; shift 2 ;;
    --ip) ip=${2:?--ip needs a CIDR}; shift 2 ;;
    --gateway) gateway=${2:?--gateway needs an IP}; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run-qemu.sh: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$config" ] || { echo "run-qemu.sh: --config FILE is required" >&2; usage; }
[ -n "$ip" ] || { echo "run-qemu.sh: --ip CIDR is required" >&2; usage; }
[ -f "$config" ] || { echo "run-qemu.sh: no such file: $config" >&2; exit 2; }
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")

(cd "$here" && CLUSTERER_CONFIG="$config" CLUSTERER_IP="$ip" CLUSTERER_GATEWAY="$gateway" \
  cargo build --release --locked --quiet)
elf="$here/target/thumbv7em-none-eabihf/release/clusterer-firmware"
if [ "$build_only" = 1 ]; then echo "$elf"; exit 0; fi

[ -n "$tap" ] || { echo "run-qemu.sh: --tap NAME is required" >&2; usage; }
command -v qemu-system-arm >/dev/null || {
  echo "run-qemu.sh: qemu-system-arm is not installed (Debian: qemu-system-arm)" >&2; exit 2; }
exec qemu-system-arm -M mps2-an386 -display none -monitor none -serial stdio \
  -semihosting-config enable=on,target=native \
  -nic "tap,ifname=$tap,script=no,downscript=no,model=lan9118" \
  -kernel "$elf"
