#!/usr/bin/env bash
# Set up what the sandbox needs on this machine (as root): Debian's docker.io, bubblewrap, debootstrap and python3;
# a running dockerd (flags that work on machines without iptables or a bridge); and the sandbox image.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${RLVR_SANDBOX_IMAGE:-rlvr-sandbox:py3-bookworm-v1}"

if [ "$(id -u)" != 0 ]; then
    echo "setup_sandbox.sh must run as root (it installs packages and starts dockerd)" >&2
    exit 1
fi
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/python3 ] || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "==> apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    echo "==> starting dockerd"
    mkdir -p /var/log/rlvr
    nohup dockerd --iptables=false --ip-masq=false --bridge=none >/var/log/rlvr/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -20 /var/log/rlvr/dockerd.log >&2; echo "dockerd did not start" >&2; exit 1; }
fi

if ! docker image inspect "$tag" >/dev/null 2>&1; then
    echo "==> building the sandbox image $tag (about a minute)"
    bash sandbox/build_image.sh "$tag"
fi
echo "==> sandbox ready: docker $(docker version --format '{{.Server.Version}}'), image $tag, $(bwrap --version)"
