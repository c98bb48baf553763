#!/usr/bin/env bash
# Installs tally for a GitHub Actions job (action.yml runs it; it runs anywhere with bash and
# curl). It downloads the release binary built for this runner, checks its SHA-256 against the
# release's SHA256SUMS, and refuses it on any mismatch. Only when no release matches (no such
# release, no asset for this platform) does it build from source with `cargo install`, and says
# so, unless TALLY_BUILD_FALLBACK=false forbids it.
#
# Environment (every variable optional):
#   TALLY_VERSION         vX.Y.Z, X.Y.Z or `latest`. Empty: TALLY_ACTION_REF when it is a
#                         release tag (vX.Y.Z), else `latest`.
#   TALLY_ACTION_REF      the ref the action was used at (`github.action_ref`).
#   TALLY_REPOSITORY      OWNER/NAME of the releases and of the source (tally-dev/tally).
#   TALLY_DOWNLOAD_URL    release assets are at $TALLY_DOWNLOAD_URL/<tag>/<asset>
#                         (https://github.com/$TALLY_REPOSITORY/releases/download).
#   TALLY_API_URL         the API asked for the latest release ($GITHUB_API_URL, else
#                         https://api.github.com). GITHUB_TOKEN, when set, is sent to it only.
#   TALLY_BUILD_FALLBACK  `false`: fail instead of building from source.
#   TALLY_SOURCE_DIR      tally's source tree (the action's own checkout): the fallback builds
#                         it when no version was asked for, else it builds the asked tag from git.
#   TALLY_INSTALL_ROOT    tally goes to $TALLY_INSTALL_ROOT/bin ($RUNNER_TEMP/tally, else
#                         $HOME/.local/tally).
#   RUNNER_OS, RUNNER_ARCH  the platform (GitHub Actions sets them); else `uname`.
# Output: the bin directory is added to $GITHUB_PATH; `version`, `source` (release or build) and
# `path` are written to $GITHUB_OUTPUT when those files are set.
set -euo pipefail

repository="${TALLY_REPOSITORY:-tally-dev/tally}"
download_url="${TALLY_DOWNLOAD_URL:-https://github.com/$repository/releases/download}"
download_url="${download_url%/}"
api_url="${TALLY_API_URL:-${GITHUB_API_URL:-https://api.github.com}}"
api_url="${api_url%/}"
fallback_allowed="${TALLY_BUILD_FALLBACK:-true}"
root="${TALLY_INSTALL_ROOT:-${RUNNER_TEMP:-$HOME/.local}/tally}"
bin="$root/bin"

# Workflow commands are understood inside Actions and readable anywhere else.
notice() { echo "::notice title=tally install::$*"; }
fail() {
    echo "::error title=tally install::$*"
    exit 1
}

# The release target for this platform, or nothing when no release binary is built for it.
target() {
    local os="${RUNNER_OS:-$(uname -s)}" arch="${RUNNER_ARCH:-$(uname -m)}"
    case "$os" in
    Linux | linux) os=unknown-linux-musl ;;
    macOS | Darwin | darwin) os=apple-darwin ;;
    *) return 0 ;;
    esac
    case "$arch" in
    X64 | x86_64 | amd64) arch=x86_64 ;;
    ARM64 | aarch64 | arm64) arch=aarch64 ;;
    *) return 0 ;;
    esac
    echo "$arch-$os"
}

sha256() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        fail "neither sha256sum nor shasum is installed: cannot verify the download"
    fi
}

# GET $1 into the file $2 and print the HTTP status (000 when there was no answer). Transient
# failures are retried by curl; the caller decides what a status means.
fetch() {
    local url="$1" out="$2"
    shift 2
    curl --silent --show-error --location --retry 3 --retry-delay 2 --connect-timeout 20 \
        --output "$out" --write-out '%{http_code}' "$@" "$url" || true
}

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Builds tally with cargo into $root; $1 says why.
build_from_source() {
    local reason="$1"
    if [ "$fallback_allowed" = false ]; then
        fail "$reason, and building from source is turned off (build-fallback: false)"
    fi
    command -v cargo >/dev/null ||
        fail "$reason, and cargo is not installed to build tally from source"
    if [ -n "$asked" ] || [ ! -f "${TALLY_SOURCE_DIR:-}/Cargo.toml" ]; then
        local from=("--git" "https://github.com/$repository")
        [ -n "$tag" ] && from+=("--tag" "$tag")
        notice "$reason: building tally from source instead (cargo install --locked ${from[*]}; this takes several minutes)"
        cargo install --locked --root "$root" "${from[@]}" tally
    else
        notice "$reason: building tally from source instead (cargo install --locked --path $TALLY_SOURCE_DIR; this takes several minutes)"
        cargo install --locked --root "$root" --path "$TALLY_SOURCE_DIR" --bin tally
    fi
    installed build
}

# Records the installed binary for the job and the action's outputs.
installed() {
    local how="$1" version
    version="$("$bin/tally" --version)" || fail "$bin/tally does not run on this runner"
    echo "$version installed in $bin ($how)"
    [ -n "${GITHUB_PATH:-}" ] && echo "$bin" >>"$GITHUB_PATH"
    if [ -n "${GITHUB_OUTPUT:-}" ]; then
        {
            echo "version=${version#tally }"
            echo "source=$how"
            echo "path=$bin/tally"
        } >>"$GITHUB_OUTPUT"
    fi
    exit 0
}

# Which version: asked for, else the action's own release tag, else the latest release.
asked="${TALLY_VERSION:-}"
version="$asked"
if [ -z "$version" ]; then
    if [[ "${TALLY_ACTION_REF:-}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+].*)?$ ]]; then
        version="$TALLY_ACTION_REF"
    else
        version=latest
    fi
fi
tag=""
if [ "$version" = latest ]; then
    auth=() # expanded as ${auth[@]+...}: bash 3 (macOS) calls an empty array unbound
    [ -n "${GITHUB_TOKEN:-}" ] && auth=(--header "Authorization: Bearer $GITHUB_TOKEN")
    status="$(fetch "$api_url/repos/$repository/releases/latest" "$scratch/latest.json" \
        --header 'Accept: application/vnd.github+json' ${auth[@]+"${auth[@]}"})"
    case "$status" in
    200) ;;
    404) build_from_source "$repository has no release yet" ;;
    *) fail "asking $api_url for the latest release of $repository failed (HTTP $status)" ;;
    esac
    tag="$(sed -n 's/^ *"tag_name": *"\([^"]*\)".*/\1/p' "$scratch/latest.json" | head -n 1)"
    [ -n "$tag" ] || fail "the latest release of $repository has no tag_name"
else
    tag="v${version#v}"
fi
number="${tag#v}"

platform="$(target)"
if [ -z "$platform" ]; then
    build_from_source "no release binary is built for ${RUNNER_OS:-$(uname -s)} ${RUNNER_ARCH:-$(uname -m)}"
fi
asset="tally-$number-$platform.tar.gz"

status="$(fetch "$download_url/$tag/SHA256SUMS" "$scratch/SHA256SUMS")"
case "$status" in
200) ;;
404) build_from_source "release $tag of $repository was not found" ;;
*) fail "downloading $download_url/$tag/SHA256SUMS failed (HTTP $status)" ;;
esac
status="$(fetch "$download_url/$tag/$asset" "$scratch/$asset")"
case "$status" in
200) ;;
404) build_from_source "release $tag has no $asset" ;;
*) fail "downloading $download_url/$tag/$asset failed (HTTP $status)" ;;
esac

# The checksum: the asset's line in SHA256SUMS (`HASH  NAME`, or `HASH *NAME` in binary mode).
expected="$(awk -v name="$asset" '$2 == name || $2 == "*" name { print tolower($1); exit }' "$scratch/SHA256SUMS")"
[ -n "$expected" ] || fail "SHA256SUMS of release $tag has no line for $asset: not installing it"
actual="$(sha256 "$scratch/$asset" | tr '[:upper:]' '[:lower:]')"
if [ "$actual" != "$expected" ]; then
    fail "$asset does not match SHA256SUMS of release $tag (expected $expected, got $actual): not installing it"
fi
echo "$asset: SHA-256 $actual matches SHA256SUMS"

mkdir -p "$scratch/unpacked" "$bin"
tar -xzf "$scratch/$asset" -C "$scratch/unpacked"
binary="$scratch/unpacked/tally-$number-$platform/tally"
[ -f "$binary" ] || fail "$asset holds no tally-$number-$platform/tally"
install -m 0755 "$binary" "$bin/tally"
installed release
