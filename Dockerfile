# weir: a multi-stage build to a distroless, non-root image (deploy/gateway.yaml runs it
# with a read-only root filesystem). The binary links glibc dynamically (mimalloc and
# aws-lc-rs build with the C toolchain), so the runtime image is distroless `cc`
# (glibc, CA certificates, no shell), not scratch.
#
#   docker build -t ghcr.io/weir-proxy/weir:latest .
#
# The builder's Rust is the one whose LLVM (22) made pgo/weir.profdata, so the image's
# binary is profile-guided like a local release build (tools/rustc-pgo falls back to an
# ordinary build, a few % slower, under any other LLVM).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p weir \
 && install -D target/release/weir /out/weir

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/weir /usr/local/bin/weir
USER 65532:65532
EXPOSE 80 443 15000
ENTRYPOINT ["/usr/local/bin/weir"]
CMD ["run", "--kubernetes"]
