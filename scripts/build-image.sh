#!/usr/bin/env bash
# Build the usher container image from ./Dockerfile on a machine with no
# Docker engine and no access to container registries, then prove that the
# binary in it starts.
#
# What it does (each step is skipped when its result already exists):
#   1. installs debootstrap and podman (Debian packages) if missing;
#   2. debootstraps a minimal Debian bookworm root filesystem and imports it
#      as localhost/debian-local:bookworm;
#   3. makes a builder image from it: gcc, libc6-dev, binutils and CA
#      certificates from the Debian mirror, plus this machine's own Rust
#      toolchain (the sysroot `rustc --print sysroot` names) copied in, since
#      Debian's rustc is too old for edition 2024 and rust:* cannot be pulled,
#      plus this machine's CA bundle for cargo alone (CARGO_HTTP_CAINFO), in
#      case outgoing TLS is intercepted by a local CA;
#   4. podman build --isolation chroot of ./Dockerfile with BUILDER_IMAGE
#      pointed at that image (cargo fetches crates from crates.io during the
#      build; the registry and target dirs are build caches, so a rebuild
#      after a source edit only recompiles usher);
#   5. mounts the image read-only and runs `usher --version` in it with
#      chroot as the image's user (podman run does not work here), and
#      prints the image size.
#
# Needs root (debootstrap, chroot, rootful podman) and, on the first run,
# the Debian mirror and crates.io. The Dockerfile's defaults stay the public
# images, so `docker build .` elsewhere needs none of this.
#
# Environment:
#   USHER_IMAGE        tag to build      (default localhost/usher:<version>,
#                                         also tagged localhost/usher:latest)
#   USHER_IMAGE_WORK   rootfs and builder context (default /var/tmp/usher-image)
#   DEBIAN_MIRROR      (default http://deb.debian.org/debian)
#   REBUILD_BASE=1     redo the rootfs, base and builder images
#   KEEP_BUILDER=1     keep the rootfs, the base and builder images and the
#                      build stages afterwards (about 2.4 GB; a rebuild then
#                      takes seconds instead of minutes). By default they
#                      are removed once the image is proved.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
start=$SECONDS

work=${USHER_IMAGE_WORK:-/var/tmp/usher-image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
base_image=localhost/debian-local:$suite
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
image=${USHER_IMAGE:-localhost/usher:$version}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and rootful podman need it)"

# 1. Tools.
need=()
for pkg in debootstrap podman; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}"
fi

mkdir -p "$work"
if [ "${REBUILD_BASE:-0}" = 1 ]; then
    say "REBUILD_BASE=1: discarding the rootfs and the local base images"
    rm -rf "$work/rootfs" "$work/rootfs.ok"
    podman image rm --force "$base_image" >/dev/null 2>&1 || true
fi

# 2. Base image: a minimal Debian root filesystem. rootfs.ok is written only
# after debootstrap succeeds, so an interrupted run starts it over.
if ! podman image exists "$base_image"; then
    if [ ! -e "$work/rootfs.ok" ]; then
        say "debootstrap --variant=minbase $suite (about a minute)"
        rm -rf "$work/rootfs"
        debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
            || die "debootstrap failed; see $work/debootstrap.log"
        touch "$work/rootfs.ok"
    fi
    say "importing the rootfs as $base_image"
    tar --numeric-owner -C "$work/rootfs" \
        --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' \
        -c . | podman import - "$base_image" >/dev/null
fi

# 3. Builder image: the base plus a C toolchain plus the host's Rust
# toolchain, tagged with the rustc version so a toolchain update makes a new
# one. Same layout as the official rust image (CARGO_HOME=/usr/local/cargo),
# which the Dockerfile's cache mount relies on.
sysroot=$(rustc --print sysroot)
rust_version=$(rustc --version | awk '{print $2}')
builder_image=localhost/usher-builder:rust-$rust_version
if [ "${REBUILD_BASE:-0}" = 1 ]; then
    podman image rm --force "$builder_image" >/dev/null 2>&1 || true
fi
if ! podman image exists "$builder_image"; then
    say "making $builder_image from $base_image and $sysroot"
    ctx="$work/builder"
    rm -rf "$ctx"
    mkdir -p "$ctx/toolchain"
    # bin and lib are the whole toolchain; share/ is documentation. Hard
    # links when on the same filesystem, else a copy.
    cp -al "$sysroot/bin" "$sysroot/lib" "$ctx/toolchain/" 2>/dev/null \
        || cp -a "$sysroot/bin" "$sysroot/lib" "$ctx/toolchain/"
    if [ -d "$sysroot/libexec" ]; then cp -a "$sysroot/libexec" "$ctx/toolchain/"; fi
    # The CA bundle this machine trusts, for cargo only: where outgoing TLS
    # is intercepted by a local CA, Debian's bundle alone cannot reach
    # crates.io. It sits outside /etc/ssl, so the image ships Debian's
    # bundle, not this one.
    cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/host-ca.crt"
    cat >"$ctx/Containerfile" <<CONTAINERFILE
FROM $base_image
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      ca-certificates gcc libc6-dev binutils \\
 && rm -rf /var/lib/apt/lists/*
COPY toolchain/ /usr/local/rust/
COPY host-ca.crt /usr/local/share/host-ca/ca-certificates.crt
ENV CARGO_HOME=/usr/local/cargo \\
    CARGO_HTTP_CAINFO=/usr/local/share/host-ca/ca-certificates.crt \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN rustc --version && cargo --version
CONTAINERFILE
    podman build --isolation chroot --pull=never -t "$builder_image" "$ctx"
    rm -rf "$ctx"
fi

# 4. The image itself, from the repository's Dockerfile. --format docker
# keeps HEALTHCHECK (the OCI image format has no field for it).
say "building $image"
build_start=$SECONDS
podman build --isolation chroot --pull=never --format docker \
    --build-arg "BUILDER_IMAGE=$builder_image" \
    -t "$image" -t localhost/usher:latest \
    -f Dockerfile "$repo"
say "podman build took $((SECONDS - build_start))s"

# 5. Prove it: mount the image read-only and start the binary as the image's
# user, with nothing but the image's own files.
user=$(podman image inspect --format '{{.Config.User}}' "$image")
mnt=$(podman image mount "$image")
trap 'podman image unmount "$image" >/dev/null 2>&1 || true' EXIT
say "usher --version inside the image (chroot, user $user):"
chroot --userspec="$user" "$mnt" /usr/local/bin/usher --version
chroot --userspec="$user" "$mnt" /usr/local/bin/usher gen-secret >/dev/null \
    || die "usher gen-secret failed inside the image"
say "image contents:"
(cd "$mnt" && find . -type f -o -type l | sort | sed 's/^\./  /')
say "entrypoint/cmd/user/healthcheck:"
podman image inspect --format \
    '  {{.Config.Entrypoint}} {{.Config.Cmd}} user={{.Config.User}} healthcheck={{.Config.Healthcheck.Test}}' \
    "$image"
size=$(podman image inspect --format '{{.Size}}' "$image")
say "image $image: $size bytes ($(numfmt --to=iec --suffix=B "$size")), built in $((SECONDS - start))s"

# 6. Clean up what only the build needed, unless asked to keep it.
if [ "${KEEP_BUILDER:-0}" != 1 ]; then
    podman image unmount "$image" >/dev/null 2>&1 || true
    trap - EXIT
    say "removing $builder_image, $base_image, dangling build stages and $work/rootfs (KEEP_BUILDER=1 keeps them)"
    podman image rm --force "$builder_image" "$base_image" >/dev/null 2>&1 || true
    podman image prune --force >/dev/null 2>&1 || true
    rm -rf "$work/rootfs" "$work/rootfs.ok"
fi
