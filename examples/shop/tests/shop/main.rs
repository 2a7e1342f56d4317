//! Integration tests of the shop: one binary, submodules per concern.

mod e2e;
mod support;
