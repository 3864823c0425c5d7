//! The consumer's connection to the broker: a channel with the queue
//! declared, the prefetch set and the subscription open, made again when
//! the broker went away.

use lapin::{
    Channel, Connection,
    message::Delivery,
    options::{BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};

use super::{Consumer, ConsumerError};
use crate::topology;

/// A connection, its channel and the subscription to the consumer's queue.
pub(super) struct Link {
    pub(super) connection: Connection,
    pub(super) channel: Channel,
    pub(super) deliveries: lapin::Consumer,
}

impl Consumer {
    /// The link, made (again) when there is none or it broke.
    pub(super) async fn link(&mut self) -> Result<&mut Link, ConsumerError> {
        let usable = self.link.as_ref().is_some_and(|link| {
            link.connection.status().connected() && link.channel.status().connected()
        });
        if !usable {
            self.link = None;
            let connection = self.broker.connect().await?;
            let channel = connection.create_channel().await?;
            topology::declare_queue(&channel, self.broker.topology(), &self.queue_spec()).await?;
            // Partitions share one subscription: it gets every partition's
            // window, as competing workers each have their own.
            let prefetch = if self.partitioned() {
                let workers = u16::try_from(self.config.workers).unwrap_or(u16::MAX);
                self.config.prefetch.saturating_mul(workers)
            } else {
                self.config.prefetch
            };
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await?;
            let deliveries = channel
                .basic_consume(
                    self.broker.topology().queue(&self.name).into(),
                    format!("{}-{}", self.name, uuid::Uuid::new_v4()).into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            self.link = Some(Link {
                connection,
                channel,
                deliveries,
            });
        }
        Ok(self.link.as_mut().expect("the link was just made"))
    }
}

/// The subscription's next delivery, or why there is none: a broker error,
/// or the broker cancelled the subscription to `queue`.
pub(super) fn next_delivery(
    next: Option<lapin::Result<Delivery>>,
    queue: &str,
) -> Result<Delivery, ConsumerError> {
    match next {
        Some(Ok(delivery)) => Ok(delivery),
        Some(Err(error)) => Err(error.into()),
        None => Err(ConsumerError::Cancelled(queue.to_owned())),
    }
}
