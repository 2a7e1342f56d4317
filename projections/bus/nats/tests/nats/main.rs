//! tessera-nats against a NATS server with JetStream: the shared one at 127.0.0.1:4222
//! (`NATS_URL` overrides; start one with `nats-server -js`), and private ones that the
//! fault tests start, kill and restart themselves.

mod conformance;
mod delivery;
mod pipeline;
mod relay;
mod support;
mod torture;
mod wire;
