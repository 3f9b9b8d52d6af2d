#!/usr/bin/env bash
# Vendors the web console's chart library into server/assets/console/vendor/: uPlot, pinned
# to one exact version, fetched from the npm registry with the npm client (`npm pack`) and
# refused unless its sha256 matches the one recorded here. Writes uPlot.iife.min.js,
# uPlot.min.css and the library's LICENSE (MIT), which are committed; the server embeds
# them (include_str!), so users need no build step and the console makes no network fetch.
# Run it only to change the version (then update VERSION and SHA256 together).
set -euo pipefail

VERSION=1.6.32
SHA256=4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/server/assets/console/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "uplot@$VERSION" >/dev/null)
tgz="$work/uplot-$VERSION.tgz"
got="$(sha256sum "$tgz" | cut -d' ' -f1)"
if [ "$got" != "$SHA256" ]; then
  echo "vendor-console: uplot-$VERSION.tgz has sha256 $got, expected $SHA256; nothing changed" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$work" package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$dest/"
cp "$work/package/LICENSE" "$dest/uPlot.LICENSE"
echo "uplot $VERSION sha256 $SHA256" > "$dest/VERSIONS"
echo "vendor-console: uPlot $VERSION vendored into ${dest#"$root"/}"
