# tally as a minimal, non-root container image with one static binary.
#   docker build -t tally .
#   docker run --rm -v "$PWD:/work" -w /work tally validate .
FROM rust:1.95-alpine AS build
# perl and make build the vendored OpenSSL that libgit2 (the git source) uses for https.
RUN apk add --no-cache musl-dev perl make
WORKDIR /src
COPY . .
# On Alpine the default target is musl: the binary is static.
RUN cargo build --release --locked --bin tally

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/release/tally /usr/local/bin/tally
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tally"]
CMD ["--help"]
