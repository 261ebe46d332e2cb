#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build and test
# switchyard: cmake and a C compiler (Pingora builds zlib-ng, zstd and ring
# from C) and curl. Extra Debian package names may be given as arguments:
# `make test` adds what its tests need (openssl, chromium, redis-server),
# `make bench` adds haproxy, nginx, wrk, nghttp2-client (h2load) and openssl.
# Does nothing when everything is already there.
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v curl >/dev/null 2>&1 || missing+=(curl)
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
