//! Router-level tests (see the submodules).
