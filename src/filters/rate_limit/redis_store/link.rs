//! One route's connection to Redis: a [`MultiplexedConnection`] (every
//! request of the route pipelines over one socket) behind the
//! [`Circuit`] that decides when to use, make or skip it.
//!
//! Connects run in a spawned task, bounded by [`CONNECT_TIMEOUT`], so a
//! request that gives up waiting (or is dropped) never leaves the state stuck
//! in `Connecting`. Requests that arrive meanwhile wait on [`Notify`]; their
//! own deadline bounds the wait.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use tokio::sync::Notify;

use super::circuit::{Change, Circuit, State, Step};
use super::StoreError;

/// Time allowed for one connect (TCP, AUTH/SELECT from the URL, loading the
/// script).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

pub struct RedisLink {
    client: Result<Client, String>,
    /// `host:port` for logs (the URL may hold a password).
    name: String,
    /// Loaded on each new connection so the first EVALSHA finds it.
    script: Script,
    circuit: Mutex<Circuit<MultiplexedConnection>>,
    changed: Notify,
}

impl RedisLink {
    /// A link to `url` (validated at config load; an unusable one makes
    /// every connect fail, so `on_store_error` decides). Connects lazily.
    pub fn new(url: &str, script: Script) -> Arc<Self> {
        let client = Client::open(url).map_err(|e| e.to_string());
        let name = client
            .as_ref()
            .map(|c| c.get_connection_info().addr.to_string())
            .unwrap_or_else(|_| "an invalid redis URL".to_string());
        Arc::new(Self {
            client,
            name,
            script,
            circuit: Mutex::new(Circuit::new()),
            changed: Notify::new(),
        })
    }

    /// A connection and its generation, waiting while one is being made.
    /// Fails at once while Redis is down. The caller bounds the wait.
    pub async fn connection(self: &Arc<Self>) -> Result<(MultiplexedConnection, u64), StoreError> {
        loop {
            // Registered before the state is read, so a connect finishing
            // in between still wakes us.
            let changed = self.changed.notified();
            let step = self.lock().acquire(Instant::now());
            match step {
                Step::Use(conn, generation) => return Ok((conn, generation)),
                Step::Skip => return Err(StoreError::Down),
                Step::Connect => self.spawn_connect(),
                Step::Wait => {}
            }
            changed.await;
        }
    }

    /// A call on connection `generation` failed in a way that says the
    /// connection is unusable (I/O error, timeout).
    pub fn call_failed(&self, generation: u64, why: &dyn std::fmt::Display) {
        let change = self.lock().call_failed(generation, Instant::now());
        if let Change::Down(wait) = change {
            log::warn!(
                "redis {}: {why}; rate limits use on_store_error for {} ms, then reconnect",
                self.name,
                wait.as_millis()
            );
        }
    }

    /// True while a connection is up (for tests and status).
    pub fn is_up(&self) -> bool {
        matches!(self.lock().state(), State::Up { .. })
    }

    fn spawn_connect(self: &Arc<Self>) {
        let link = Arc::clone(self);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let result = link.connect().await;
                    link.finish_connect(result);
                });
            }
            Err(_) => link.finish_connect(Err("no async runtime to connect from".to_string())),
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let config = AsyncConnectionConfig::new().set_connection_timeout(CONNECT_TIMEOUT);
        let work = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            self.script.prepare_invoke().load_async(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, work).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no connection within {} ms",
                CONNECT_TIMEOUT.as_millis()
            )),
        }
    }

    fn finish_connect(&self, result: Result<MultiplexedConnection, String>) {
        let (first, change) = {
            let mut circuit = self.lock();
            let first = matches!(
                circuit.state(),
                State::Connecting { backoff } if backoff.is_zero()
            );
            let change = match &result {
                Ok(conn) => circuit.connected(conn.clone()),
                Err(_) => circuit.connect_failed(Instant::now()),
            };
            (first, change)
        };
        match (change, &result) {
            (Change::Up, _) if first => log::debug!("redis {}: connected", self.name),
            (Change::Up, _) => log::info!("redis {}: connected again", self.name),
            (Change::Down(wait), Err(e)) => log::warn!(
                "redis {}: cannot connect: {e}; rate limits use on_store_error, next try in {} ms",
                self.name,
                wait.as_millis()
            ),
            (Change::StillDown(wait), Err(e)) => log::debug!(
                "redis {}: cannot connect: {e}; next try in {} ms",
                self.name,
                wait.as_millis()
            ),
            _ => {}
        }
        self.changed.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, Circuit<MultiplexedConnection>> {
        // Transitions are single assignments: a poisoned lock is consistent.
        self.circuit.lock().unwrap_or_else(|e| e.into_inner())
    }
}
