//! An operator console for a service built on Tessera: browse the log, watch projections
//! and relays catch up, rebuild or restart them, look into process managers' instances,
//! and see circuit breakers and bulkheads, in a browser.
//!
//! [`Console`] is an axum [`Router`] the service mounts where it likes. The pages are
//! plain HTML, CSS and JavaScript compiled into the binary (nothing is fetched from
//! anywhere at run time, and no Node toolchain is needed to build); they read a small
//! JSON API under the same mount (`api/…`). The console never loads a whole stream or
//! the whole log: every list is a page with a cursor (at most [`MAX_PAGE`] items).
//!
//! # Mounting it
//!
//! ```
//! use tessera_console::Console;
//! use tessera_core::MemoryStore;
//!
//! let orders = MemoryStore::new();
//! let app: axum::Router = axum::Router::new().nest(
//!     "/admin",
//!     Console::new("My service")
//!         .store("orders", orders)
//!         // The same check as the service's admin API (here: a bearer token).
//!         .authorize(|_method, headers| {
//!             let ok = headers
//!                 .get("authorization")
//!                 .is_some_and(|v| v.as_bytes() == b"Bearer s3cret");
//!             if ok { Ok(()) } else { Err(tessera_console::Denied::unauthorized("admin token needed")) }
//!         })
//!         .router(),
//! );
//! # let _ = app;
//! ```
//!
//! Add [`Console::operations`] for the projections page (runner status, rebuild and
//! restart buttons), [`Console::process`] per process manager, and [`Console::guard`] per
//! [`Resilience`] guard.
//!
//! # Who may use it
//!
//! The page shell and its static assets hold no data and are served to anyone; every API
//! call (the data and the actions) passes the [`Console::authorize`] check first, so the
//! console is exactly as protected as the check the service gives it. In the browser the
//! operator types the admin token once; the pages keep it in the tab's session storage
//! and send it as `Authorization: Bearer`. Without an `authorize` check the API is open:
//! mount it only behind something that checks.
//!
//! # What it shows
//!
//! - **Streams**: a store's categories and streams (where the store can list them:
//!   [`EventReader::streams`]), a stream's events
//!   page by page, the global log from a position filtered by category and type, and an
//!   event's correlation chain across every store mounted.
//! - **Projections and relays**: state, checkpoint, lag in events and seconds as a live
//!   chart, events held back by an open transaction, the last error with the failing
//!   event; rebuild (with progress) and restart buttons, each confirmed first.
//! - **Process managers**: instances by status page by page, one instance's steps,
//!   commands, deadlines and handled inputs.
//! - **Resilience**: each guard's breaker and bulkhead, with the breaker's state over
//!   time.

use std::sync::Arc;

use axum::http::{HeaderMap, Method};
use axum::Router;
use tessera_core::process::ProcessManager;
use tessera_core::EventReader;
use tessera_projections::process::ProcessStore;
use tessera_projections::resilience::Resilience;

mod api;
mod log;
mod operate;
mod problem;
mod processes;
mod shell;

pub use operate::{ActionError, BacklogInfo, FailedEvent, Operations, RebuildInfo, RunnerInfo};
pub use problem::Denied;

/// The most items one page of any list holds.
pub const MAX_PAGE: usize = 200;

/// The check every API call passes: the request's method and headers in, `Ok(())` to let
/// it through or the refusal to send.
pub type Authorize = dyn Fn(&Method, &HeaderMap) -> Result<(), Denied> + Send + Sync;

/// The console's parts, shared by its handlers.
pub(crate) struct Parts {
    pub(crate) title: String,
    pub(crate) stores: Vec<(String, Arc<dyn log::Log>)>,
    pub(crate) processes: Vec<Arc<dyn processes::Processes>>,
    pub(crate) operations: Option<Arc<dyn Operations>>,
    pub(crate) guards: Vec<(String, Resilience)>,
    pub(crate) authorize: Option<Arc<Authorize>>,
}

/// Builds the console's router; see the [crate docs](crate).
pub struct Console {
    parts: Parts,
}

impl Console {
    /// A console titled `title` (the page's heading), showing nothing yet.
    pub fn new(title: &str) -> Self {
        Self {
            parts: Parts {
                title: title.to_owned(),
                stores: Vec::new(),
                processes: Vec::new(),
                operations: None,
                guards: Vec::new(),
                authorize: None,
            },
        }
    }

    /// Shows `store`'s log under `name` (a service with a store per bounded context adds
    /// each). Listing categories and streams needs a store that can list them; any store
    /// can be read by stream name and from a position.
    #[must_use]
    pub fn store<S: EventReader>(mut self, name: &str, store: S) -> Self {
        self.parts
            .stores
            .push((name.to_owned(), Arc::new(log::Logged(store))));
        self
    }

    /// Shows process manager `P`'s instances from `store`.
    #[must_use]
    pub fn process<P, S>(mut self, store: S) -> Self
    where
        P: ProcessManager,
        S: ProcessStore<P> + Send + Sync + 'static,
    {
        self.parts
            .processes
            .push(Arc::new(processes::Viewed::<P, S>::new(store)));
        self
    }

    /// What the projections page shows and does: the service's runners, rebuilds and
    /// restarts.
    #[must_use]
    pub fn operations(mut self, operations: impl Operations) -> Self {
        self.parts.operations = Some(Arc::new(operations));
        self
    }

    /// Shows a guard's circuit breaker and bulkhead under `name` (clones of a
    /// [`Resilience`] share them).
    #[must_use]
    pub fn guard(mut self, name: &str, guard: Resilience) -> Self {
        self.parts.guards.push((name.to_owned(), guard));
        self
    }

    /// The check every API call must pass (see [Who may use it](crate#who-may-use-it)).
    #[must_use]
    pub fn authorize(
        mut self,
        check: impl Fn(&Method, &HeaderMap) -> Result<(), Denied> + Send + Sync + 'static,
    ) -> Self {
        self.parts.authorize = Some(Arc::new(check));
        self
    }

    /// The router: the pages at its root, the API under `api/`. Nest it where the
    /// console should live (`Router::nest("/admin", console.router())`).
    pub fn router(self) -> Router {
        let parts = Arc::new(self.parts);
        shell::routes().merge(api::routes(parts))
    }
}
