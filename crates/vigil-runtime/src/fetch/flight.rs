//! Single-flight: concurrent requests for the same key share one fetch.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

/// In-flight work by key. The first caller for a key runs the work; callers
/// arriving while it runs wait for and share its result. If the running
/// caller is cancelled, a waiting caller takes over (tokio's `OnceCell`
/// guarantees one initializer at a time). Once done, the key is forgotten,
/// so the next call fetches afresh; a key whose last caller was cancelled
/// is forgotten too (the map never keeps an entry nobody waits on).
pub(super) struct Flights<K, V> {
    running: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    pub(super) fn new() -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
        }
    }

    pub(super) async fn run<F, Fut>(&self, key: K, work: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        // Dropped on completion and on cancellation alike.
        let guard = Leave {
            flights: self,
            key,
            cell: Some(cell),
        };
        let value = match &guard.cell {
            Some(cell) => cell.get_or_init(work).await.clone(),
            None => work().await,
        };
        drop(guard);
        value
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One caller's hold on a flight. Every clone of a flight's cell is made
/// and dropped under the map's lock, so the count of holders read there is
/// exact: the entry goes when the flight is done or nobody else holds it.
struct Leave<'a, K: Eq + Hash, V> {
    flights: &'a Flights<K, V>,
    key: K,
    cell: Option<Arc<OnceCell<V>>>,
}

impl<K: Eq + Hash, V> Drop for Leave<'_, K, V> {
    fn drop(&mut self) {
        let mut running = self
            .flights
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(cell) = self.cell.take() else {
            return;
        };
        let ours = running
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &cell));
        // Two holders: the map and this caller.
        if ours && (cell.initialized() || Arc::strong_count(&cell) <= 2) {
            running.remove(&self.key);
        }
        drop(cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_run_and_later_callers_run_again() {
        let flights = Arc::new(Flights::<String, usize>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (flights, runs) = (flights.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .run("k".to_owned(), || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        runs.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("task"), 1);
        }
        assert_eq!(flights.len(), 0);
        let again = flights
            .run("k".to_owned(), || async {
                runs.fetch_add(1, Ordering::SeqCst) + 1
            })
            .await;
        assert_eq!(again, 2);
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over_to_a_waiter() {
        let flights = Arc::new(Flights::<u8, &'static str>::new());
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .run(1, || async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        "leader"
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiter = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run(1, || async { "waiter" }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter finished")
            .expect("task");
        assert_eq!(got, "waiter");
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_leader_alone_leaves_no_entry_behind() {
        let flights = Arc::new(Flights::<u8, &'static str>::new());
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .run(1, || async {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        "leader"
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(flights.len(), 1);
        leader.abort();
        assert!(leader.await.is_err_and(|e| e.is_cancelled()));
        assert_eq!(flights.len(), 0);
        // Cancelling inside a select (the future dropped, no task) too.
        tokio::select! {
            _ = flights.run(2, std::future::pending::<&'static str>) => unreachable!(),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        assert_eq!(flights.len(), 0);
    }
}
