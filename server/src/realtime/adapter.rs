//! The Socket.IO adapter: socketioxide's Redis adapter on either of two drivers. In a cluster it
//! talks to the other nodes through Redis (fred's sharded pub/sub); alone, the same adapter has
//! no one to talk to. One adapter type for both modes keeps one socket code path.

use socketioxide::{SocketIo, adapter::Emitter};
use socketioxide_redis::{
    CustomRedisAdapter,
    drivers::{ChanItem, Driver, MessageStream, fred::FredDriver},
};

/// The adapter every socket of this server runs on.
pub type Adapter = CustomRedisAdapter<Emitter, NodeDriver>;
pub type Io = SocketIo<Adapter>;

#[derive(Clone)]
pub enum NodeDriver {
    /// One process: requests for other nodes go nowhere, and no one answers.
    Alone,
    /// A cluster: the other nodes, through Redis.
    Redis(FredDriver),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(String);

impl Driver for NodeDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        match self {
            NodeDriver::Alone => Ok(()),
            NodeDriver::Redis(d) => d
                .publish(chan, val)
                .await
                .map_err(|e| DriverError(e.to_string())),
        }
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        match self {
            NodeDriver::Alone => Ok(MessageStream::new_empty()),
            NodeDriver::Redis(d) => d
                .subscribe(chan, size)
                .await
                .map_err(|e| DriverError(e.to_string())),
        }
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        match self {
            NodeDriver::Alone => Ok(()),
            NodeDriver::Redis(d) => d
                .unsubscribe(chan)
                .await
                .map_err(|e| DriverError(e.to_string())),
        }
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        match self {
            // Itself: no other node is waited for.
            NodeDriver::Alone => Ok(1),
            NodeDriver::Redis(d) => d
                .num_serv(chan)
                .await
                .map_err(|e| DriverError(e.to_string())),
        }
    }
}
