#!/usr/bin/env bash
# Make sure LibreOffice (headless, Writer + Calc) and Tesseract with the Vietnamese language data are installed, for
# converting office attachments to PDF renditions and OCR of scanned pages (eoffice/renditions.py) and their tests
# (tests/eoffice/test_renditions.py). Like ensure-chromium.sh / ensure-netbed.sh: quick when present, installs with
# apt-get when root, otherwise says how and carries on (the feature then reports "not available"; the tests skip,
# or fail under CI=true).
set -uo pipefail

# fonts-liberation2: metric twins of Times New Roman / Arial with every Vietnamese letter (the 1.x fonts lack some,
# and the fallback glyphs come out of the PDF text as separate lines, which breaks search)
PKGS="libreoffice-writer-nogui libreoffice-calc-nogui tesseract-ocr tesseract-ocr-vie tesseract-ocr-eng fonts-liberation2"

have_all() {
    command -v soffice >/dev/null 2>&1 || return 1
    command -v tesseract >/dev/null 2>&1 || return 1
    tesseract --list-langs 2>/dev/null | grep -qx vie || return 1
    [ -d /usr/share/fonts/truetype/liberation2 ] || return 1
    return 0
}

if have_all; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-office: LibreOffice and Tesseract (Vietnamese) are needed to read office attachments and scans:" >&2
    echo "ensure-office: run 'sudo apt-get install -y --no-install-recommends $PKGS';" >&2
    echo "ensure-office: until then conversion/OCR report 'not available' and their tests skip (or fail with CI)." >&2
    exit 0
fi
echo "ensure-office: installing LibreOffice (headless) and Tesseract (vie+eng) with apt-get..."
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PKGS || { apt-get update && apt-get install -y --no-install-recommends $PKGS; } \
    || echo "ensure-office: apt-get could not install them; the tests will report it." >&2
exit 0
