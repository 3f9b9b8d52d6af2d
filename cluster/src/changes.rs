//! Waiting for "something under the cluster's prefix changed" (an etcd watch), with a tick
//! as a floor so that a lost watch or a missed event costs at most one tick.

use std::time::Duration;

use etcd_client::{Client, WatchOptions, WatchStream};
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::client::bounded;

pub(crate) struct Changes {
    client: Client,
    prefix: String,
    stream: Option<WatchStream>,
    tick: Duration,
    limit: Duration,
}

impl Changes {
    pub(crate) fn new(client: Client, prefix: String, tick: Duration, limit: Duration) -> Changes {
        Changes {
            client,
            prefix,
            stream: None,
            tick,
            limit,
        }
    }

    /// Returns after a change, a tick, or `false` when told to stop.
    pub(crate) async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        if *stop.borrow() {
            return false;
        }
        if self.stream.is_none() {
            let mut c = self.client.clone();
            let opts = WatchOptions::new().with_prefix();
            self.stream = bounded(
                "watch",
                self.limit,
                c.watch(self.prefix.clone(), Some(opts)),
            )
            .await
            .ok();
        }
        let next = async {
            match self.stream.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return false,
            _ = tokio::time::sleep(self.tick) => {}
            ev = next => {
                if !matches!(ev, Some(Ok(_))) {
                    self.stream = None;
                }
            }
        }
        !*stop.borrow()
    }
}
