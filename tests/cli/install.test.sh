#!/usr/bin/env bash
# Install rules: `cmake --install` puts the tools, libcurate (shared and
# static), the public headers, the man pages, curate.pc and Makefile.inc in
# place, and a program built with `pkg-config curate` links and runs.
set -u
: "${CURATE_BIN:?}" "${CURATE_TMP:?}"
build=$(cd "$CURATE_BIN/.." && pwd)
prefix=$(mktemp -d "$CURATE_TMP/install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" > "$prefix.log" 2>&1 || { cat "$prefix.log"; echo "FAIL: cmake --install"; exit 1; }
fail=0
for f in bin/curate bin/curate-clean bin/curate-dedupe bin/curate-calibrate include/curate/jsonl.h \
         include/curate/status.h share/man/man1/curate.1 share/man/man1/curate-clean.1 \
         share/curate/Makefile.inc; do
    [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; fail=1; }
done
ls "$prefix"/lib*/libcurate.so >/dev/null 2>&1 || { echo "FAIL: no shared libcurate"; fail=1; }
ls "$prefix"/lib*/libcurate.a >/dev/null 2>&1 || { echo "FAIL: no static libcurate"; fail=1; }
pc=$(ls -d "$prefix"/lib*/pkgconfig | head -1)
cat > "$prefix/use.c" <<'C'
#include <curate/jsonl.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    curate_record r;
    curate_record_init(&r);
    const char *line = "{\"text\":\"hi\",\"n\":1}";
    int ok = curate_record_parse(&r, line, strlen(line), NULL) == CURATE_OK && r.n_members == 2;
    curate_record_release(&r);
    printf("%s\n", curate_version());
    return ok ? 0 : 1;
}
C
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs curate) || { echo "FAIL: pkg-config curate"; exit 1; }
libdir=$(PKG_CONFIG_PATH="$pc" pkg-config --variable=libdir curate)
# A sanitizer build's library needs the sanitizer runtime in the program too.
san=""
nm -D "$libdir/libcurate.so" 2>/dev/null | grep -q __asan_init && san="-fsanitize=address"
nm -D "$libdir/libcurate.so" 2>/dev/null | grep -q __ubsan_handle && san="$san -fsanitize=undefined"
cc "$prefix/use.c" -o "$prefix/use" $san $flags -Wl,-rpath,"$libdir" || { echo "FAIL: cannot build against the installed library"; exit 1; }
"$prefix/use" | grep -q '^0\.' || { echo "FAIL: the program built against libcurate did not run"; fail=1; }
"$prefix/bin/curate" --version | grep -q libcurate || { echo "FAIL: installed curate --version"; fail=1; }
[ $fail = 0 ] && echo "PASS: install tree complete; pkg-config build links and runs"
exit $fail
