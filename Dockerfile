# syntax=docker/dockerfile:1
#
# usher container image.
#
#   docker build -t usher .
#   docker run --rm -p 8080:8080 \
#       -v "$PWD/usher.toml:/etc/usher/usher.toml:ro" \
#       -v "$PWD/usher_keys:/run/secrets/usher_keys:ro" usher
#
# The final stage starts from an empty image and holds only the usher binary,
# exactly the shared libraries it links (found with ldd in the build stage, so
# they always match the glibc it was linked against), CA certificates, and
# passwd/group entries for the unprivileged user 65532. No shell, no package
# manager, no secrets: config and keys are mounted at run time (see
# docs/deploy.md).
#
# BUILDER_IMAGE must be a Debian-based image with a Rust toolchain that builds
# edition 2024, a C compiler, binutils, ldd and CA certificates; the official
# rust image is one. scripts/build-image.sh points it at a locally made image.

ARG BUILDER_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${BUILDER_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY . .
# The registry and target caches make a rebuild after a source edit
# incremental. /out is then assembled as the final root filesystem: the
# stripped binary, the libraries ldd names, CA certificates,
# passwd/group/nsswitch, and a check that the binary starts inside that tree.
RUN --mount=type=cache,id=usher-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=usher-target,sharing=locked,target=/src/target \
    cargo build --release --locked --bin usher \
 && install -D -m 0755 target/release/usher /out/usr/local/bin/usher \
 && strip --strip-all /out/usr/local/bin/usher \
 && ldd /out/usr/local/bin/usher \
      | grep -o '/[^ ]*' | sort -u \
      | xargs -r -I{} cp --parents --dereference {} /out/ \
 && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group \
 && printf 'hosts: files dns\n' > /out/etc/nsswitch.conf \
 && install -d -m 0755 /out/etc/usher /out/run/secrets \
 && install -d -m 0755 -o 65532 -g 65532 /out/home/nonroot \
 && install -d -m 1777 /out/tmp \
 && chroot /out /usr/local/bin/usher --version

FROM scratch
LABEL org.opencontainers.image.title="usher" \
      org.opencontainers.image.description="Authenticating reverse proxy that owns the signed session cookie" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /
USER 65532:65532
ENV USHER_CONFIG=/etc/usher/usher.toml
# 8080: the proxy ([server] listen). 9090: the admin listener ([admin] listen:
# /healthz, /readyz, /metrics); it binds 127.0.0.1 unless configured otherwise.
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/usher", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/usher"]
CMD ["run"]
