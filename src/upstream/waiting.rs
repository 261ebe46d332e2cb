//! Waiting for a backend under `max_conns`: the upstream's FIFO queue,
//! awaited in the request's own task.

use super::{Attempt, NoRoom, Unavailable, Upstream};

impl Upstream {
    /// Runs `pick` (one try at a backend, as [`select_or_full`]) until it
    /// gives one. Every usable backend full: with a `queue`, waits in it for
    /// a freed slot (at most `queue.timeout`), then picks again; without,
    /// or with the queue full or the wait over, [`Unavailable::Overloaded`].
    /// The wait runs in the caller's task.
    ///
    /// [`select_or_full`]: Self::select_or_full
    pub async fn wait_for(
        &self,
        mut pick: impl FnMut() -> Result<Attempt, NoRoom>,
    ) -> Result<Attempt, Unavailable> {
        match pick() {
            Ok(attempt) => return Ok(attempt),
            Err(NoRoom::None) => return Err(Unavailable::NoBackend),
            Err(NoRoom::Full) => {}
        }
        let Some(queue) = &self.queue else {
            return Err(Unavailable::Overloaded);
        };
        let deadline = tokio::time::Instant::now() + queue.spec.timeout;
        let mut front = false;
        loop {
            let mut ticket = queue.join(front).map_err(|_| Unavailable::Overloaded)?;
            // Once more now that a freed slot would wake this waiter: one
            // freed between the first pick and joining has woken no one.
            match pick() {
                Ok(attempt) => {
                    ticket.consume();
                    return Ok(attempt);
                }
                Err(NoRoom::None) => return Err(Unavailable::NoBackend),
                Err(NoRoom::Full) => {}
            }
            if tokio::time::timeout_at(deadline, ticket.woken())
                .await
                .is_err()
            {
                queue.count_timeout();
                return Err(Unavailable::Overloaded);
            }
            // Woken as the head: pick again; losing the slot to a newcomer
            // puts this request back at the front.
            ticket.consume();
            front = true;
        }
    }

    /// [`select`](Self::select), waiting in the queue when every usable
    /// backend is full (see [`wait_for`](Self::wait_for)).
    pub async fn select_waiting(
        &self,
        key: &[u8],
        tried: &[usize],
    ) -> Result<Attempt, Unavailable> {
        self.wait_for(|| self.select_or_full(key, tried)).await
    }
}
