#!/bin/sh
# Builds the metricsd container image from deploy/docker/Dockerfile:
#
#   deploy/docker/build.sh              # tags metricsd/metricsd:<version>
#   IMAGE=registry.example/metricsd:x deploy/docker/build.sh
#
# It needs go and docker (DOCKER_HOST is honoured), and nothing from the
# network: the binary is built here, static, and the CA bundle comes from
# this host (Debian's ca-certificates). <version> is the first version
# heading of CHANGELOG.md, which deploy/kubernetes/daemonset.yaml runs too
# (deploy/kubernetes's test checks that they agree). It prints the image
# name on its last line.
set -eu
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^## \([0-9][0-9.]*\).*/\1/p' CHANGELOG.md | head -n 1)
[ -n "$version" ] || { echo "build.sh: no version heading in CHANGELOG.md" >&2; exit 1; }
image=${IMAGE:-metricsd/metricsd:$version}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$ca" ] || { echo "build.sh: no CA bundle at $ca (install ca-certificates, or set CA_BUNDLE)" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# -buildvcs=auto: stamp the VCS revision (metricsd -version) where go build
# can, even when GOFLAGS turns it off.
CGO_ENABLED=0 go build -buildvcs=auto -o "$ctx/metricsd" ./examples/metricsd
cp "$ca" "$ctx/ca-certificates.crt"
cp deploy/docker/Dockerfile "$ctx/Dockerfile"
docker build -q -t "$image" "$ctx" >&2
echo "$image"
