# The test build for the WhatsApp double (botlink-server's `whatsapp-double` feature): always in
# its own target directory, target/double, so it never overwrites the production binary.
#   double_cargo build -p botlink-server --features whatsapp-double
# The workspace's own crates are linted by clippy as they compile (clippy-driver as the compiler
# wrapper, the way `cargo clippy` runs it, but generating code): a separate `cargo clippy` of this
# build would compile the whole dependency tree a second time (185 s on a fresh clone).
# CLIPPY_ARGS is how cargo-clippy hands its lint flags to clippy-driver.
double_cargo() {
  local sub=$1; shift
  RUSTC_WORKSPACE_WRAPPER="$(dirname "$(rustup which cargo)")/clippy-driver" \
    CLIPPY_ARGS='-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__' \
    cargo "$sub" --target-dir target/double "$@"
}

# The binaries the end-to-end suites run (target/double/debug/botlink-server and wa-double), built
# as the test step built its dependencies: the same features (the server's reqwest has `json`,
# as its tests' has) and the same profile, `test` (whose output is target/double/debug too). A
# plain `build` (profile `dev`) would compile whatsapp-rust and its whole tree a second time
# (132 s on a fresh clone); this links one binary more.
double_binaries() {
  settle_waproto
  double_cargo build --profile test -p botlink-server -p wa-double --features botlink-server/whatsapp-double "$@"
}

# waproto 0.7.0's build script (through buffa-build) names a file it writes itself,
# OUT_DIR/whatsapp.local.desc, as rerun-if-changed. Written after the run it belongs to began, the
# file looks changed to the next cargo command, which runs the script again and recompiles
# whatsapp-rust's whole tree (122 s on a fresh clone, measured with CARGO_LOG's fingerprint
# reasons); the run after that is settled. The file is that run's own output: dated back to it.
settle_waproto() {
  local out
  for out in target/double/debug/build/waproto-*/output; do
    [ -f "$out" ] && touch -r "$out" -d '-1 second' "$(dirname "$out")/out/whatsapp.local.desc"
  done
  return 0
}
