#!/usr/bin/env bash
# A new crate that depends on `lifted` with default features off (datasets and splits only):
# it must build with a Rust toolchain and a C compiler alone (no CMake, NASM or candle, no
# network stack), and its program, the split example, must split a folder of images.
# Builds offline from the local registry cache that the repository's own build filled.
#   tools/ci/library_user.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/user/src"
cat > "$work/user/Cargo.toml" <<TOML
[package]
name = "split-user"
version = "0.1.0"
edition = "2024"

[dependencies]
lifted = { path = "$repo", default-features = false }
TOML
cp "$repo/examples/split_dataset.rs" "$work/user/src/main.rs"
cp "$repo/Cargo.lock" "$work/user/Cargo.lock"
cd "$work/user"

# What it pulls in: none of the trainer's, the downloader's or the command line's crates.
cargo tree --offline -e normal,build --prefix none > "$work/tree.txt"
if grep -E '^(candle-core|candle-nn|cmake|reqwest|rustls|clap|anyhow|plotters|bhtsne|memmap2) ' "$work/tree.txt"; then
  echo "FAIL: the split-only build depends on the crates above" >&2
  exit 1
fi
echo "dependencies: $(sort -u "$work/tree.txt" | wc -l) crates, none of candle, cmake, reqwest, clap, plotters"

start=$(date +%s)
cargo build --offline --quiet
echo "built in $(( $(date +%s) - start )) s"

# Eight classes of three images (any JPEG will do: splitting opens no image).
for class in a b c d e f g h; do
  mkdir -p "$work/photos/$class"
  for i in 1 2 3; do cp "$repo/tests/fixtures/images/rgb.jpg" "$work/photos/$class/$i.jpg"; done
done
./target/debug/split-user "$work/photos" "$work/split" 3 | tee "$work/out.txt"
head -1 "$work/split/split.csv" | grep -qx 'path,class_id,class_name,split'
test "$(tail -n +2 "$work/split/split.csv" | wc -l)" -eq 24
grep -q '^  train ' "$work/out.txt" && grep -q '^  test ' "$work/out.txt" && grep -q '^  val ' "$work/out.txt"
echo "OK: a split-only user crate builds and splits"
