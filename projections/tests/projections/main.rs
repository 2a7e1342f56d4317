//! Integration tests of the projection runner with in-memory read models.
#![allow(missing_docs)]

mod memory;
mod support;
