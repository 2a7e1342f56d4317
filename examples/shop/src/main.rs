//! # shop
//!
//! The Tessera example shop: three bounded contexts (**ordering**, **inventory**,
//! **payment**), each with its own aggregates, events, read models and (on PostgreSQL)
//! its own schemas, tied together by the **fulfilment saga**: order placed → reserve
//! stock → charge payment → confirm. Too little stock rejects the order
//! (`out_of_stock`); a declined payment releases the stock and rejects it
//! (`payment_declined`); no payment answer before the deadline does the same
//! (`payment_timeout`); a confirmed order cancelled is refunded and its stock released.
//!
//! ```text
//! shop serve [--listen 127.0.0.1:8080] [--database-url URL] [--payment-limit-cents N]
//!            [--payment-latency-ms N] [--payment-failure-rate F] [--payment-timeout-s N]
//!            [--state-cache N] [--admin-open] [--public-origin URL]
//!            [--header-read-timeout-s 10] [--idle-timeout-s 75] [--request-timeout-s 30]
//!            [--max-connections 10000] [--max-requests 512] [--max-header-bytes 16384]
//!            [--max-uri-bytes 8192] [--rate-limit N [--rate-limit-burst N]]
//!            [--shutdown-timeout-s 30] [--jwt-secret S | --jwt-public-key FILE]
//! shop gateway --ordering URL --inventory URL --payment URL [--listen 127.0.0.1:8000]
//!            [--jwt-secret S | --jwt-public-key FILE] [--admin-token T]
//!            [--rate-limit-per-s N [--rate-limit-burst B]] [--upstream-timeout-ms 10000]
//!            [--breaker-failures 5] [--breaker-cool-down-s 30]
//! shop rebuild <projection>|--all --database-url URL
//! shop projections --database-url URL
//! shop load --orders N --concurrency C [--skus N] [--reads R] [--read-existing]
//!           [--target http://127.0.0.1:8080]
//! shop seed [--database-url URL] --orders N [--skus N] [--concurrency C] [--ids-file PATH]
//!           [--payment-latency-ms 1] [--payment-concurrency 64]
//! ```
//!
//! With no `--database-url` (and no `DATABASE_URL`) `serve` runs on the embedded
//! in-memory store and says so: data lives as long as the process. With one, each
//! context's events live in schema `ordering`, `inventory` or `payment`, read models in
//! `{context}_{model}_v{n}`, saga checkpoints and deadlines in `fulfilment`.
//!
//! The API (under `/v1`, errors as `application/problem+json`, OpenAPI at
//! `/openapi.json`):
//!
//! ```text
//! POST /v1/products [Idempotency-Key]    {sku, name, price_cents, initial_stock} → 201
//! POST /v1/products/{sku}/restock [Idempotency-Key]  {quantity} → 200
//! GET  /v1/products/{sku}[?min_position]  → {sku, name, price_cents, on_hand, reserved, available}
//! POST /v1/orders   [Idempotency-Key]    {customer_id, lines: [{sku, quantity}]} → 201 {order_id, status, position}
//! GET  /v1/orders/{id}[?min_position]    → the order with its payment and reservation
//! GET  /v1/orders?customer_id=&status=&limit=&after=
//! POST /v1/orders/{id}/cancel            → 202
//! GET  /v1/payments/{id}                → the order's payment (404 while none)
//! GET  /v1/reservations/{id}            → the order's stock reservation (404 while none)
//! GET  /v1/admin/projections             POST /v1/admin/projections/{name}/rebuild → 202
//! GET  /health/live  /health/ready  /metrics  /openapi.json
//! ```
//!
//! Admin routes need `Authorization: Bearer $SHOP_ADMIN_TOKEN`; without that variable
//! they are refused (403) unless the server was started with `--admin-open`, whatever
//! address it listens on. State-changing admin requests sent with an `Origin` other than
//! the server's own (`--public-origin`, default `http://` and the listen address) are
//! refused (403). See SECURITY.md at the repository root.
//!
//! With `--jwt-secret` (HS256) or `--jwt-public-key` (RS256 or EdDSA), every non-admin
//! `/v1` route needs `Authorization: Bearer <JWT>` (`aud` shop, `exp`, `sub` the
//! customer: orders are placed as, and only seen and cancelled by, their customer);
//! without either, those routes are open as before. `shop gateway` puts one address in
//! front of the ordering, inventory and payment services with the same checks, a rate
//! limit per customer, and `GET /v1/orders/{id}` composed from the three (see
//! `examples/shop/README.md`).
//!
//! The server's limits (`shop serve --help`, "Server limits"): a request's head must
//! arrive within 10 s of its first byte, a keep-alive connection idle for 75 s is closed,
//! a request taking over 30 s is answered 408 (its body had not arrived) or 503, more
//! than 512 requests at once are refused 503 with `Retry-After` (health, metrics and
//! OpenAPI never are), header fields over 16 KiB get 431 and a target over 8 KiB 414;
//! a per-client rate limit (429 with `Retry-After`) is off unless `--rate-limit` is set.
//! On SIGTERM or Ctrl-C, `/health/ready` turns 503 at once, new connections are refused,
//! requests in flight get until `--shutdown-timeout-s` (30 s) to finish, then runners
//! stop after their current batch, keeping their checkpoints.

use std::process::ExitCode;

/// The process's allocator (see the shop's `Cargo.toml` for why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    shop::cli::main()
}
