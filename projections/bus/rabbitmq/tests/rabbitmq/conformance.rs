//! The bus conformance suite against RabbitMQ: each case in a virtual host of its own
//! (or, without `rabbitmqctl`, under a name prefix, its queues and exchanges deleted
//! after it).

use std::sync::Arc;

use async_trait::async_trait;
use tessera_bus_conformance::BusFactory;
use tessera_projections::integration::{
    Bus, BusError, Consumer, ConsumerSpec, Message, MessageKind,
};

use crate::support::{Broker, Made};

struct Rabbit(Broker);

impl BusFactory for Rabbit {
    async fn connect(&self) -> Arc<dyn Bus> {
        Arc::new(Noting {
            inner: self.0.bus().await,
            made: self.0.made(),
        })
    }

    async fn publish_raw(
        &self,
        context: &str,
        subject: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) {
        self.0.made().context(context);
        self.0
            .bus()
            .await
            .publish_raw(context, subject, headers, body.into())
            .await
            .expect("publish a raw message");
    }
}

/// The bus, noting the contexts and queues a case uses (for the clean-up).
struct Noting {
    inner: tessera_rabbitmq::RabbitBus,
    made: Arc<Made>,
}

#[async_trait]
impl Bus for Noting {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        for m in messages {
            match m.kind {
                MessageKind::Event => self.made.context(&m.source),
                MessageKind::Command => self
                    .made
                    .context(m.subject.split('.').next().unwrap_or_default()),
            }
        }
        self.inner.publish(messages).await
    }

    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        self.made.context(&spec.context);
        self.made.queue(&spec.name);
        self.inner.consume(spec).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

tessera_bus_conformance::bus_conformance_suite!(Rabbit(Broker::open("conformance")));
