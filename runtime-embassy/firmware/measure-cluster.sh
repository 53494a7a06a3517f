#!/usr/bin/env bash
# Measures the firmware in a cluster of N nodes (default 16): N-1 `clusterer run` daemons
# (release build) and the firmware as node 3 under QEMU, in a network namespace this script
# creates and always deletes. Prints the image size, then the firmware's heap report after
# SECONDS (default 60) and the node up/down event counts. Root, qemu-system-arm and
# arm-none-eabi-size needed; installs nothing. For BENCHMARKS.md.
#
#   runtime-embassy/firmware/measure-cluster.sh [NODES] [SECONDS]
set -euo pipefail
nodes=${1:-16}
wait_s=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ "$nodes" -ge 3 ] && [ "$nodes" -le 200 ] || { echo "NODES must be 3..200" >&2; exit 2; }
ns="clusterer-measure-$$"
tap="cmeas$(( $$ % 100000 ))"
dir=$(mktemp -d)
cleanup() {
  pkill -f "$dir/" 2>/dev/null || true            # the daemons (their config paths)
  pkill -f "ifname=$tap," 2>/dev/null || true     # QEMU
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

(cd "$root" && cargo build --release --locked --quiet -p clusterer-tokio --bin clusterer)
ids="1 2 $(seq 4 "$nodes")"
priority() { if [ "$1" = 3 ]; then echo 1; else echo $((10 + $1)); fi; }
for me in $ids 3; do
  nb=""
  for n in $ids 3; do
    [ "$n" = "$me" ] && continue
    nb="$nb\"cluster_id=1, node_id=$n, url=bin:10.214.0.$n:5566, priority=$(priority "$n")\", "
  done
  {
    echo "my_node_id = $me"
    echo "db_mode = 0"
    echo "my_node_info = \"cluster_id=1, url=bin:10.214.0.$me:5566, priority=$(priority "$me")\""
    echo "neighbor_node_info = [${nb%, }]"
    echo 'sharing_tag = "vip/1=backup,election,preempt"'
    if [ "$me" != 3 ]; then
      printf '\n[mi]\nlisten = "127.0.0.1:%s"\n\n[metrics]\nenabled = false\n' $((9000 + me))
    fi
  } > "$dir/n$me.toml"
done
"$here/run-qemu.sh" --config "$dir/n3.toml" --ip 10.214.0.3/24 --build-only >/dev/null
arm-none-eabi-size "$here/target/thumbv7em-none-eabihf/release/clusterer-firmware"

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ip tuntap add dev "$tap" mode tap
ip link set "$tap" netns "$ns"
for n in $ids; do ip netns exec "$ns" ip addr add "10.214.0.$n/24" dev "$tap"; done
ip netns exec "$ns" ip link set "$tap" up
for n in $ids; do
  ip netns exec "$ns" "$root/target/release/clusterer" run --config "$dir/n$n.toml" \
    > "$dir/d$n.log" 2>&1 &
done
ip netns exec "$ns" "$here/run-qemu.sh" --config "$dir/n3.toml" --tap "$tap" \
  --ip 10.214.0.3/24 > "$dir/firmware.out" 2>&1 &
sleep "$wait_s"
echo "after ${wait_s}s with $nodes nodes:"
grep -E '^heap|^fatal' "$dir/firmware.out" | tail -1 || echo "no heap report"
echo "node_up events: $(grep -c '^node_up' "$dir/firmware.out" || true)," \
  "node_down events: $(grep -c '^node_down' "$dir/firmware.out" || true)"
grep '^tag_changed' "$dir/firmware.out" | tail -1 || true
