#!/usr/bin/env bash
# The console's browser test needs Debian's headless Chromium and a CJK font (the console's labels are
# Chinese and English). Installed once from Debian's packages; skipped when already there.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || missing+=(fonts-wqy-zenhei)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "browser.sh: please install ${missing[*]} (apt-get install -y ${missing[*]}); the console test needs them" >&2
    exit 0
fi
echo "browser.sh: installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
