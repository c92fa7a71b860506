#!/usr/bin/env bash
# The project's test command (README, .ci/run). Installs what the tests use
# when run as root on Debian, then checks formatting, vets and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tshark >/dev/null || need+=(tshark)                 # IP-byte oracle for the corpus tests
command -v chromium >/dev/null || need+=(chromium)             # renders the HTML report
command -v wireguard-go >/dev/null || need+=(wireguard-go)     # userspace WireGuard for the egress test
command -v ip >/dev/null || need+=(iproute2)                   # namespaces and veth pairs of the kernel tests
command -v tcpreplay >/dev/null || need+=(tcpreplay)           # replays corpus captures through a veth (live parity)
command -v clang >/dev/null || need+=(clang llvm)              # regenerates the BPF objects (must match the committed ones)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -e /usr/include/linux/bpf.h ] || need+=(linux-libc-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${need[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test.sh: ${need[*]} not installed; the tests that use it will say so and skip that part" >&2
  fi
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
# Build helm (pinned in the chart test) up front, so a cold module cache does
# not eat into the chart test's own timeout.
go run "$(sed -n 's/^const helmModule = "\(.*\)"$/\1/p' charts/edgeward/chart_test.go)" version >/dev/null
go test -count=1 "$@" ./...
