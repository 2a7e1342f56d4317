//! The example shop (placeholder until its issue lands).
fn main() {}
