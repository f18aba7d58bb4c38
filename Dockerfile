# ssm-session-audit as a container image: the release binary and nothing else,
# for the scheduled scan (`ssm-session-audit schedule`, ECS Fargate).
#
#   docker build --platform linux/amd64 -t ssm-session-audit:0.1.0 .
#   docker run --rm ssm-session-audit:0.1.0 --help
#
# Stage 1 builds with the official Rust image of the crate's rust-version
# (Cargo.toml), on Debian 12 so the binary's glibc matches the runtime image.
FROM rust:1.94-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ssm-session-audit

# Stage 2: distroless "cc" (glibc, libgcc, CA certificates; no shell, no
# package manager), as its non-root user (65532, "nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ssm-session-audit /usr/local/bin/ssm-session-audit
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ssm-session-audit"]
CMD ["--help"]
