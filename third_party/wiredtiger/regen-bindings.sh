#!/usr/bin/env bash
# Regenerates src/bindings.rs from shim/shim.h with bindgen. Needs libclang
# (Debian: libclang1-14 libclang-common-14-dev). Normal builds use the
# committed file and never need libclang.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
WIREDTIGER_SYS_REGEN_OUT="$here/src/bindings.rs" \
    cargo build --manifest-path "$here/Cargo.toml" -p wiredtiger-sys --features bindgen
rustfmt --edition 2021 "$here/src/bindings.rs"
echo "regenerated $here/src/bindings.rs"
