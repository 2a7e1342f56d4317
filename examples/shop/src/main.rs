//! The example shop. Its domain, saga, HTTP API and CLI are the subject of an open
//! issue; until then this binary says so instead of pretending to serve.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "shop: not built yet. The example shop (ordering, payment, inventory, the \
         fulfilment saga and its HTTP API) is an open issue; see README.md."
    );
    ExitCode::FAILURE
}
