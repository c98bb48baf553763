#!/usr/bin/env bash
# Tests action/install.sh against fake releases served by a local HTTP server
# (`python3 -m http.server` on 127.0.0.1), with a stub `tally` in the tarballs and a stub `cargo`
# on PATH: nothing leaves the machine and it takes a few seconds. Run: bash action/test-install.sh
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
install_sh="$here/install.sh"
tmp="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
pass() { echo "ok: $1"; }
failed() {
    echo "FAILED: $1"
    failures=$((failures + 1))
}

sha256() {
    if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# A fake release: one tarball per target, each holding tally-VERSION-TARGET/tally (a stub that
# prints its version), and SHA256SUMS over them.
www="$tmp/www"
release() {
    local number="${1#v}" dir="$www/releases/download/$1" target
    mkdir -p "$dir"
    for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin; do
        local name="tally-$number-$target"
        mkdir -p "$tmp/pack/$name"
        printf '#!/bin/sh\necho "tally %s"\n' "$number" >"$tmp/pack/$name/tally"
        chmod +x "$tmp/pack/$name/tally"
        tar -czf "$dir/$name.tar.gz" -C "$tmp/pack" "$name"
        echo "$(sha256 "$dir/$name.tar.gz")  $name.tar.gz" >>"$dir/SHA256SUMS"
    done
    echo "$dir"
}
release v9.9.9 >/dev/null
release v8.0.0 >/dev/null
# v6.6.6: the Linux x86_64 tarball was replaced after SHA256SUMS was written.
tampered="$(release v6.6.6)"
printf '#!/bin/sh\necho "tally 6.6.6 (not the one released)"\n' >"$tmp/pack/tally-6.6.6-x86_64-unknown-linux-musl/tally"
tar -czf "$tampered/tally-6.6.6-x86_64-unknown-linux-musl.tar.gz" -C "$tmp/pack" tally-6.6.6-x86_64-unknown-linux-musl
# v5.0.0: SHA256SUMS has no line for the Linux x86_64 tarball.
unlisted="$(release v5.0.0)"
grep -v x86_64-unknown-linux-musl "$unlisted/SHA256SUMS" >"$tmp/sums" && mv "$tmp/sums" "$unlisted/SHA256SUMS"
# The API's answer for the latest release.
mkdir -p "$www/api/repos/tally-dev/tally/releases"
printf '{\n  "url": "https://api.github.com/repos/tally-dev/tally/releases/1",\n  "tag_name": "v9.9.9",\n  "name": "v9.9.9"\n}\n' \
    >"$www/api/repos/tally-dev/tally/releases/latest"

# A stub cargo: records its arguments and "builds" tally into --root.
mkdir -p "$tmp/stub-bin"
cat >"$tmp/stub-bin/cargo" <<'EOF'
#!/bin/sh
echo "$@" >"$CARGO_LOG"
root=""
while [ $# -gt 0 ]; do
    if [ "$1" = --root ]; then root="$2"; fi
    shift
done
mkdir -p "$root/bin"
printf '#!/bin/sh\necho "tally 0.0.0-built"\n' >"$root/bin/tally"
chmod +x "$root/bin/tally"
EOF
chmod +x "$tmp/stub-bin/cargo"

python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$www" >"$tmp/http.log" 2>&1 &
server=$!
port=""
for _ in $(seq 50); do
    port="$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$tmp/http.log" | head -n 1)"
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || {
    cat "$tmp/http.log"
    echo "FAILED: the HTTP server did not start"
    exit 1
}
base="http://127.0.0.1:$port"

# Runs install.sh in a clean environment for case $1; extra VAR=value pairs follow. Leaves its
# output in $tmp/$1/out, its status in $code and its files in $tmp/$1.
run() {
    local name="$1" dir="$tmp/$1"
    shift
    mkdir -p "$dir"
    : >"$dir/path"
    : >"$dir/output"
    code=0
    env -i PATH="$tmp/stub-bin:/usr/local/bin:/usr/bin:/bin" HOME="$dir" \
        NO_PROXY='*' CARGO_LOG="$dir/cargo.log" \
        RUNNER_OS=Linux RUNNER_ARCH=X64 RUNNER_TEMP="$dir" \
        GITHUB_PATH="$dir/path" GITHUB_OUTPUT="$dir/output" \
        TALLY_DOWNLOAD_URL="$base/releases/download" TALLY_API_URL="$base/api" \
        "$@" bash "$install_sh" >"$dir/out" 2>&1 || code=$?
}
expect() { # case, description, then a command that must succeed
    local name="$1" what="$2"
    shift 2
    if "$@"; then pass "$name: $what"; else
        failed "$name: $what"
        sed 's/^/    | /' "$tmp/$name/out"
    fi
}
installed() { [ "$("$tmp/$1/tally/bin/tally")" = "tally $2" ]; }
says() { grep -q -- "$2" "$tmp/$1/out"; }

run pinned TALLY_VERSION=v9.9.9
expect pinned "exit 0" test "$code" -eq 0
expect pinned "the release binary is installed" installed pinned 9.9.9
expect pinned "its checksum was verified" says pinned "SHA-256 .* matches SHA256SUMS"
expect pinned "its directory is added to GITHUB_PATH" grep -qx "$tmp/pinned/tally/bin" "$tmp/pinned/path"
expect pinned "outputs: version, source, path" grep -qx "version=9.9.9" "$tmp/pinned/output"
expect pinned "outputs: source=release" grep -qx "source=release" "$tmp/pinned/output"
expect pinned "cargo is not run" test ! -e "$tmp/pinned/cargo.log"

run bare-number TALLY_VERSION=8.0.0 RUNNER_OS=macOS RUNNER_ARCH=ARM64
expect bare-number "8.0.0 means the tag v8.0.0; macOS ARM64 gets aarch64-apple-darwin" installed bare-number 8.0.0
expect bare-number "the asset's name" says bare-number "tally-8.0.0-aarch64-apple-darwin.tar.gz: SHA-256"

run uname TALLY_VERSION=v8.0.0 RUNNER_OS= RUNNER_ARCH=
expect uname "without RUNNER_OS and RUNNER_ARCH, uname names the platform" test "$code" -eq 0

run action-ref TALLY_ACTION_REF=v8.0.0
expect action-ref "no version asked: the action's own release tag" installed action-ref 8.0.0

run latest TALLY_ACTION_REF=v1
expect latest "a ref that is not a release tag (v1): the latest release" installed latest 9.9.9

run mismatch TALLY_VERSION=v6.6.6
expect mismatch "a checksum mismatch fails" test "$code" -ne 0
expect mismatch "and says so" says mismatch "does not match SHA256SUMS"
expect mismatch "nothing is installed" test ! -e "$tmp/mismatch/tally/bin/tally"
expect mismatch "nothing is added to GITHUB_PATH" test ! -s "$tmp/mismatch/path"
expect mismatch "no build from source" test ! -e "$tmp/mismatch/cargo.log"

run unlisted TALLY_VERSION=v5.0.0
expect unlisted "an asset missing from SHA256SUMS is refused" test "$code" -ne 0
expect unlisted "and says so" says unlisted "has no line for tally-5.0.0-x86_64-unknown-linux-musl.tar.gz"
expect unlisted "nothing is installed" test ! -e "$tmp/unlisted/tally/bin/tally"

run missing TALLY_VERSION=v1.2.3
expect missing "a missing release falls back to a build" test "$code" -eq 0
expect missing "with a clear notice" says missing "::notice title=tally install::release v1.2.3 of tally-dev/tally was not found: building tally from source"
expect missing "cargo install of the asked tag" grep -qx -- "install --locked --root $tmp/missing/tally --git https://github.com/tally-dev/tally --tag v1.2.3 tally" "$tmp/missing/cargo.log"
expect missing "the built binary is installed" installed missing 0.0.0-built
expect missing "outputs: source=build" grep -qx "source=build" "$tmp/missing/output"

mkdir -p "$tmp/source" && touch "$tmp/source/Cargo.toml"
run no-release TALLY_REPOSITORY=someone/fork TALLY_SOURCE_DIR="$tmp/source"
expect no-release "a repository with no release builds the action's own source" \
    grep -qx -- "install --locked --root $tmp/no-release/tally --path $tmp/source --bin tally" "$tmp/no-release/cargo.log"
expect no-release "and says why" says no-release "someone/fork has no release yet"

run windows TALLY_VERSION=v9.9.9 RUNNER_OS=Windows
expect windows "a platform with no release binary builds from source" says windows "no release binary is built for Windows X64"

run forbidden TALLY_VERSION=v1.2.3 TALLY_BUILD_FALLBACK=false
expect forbidden "the fallback can be forbidden" test "$code" -ne 0
expect forbidden "and says so" says forbidden "building from source is turned off"
expect forbidden "cargo is not run" test ! -e "$tmp/forbidden/cargo.log"

run no-cargo TALLY_VERSION=v1.2.3 PATH=/usr/bin:/bin
expect no-cargo "a fallback without cargo fails clearly" says no-cargo "cargo is not installed"

run unreachable TALLY_VERSION=v9.9.9 TALLY_DOWNLOAD_URL=http://127.0.0.1:1
expect unreachable "a download that gets no answer fails" test "$code" -ne 0
expect unreachable "and says so" says unreachable "failed (HTTP 000)"
expect unreachable "it is not taken for a missing release: no build" test ! -e "$tmp/unreachable/cargo.log"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all install checks passed"
