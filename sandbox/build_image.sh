#!/usr/bin/env bash
# Build the sandbox image from Debian packages only (nothing is pulled from a registry):
# debootstrap a minimal bookworm with python3 (plus any extra packages), then `docker import` it.
# Usage: build_image.sh [TAG] [EXTRA_PACKAGES]   e.g. build_image.sh rlvr-sandbox:py3-numpy python3-numpy
set -euo pipefail
tag="${1:-rlvr-sandbox:py3-bookworm-v1}"
extra="${2:-}"
mirror="${RLVR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="python3${extra:+,$extra}"
for tool in debootstrap docker; do
    command -v "$tool" >/dev/null || { echo "build_image.sh: $tool is missing; run bash scripts/setup_sandbox.sh" >&2; exit 1; }
done
rootfs="$(mktemp -d /tmp/rlvr-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "==> debootstrap bookworm (minbase + $packages) from $mirror"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; echo "build_image.sh: debootstrap failed (log above)" >&2; exit 1; }
rm -f "$rootfs.log"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
echo "==> docker import as $tag"
tar -C "$rootfs" -c . | docker import --change 'CMD ["python3"]' - "$tag" >/dev/null
docker run --rm --network none "$tag" python3 -c 'import sys; print("image ok: python", sys.version.split()[0])'
