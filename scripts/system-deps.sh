#!/usr/bin/env bash
# Installs the system libraries Heartsong uses when they are missing: via apt when root, otherwise prints
# the packages to install. Never fails the build: without them Heartsong falls back to its built-in synth
# and file output.
set -u
want=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib libportaudio.so.2 || want+=(libportaudio2)
have_lib libfluidsynth.so.3 || want+=(libfluidsynth3)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || want+=(fluid-soundfont-gm)
command -v Xvfb >/dev/null || want+=(xvfb xauth)
have_lib libmtdev.so.1 || want+=(libmtdev1)
command -v jackd >/dev/null || want+=(jackd2)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "heartsong: installing system packages: ${want[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${want[@]}"; } >/tmp/heartsong-apt.log 2>&1 \
        || echo "heartsong: apt-get failed (see /tmp/heartsong-apt.log); continuing with built-in synth and file output"
else
    echo "heartsong: optional system packages missing: ${want[*]} -- install them with: sudo apt-get install ${want[*]}"
fi
exit 0
