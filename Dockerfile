# tally as a minimal, non-root container image with one static binary.
#   docker build -t tally .
#   docker run --rm -v "$PWD:/work" -w /work tally validate .
# `--target runner-init` builds the image of deploy/runner/'s init container (below).
FROM rust:1.95-alpine AS build
# perl and make build the vendored OpenSSL that libgit2 (the git source) uses for https.
RUN apk add --no-cache musl-dev perl make
WORKDIR /src
COPY . .
# On Alpine the default target is musl: the binary is static.
RUN cargo build --release --locked --bin tally

# For other images' containers: deploy/runner/'s init container copies /usr/local/bin/tally into
# a volume that the runner container shares, so any runner image gets tally. The final image has
# no `cp` (nor anything else), so this one is BusyBox (static, musl) plus the same binary.
#   docker build --target runner-init -t tally:runner-init .
FROM busybox:1.36.1-musl AS runner-init
COPY --from=build /src/target/release/tally /usr/local/bin/tally
USER 65532:65532

# The image itself (the last stage is what `docker build .` builds).
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/release/tally /usr/local/bin/tally
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tally"]
CMD ["--help"]
