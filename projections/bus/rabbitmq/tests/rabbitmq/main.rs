//! Tests of the RabbitMQ bus against a real broker (127.0.0.1:5672, guest/guest;
//! `AMQP_URL` overrides), each in a virtual host of its own.

mod conformance;
mod end_to_end;
mod faults;
mod flow;
mod hold;
mod proxy;
mod redelivery;
mod round_trip;
mod support;
mod torture;
