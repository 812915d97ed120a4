#!/bin/sh
# Install what curate needs to build and test, from Debian 12 packages only.
# Prints what it installs; does nothing (and needs no root) when all is there.
set -eu

# Debian package -> a file that proves it is installed.
PACKAGES="
cmake:/usr/bin/cmake
gcc:/usr/bin/gcc
g++:/usr/bin/g++
make:/usr/bin/make
pkg-config:/usr/bin/pkg-config
libutf8proc-dev:/usr/include/utf8proc.h
libpcre2-dev:/usr/include/pcre2.h
libxxhash-dev:/usr/include/xxhash.h
libsentencepiece-dev:/usr/include/sentencepiece_processor.h
sentencepiece:/usr/bin/spm_train
libcld2-dev:/usr/include/cld2/public/compact_lang_det.h
libopenblas-dev:/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h
liblapacke-dev:/usr/include/lapacke.h
libcmocka-dev:/usr/include/cmocka.h
python3:/usr/bin/python3
jq:/usr/bin/jq
"

missing=""
for entry in $PACKAGES; do
    pkg=${entry%%:*}
    file=${entry#*:}
    if [ ! -e "$file" ] && ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all build and test dependencies are installed"
    exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: not root and no sudo: install these packages:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
echo "install-deps: done"
