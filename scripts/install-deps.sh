#!/bin/sh
# Installs the Debian packages celer needs to build and test, only when one is missing.
#   gcc, g++, make   build (g++: the test that compiles celer.h as C++)
#   libpcre2-dev     Unicode-aware regular expressions for byte-level BPE pre-tokenizers
#   libcurl4-openssl-dev  `celer pull` downloads
#   libssl-dev       OpenSSL libcrypto: SHA-256 of downloads
#   clang, libclang-rt-14-dev  libFuzzer targets (`make fuzz`)
#   python3          the loopback HTTP server used by the download tests
set -e
PKGS="gcc g++ make pkg-config libpcre2-dev libcurl4-openssl-dev libssl-dev clang libclang-rt-14-dev python3"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "celer: installing Debian packages:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
