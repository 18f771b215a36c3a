//! Criterion benchmarks of Latchkey; see `benches/README.md` for the figures and how to
//! reproduce them. The library is empty on purpose: the fixtures (`benches/fixture/`) need
//! the core's `testkit` hooks, which are a dev-dependency feature so that no normal build
//! of the workspace (`cargo build --workspace --release`) ever compiles them into a lock.
