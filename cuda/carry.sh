#!/usr/bin/env bash
# cuda/carry.sh — fills .carry/ (git-ignored) with what a lent GPU machine
# lacks and cannot fetch, for cuda/accept.sh there: the test fixtures (they
# live beside the checkout, and only the checkout travels), Debian's Unicode
# data (the tokenizer's tables are generated from it) and the Check
# unit-test library (static, with its headers). Run it here before the
# device call, then pass carry: [".carry"].
set -eu
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.carry/' "$exclude" 2>/dev/null || echo '/.carry/' >>"$exclude"
rm -rf .carry
mkdir -p .carry/unicode .carry/check/include .carry/check/lib
cp -r "${KVGPT_FIXTURES:-../shared/fixtures}" .carry/fixtures
for f in UnicodeData.txt PropList.txt ReadMe.txt; do cp "/usr/share/unicode/$f" .carry/unicode/; done
cp /usr/include/check.h /usr/include/check_stdint.h .carry/check/include/
libdir=$(pkg-config --variable=libdir check 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)
cp "$libdir/libcheck.a" "$libdir/libsubunit.a" .carry/check/lib/
du -sh .carry/*
du -sh .carry
