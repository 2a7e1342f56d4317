//! Workspace-level end-to-end tests: they live in `tests/journey/` (one test binary,
//! `cargo test -p tessera-tests`), which runs the small examples of `examples/basics`
//! and checks what they did. Tests that need PostgreSQL read `DATABASE_URL` and fail,
//! saying how to start it, when none answers.
