#!/usr/bin/env bash
# Make the base image of containers/*/Dockerfile (debian:bookworm-slim) present in the local
# Docker engine, without Docker Hub if need be.
#
#   containers/base-image.sh [TAG]          TAG default: debian:bookworm-slim
#
# 1. TAG already present: nothing to do (the script is idempotent).
# 2. `docker pull TAG` works (Docker Hub reachable): the real image.
# 3. Otherwise: a Debian bookworm made with `debootstrap --variant=minbase` from a Debian
#    mirror (DEBIAN_MIRROR, default http://deb.debian.org/debian; about 1.5 min), imported
#    with `docker import` under TAG. Needs root and debootstrap (apt-get install debootstrap).
#
# Behind a TLS-inspecting proxy, pip inside an image trusts only the CA certificates of the
# image. The made image therefore carries ca-certificates plus this machine's locally added
# CA certificates (LOCAL_CA_DIR, default /usr/local/share/ca-certificates; nothing is added
# when it is empty) and /etc/pip.conf pointing pip at that bundle. Set BASE_IMAGE_PULL=0 to
# skip the pull and always make the image here.
set -euo pipefail

tag="${1:-debian:bookworm-slim}"
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
local_ca="${LOCAL_CA_DIR:-/usr/local/share/ca-certificates}"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag: present"
    exit 0
fi
if [ "${BASE_IMAGE_PULL:-1}" != 0 ] && docker pull "$tag" >/dev/null 2>&1; then
    echo "base image $tag: pulled"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "base-image.sh: $tag cannot be pulled, and making it with debootstrap needs root" >&2
    exit 2
fi
command -v debootstrap >/dev/null || {
    echo "base-image.sh: $tag cannot be pulled and debootstrap is missing" \
         "(apt-get install debootstrap)" >&2
    exit 2
}

start=$(date +%s)
root="$(mktemp -d "${TMPDIR:-/tmp}/base-image.XXXXXX")"
chmod 0755 "$root"  # the image's / (mktemp makes it 0700: no one but root could run)
trap 'rm -rf "$root"' EXIT
echo "base image $tag: not pullable, making it with debootstrap ($suite from $mirror)"
debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$mirror" \
    >"$root.log" 2>&1 || {
    echo "base-image.sh: debootstrap failed; the end of its log:" >&2
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"

# The sources of Debian's own image (updates and security too), and its space savers.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Install-Recommends "false";
EOF

# This machine's locally added CA certificates, in the bundle that pip is told to use.
if [ -d "$local_ca" ] && find "$local_ca" -name '*.crt' | grep -q .; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    find "$local_ca" -name '*.crt' -exec cp {} "$root/usr/local/share/ca-certificates/" \;
    chroot "$root" update-ca-certificates >/dev/null 2>&1
    echo "base image $tag: with $(find "$local_ca" -name '*.crt' | wc -l) local CA certificates"
fi
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"

rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/tmp/* \
    "$root"/var/log/*.log
tar -C "$root" --numeric-owner -c . \
    | docker import --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase $suite (containers/base-image.sh)" - "$tag" \
        >/dev/null
echo "base image $tag: made with debootstrap in $(( $(date +%s) - start )) s"
