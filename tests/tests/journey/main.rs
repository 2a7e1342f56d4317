//! Journeys across crates: the small examples, run as a user runs them, with their
//! results checked.

mod bank_memory;
mod bank_postgres;
