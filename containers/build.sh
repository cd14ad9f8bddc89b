#!/usr/bin/env bash
# Build an interlat image with podman from the one recipe containers/Dockerfile,
# optionally over a locally made Debian base, and optionally export it as a
# docker-archive (what `apptainer build x.sif docker-archive://x.tar` and `docker
# load` consume).
#
# Usage: containers/build.sh [options] [-- extra podman build args]
#   --variant cpu|cuda   which torch (build arg TORCH_BUILD; default cpu): cpu = the
#                        CPU wheel, cuda = PyPI's torch (the CUDA build, ~3 GB of
#                        nvidia-* wheels); image interlat-<variant>
#   --local-base         build FROM localhost/debian-base:bookworm, made here with
#                        debootstrap (for hosts that cannot reach a registry);
#                        the rootfs tarball is cached in $INTERLAT_BASE_CACHE
#                        (default /var/tmp/interlat-base) so reruns skip debootstrap
#   --base REF           build FROM this image instead (default: the recipe's ARG BASE)
#   --tag REF            image name (default localhost/interlat-<variant>:<version>)
#   --save FILE.tar      also write `podman save --format docker-archive`
#   --info FILE.json     write build facts (image id, size, build seconds, URI) as JSON
#   --runtime NAME       OCI runtime for the build (default runc; crun fails on
#                        this project's CI hosts' mixed cgroup setup)
#
# Environment:
#   TORCH_WHEEL_DIR      directory holding torch-<ver>+cpu-*.whl, bind-mounted into the
#                        CPU build (default: the first pip find-links directory that
#                        has one; else the Dockerfile pulls torch from the PyTorch index)
#   DEBIAN_MIRROR        mirror for debootstrap (default: from /etc/apt sources)
#   INTERLAT_BASE_CACHE  cache directory for the debootstrap tarball
#
# Extra args go to `podman build`, e.g. `-- --target python` for the stage without
# the package (then the marker /opt/interlat/IMAGE is absent and reported empty).
#
# Prints one line `image_id=... size_bytes=... build_seconds=...` at the end.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

variant=cpu
local_base=0
base=""
tag=""
save=""
info=""
runtime=runc
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --variant) variant="$2"; shift 2 ;;
        --local-base) local_base=1; shift ;;
        --base) base="$2"; shift 2 ;;
        --tag) tag="$2"; shift 2 ;;
        --save) save="$2"; shift 2 ;;
        --info) info="$2"; shift 2 ;;
        --runtime) runtime="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

case "$variant" in
    cpu|cuda) ;;
    *) echo "build.sh: --variant must be cpu or cuda, not '$variant'" >&2; exit 2 ;;
esac
dockerfile="$here/Dockerfile"
[ -f "$dockerfile" ] || { echo "build.sh: no $dockerfile" >&2; exit 2; }
command -v podman >/dev/null || { echo "build.sh: podman not found (.ci/install-system-deps.sh)" >&2; exit 2; }

log() { echo "build.sh: $*" >&2; }

version="$(python3 -c "import tomllib; print(tomllib.load(open('$root/pyproject.toml','rb'))['project']['version'])")"
image_name="interlat-$variant"
tag="${tag:-localhost/$image_name:$version}"

# --- local Debian base ---------------------------------------------------------
base_ref=localhost/debian-base:bookworm
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local m=""
    if [ -f /etc/apt/sources.list ]; then
        m="$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)"
    fi
    if [ -z "$m" ] && ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
        # deb822: the URIs of the first stanza whose Suites include plain "bookworm".
        m="$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |\n|$)/ {
                 match($0, /URIs: *[^ \n]+/); print substr($0, RSTART+5, RLENGTH-5); exit }' \
             /etc/apt/sources.list.d/*.sources | tr -d ' ')"
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

make_local_base() {
    local cache="${INTERLAT_BASE_CACHE:-/var/tmp/interlat-base}"
    local tarball="$cache/debian-bookworm-minbase.tar"
    if podman image exists "$base_ref"; then
        log "base $base_ref already present"
        return
    fi
    if [ ! -s "$tarball" ]; then
        command -v debootstrap >/dev/null || { log "debootstrap not found"; exit 2; }
        mkdir -p "$cache"
        local dir mirror
        dir="$(mktemp -d "$cache/rootfs.XXXXXX")"
        mirror="$(debian_mirror)"
        log "debootstrap bookworm from $mirror into $dir"
        debootstrap --variant=minbase \
            --include=python3,python3-venv,python3-pip,ca-certificates \
            bookworm "$dir" "$mirror" >&2
        # Drop what only the bootstrap needed; the Dockerfile runs apt-get update.
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin \
            "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* \
            "$dir"/var/log/*.log "$dir"/var/log/apt/*
        tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$dir"
    else
        log "reusing cached $tarball"
    fi
    podman import --change 'CMD ["/bin/bash"]' "$tarball" "$base_ref" >/dev/null
    log "imported $base_ref"
}

build_args=(--build-arg "TORCH_BUILD=$variant"
            --build-arg "IMAGE_NAME=$image_name" --build-arg "IMAGE_VERSION=$version")
if [ "$local_base" -eq 1 ]; then
    make_local_base
    base="$base_ref"
fi
if [ -n "$base" ]; then
    build_args+=(--build-arg "BASE=$base")
fi

# --- the local CPU torch wheel (kept out of layers by a bind mount) --------------
torch_version="$(python3 -c "
import re, tomllib
deps = tomllib.load(open('$root/pyproject.toml', 'rb'))['project']['dependencies']
print(next(re.sub(r'^torch==', '', d) for d in deps if d.startswith('torch==')))")"
find_wheel_dir() {
    local d candidates=()
    [ -n "${TORCH_WHEEL_DIR:-}" ] && candidates+=("$TORCH_WHEEL_DIR")
    # shellcheck disable=SC2206
    [ -n "${PIP_FIND_LINKS:-}" ] && candidates+=($PIP_FIND_LINKS)
    if command -v pip >/dev/null; then
        # shellcheck disable=SC2207
        candidates+=($(pip config list 2>/dev/null | sed -n "s/^[^=]*find-links='\(.*\)'$/\1/p"))
    fi
    for d in "${candidates[@]}"; do
        d="${d#file://}"
        if ls "$d"/torch-"$torch_version"+cpu-*.whl >/dev/null 2>&1; then
            echo "$d"
            return
        fi
    done
}
if [ "$variant" = cpu ]; then
    wheel_dir="$(find_wheel_dir || true)"
    if [ -n "$wheel_dir" ]; then
        log "torch wheel from $wheel_dir (bind-mounted, not copied)"
        build_args+=(--build-context "wheels=$wheel_dir")
    else
        log "no local torch-$torch_version+cpu wheel: the build pulls it from the PyTorch index"
    fi
fi

# pip in the build must trust the host's CA bundle (this host adds certificates).
volumes=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    volumes+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi

# --- build ---------------------------------------------------------------------
log "podman build $tag from $dockerfile (TORCH_BUILD=$variant)"
start=$(date +%s.%N)
podman build --runtime "$runtime" \
    -f "$dockerfile" -t "$tag" \
    "${build_args[@]}" "${volumes[@]}" "${extra[@]}" \
    "$root" >&2
end=$(date +%s.%N)
build_seconds="$(python3 -c "print(round($end - $start, 1))")"

image_id="$(podman image inspect --format '{{.Id}}' "$tag")"
size_bytes="$(podman image inspect --format '{{.Size}}' "$tag")"
# Empty for `--target python` (the marker is written by the last stage); a container
# that does not start still fails the script.
marker="$(podman run --rm --runtime "$runtime" --network none \
    --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
    "$tag" sh -c 'cat /opt/interlat/IMAGE 2>/dev/null || true')"

save_bytes=""
if [ -n "$save" ]; then
    rm -f "$save"
    podman save --format docker-archive -o "$save" "$tag"
    save_bytes="$(stat -c %s "$save")"
    log "saved docker-archive $save ($save_bytes bytes)"
fi

if [ -n "$info" ]; then
    python3 - "$info" <<EOF
import json, sys
json.dump({
    "variant": "$variant",
    "tag": "$tag",
    "base": "${base:-<Dockerfile default>}",
    "image_id": "$image_id",
    "uri": "docker://${tag%:*}@sha256:$image_id",
    "marker": "$marker",
    "size_bytes": int("$size_bytes"),
    "build_seconds": float("$build_seconds"),
    "save_path": "$save" or None,
    "save_bytes": int("$save_bytes") if "$save_bytes" else None,
}, open(sys.argv[1], "w"), indent=2)
EOF
fi
echo "image_id=$image_id size_bytes=$size_bytes build_seconds=$build_seconds tag=$tag marker='$marker'"
