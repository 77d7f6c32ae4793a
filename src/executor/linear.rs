//! ansible-core's `linear` strategy: every host of a batch finishes a task before any host
//! starts the next one, so a task sees what the earlier tasks of all hosts set (`hostvars`).
//!
//! Each host walks the play on its own (its includes, its blocks' rescue); before each step it
//! waits at the gate with its place in the play (a path of indexes, see [`Place`]). When every
//! running host of the batch is waiting (or done), the hosts at the earliest place go on
//! together; the others wait for the next round. `--forks` bounds how many run a step at once.
//! `strategy: free` and `host_pinned` skip the gate: each host goes through the play at its own
//! pace.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// A step's place in the play: the index of each item on the way to it (a block's part as
/// 0 block, 1 rescue, 2 always; an include's loop item), compared as a sequence.
pub type Place = Vec<u32>;

/// The gate of one play's batches.
pub struct Gate {
    inner: Mutex<Inner>,
    wake: Notify,
    forks: Arc<Semaphore>,
}

#[derive(Default)]
struct Inner {
    /// The batch's hosts, in the play's order.
    order: Vec<String>,
    /// Hosts of the batch that have not ended.
    running: HashSet<String>,
    /// The first host (in the play's order) let through at each place: the one a `run_once`
    /// step runs on, as ansible-core's first host of the batch.
    leaders: HashMap<Place, String>,
    /// Hosts waiting at the gate, at their place.
    waiting: HashMap<String, Place>,
    /// Hosts let through, with the place they were let through at (a step that runs another
    /// step at its own place, `run_once`, goes on without waiting again).
    passed: HashMap<String, Place>,
}

/// A host's pass through the gate: while held, a fork is taken.
pub struct Pass {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Gate {
    pub fn new(forks: usize) -> Gate {
        Gate { inner: Mutex::new(Inner::default()), wake: Notify::new(), forks: Arc::new(Semaphore::new(forks.max(1))) }
    }

    /// A batch starts: these hosts run in step.
    pub fn begin(&self, hosts: &[String]) {
        if let Ok(mut i) = self.inner.lock() {
            *i = Inner { order: hosts.to_vec(), running: hosts.iter().cloned().collect(), ..Inner::default() };
        }
    }

    /// A fork, for what a host does outside the gate (connecting).
    pub async fn fork(&self) -> Option<OwnedSemaphorePermit> {
        self.forks.clone().acquire_owned().await.ok()
    }

    /// `host` ended (done, failed, unreachable): the others no longer wait for it.
    pub fn leave(&self, host: &str) {
        if let Ok(mut i) = self.inner.lock() {
            i.running.remove(host);
            i.waiting.remove(host);
            i.passed.remove(host);
            release(&mut i);
        }
        self.wake.notify_waiters();
    }

    /// The host a `run_once` step at `place` runs on (none: not in step).
    pub fn leader(&self, place: &Place) -> Option<String> {
        self.inner.lock().ok()?.leaders.get(place).cloned()
    }

    /// Whether `host` is still at its step at `place` (not moved on, not ended).
    pub fn still_at(&self, host: &str, place: &Place) -> bool {
        self.inner.lock().is_ok_and(|i| i.passed.get(host) == Some(place))
    }

    /// Waits until `host`'s step at `place` may run.
    pub async fn arrive(&self, host: &str, place: Place) -> Pass {
        {
            let Ok(mut i) = self.inner.lock() else { return Pass { _permit: None } };
            if !i.running.contains(host) || i.passed.get(host) == Some(&place) {
                return Pass { _permit: None };
            }
            i.passed.remove(host);
            i.waiting.insert(host.to_string(), place.clone());
            release(&mut i);
        }
        self.wake.notify_waiters();
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let Ok(i) = self.inner.lock() else { break };
                if i.passed.get(host) == Some(&place) || !i.running.contains(host) {
                    break;
                }
            }
            woken.await;
        }
        Pass { _permit: self.fork().await }
    }
}

/// When every running host waits, lets those at the earliest place through.
fn release(i: &mut Inner) {
    if i.waiting.is_empty() || i.running.iter().any(|h| !i.waiting.contains_key(h)) {
        return;
    }
    let Some(first) = i.waiting.values().min().cloned() else { return };
    let go: Vec<String> = i.waiting.iter().filter(|(_, p)| **p == first).map(|(h, _)| h.clone()).collect();
    if let Some(leader) = i.order.iter().find(|h| go.contains(h)).cloned() {
        i.leaders.insert(first.clone(), leader);
    }
    for h in go {
        i.waiting.remove(&h);
        i.passed.insert(h, first.clone());
    }
}

/// Ends `host`'s part in the batch when dropped (however its walk ended).
pub struct Leave {
    pub gate: Option<Arc<Gate>>,
    pub host: String,
}

impl Drop for Leave {
    fn drop(&mut self) {
        if let Some(g) = &self.gate {
            g.leave(&self.host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three hosts: the one at the earliest place goes first; those at the same place together;
    /// a host that leaves is not waited for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hosts_go_through_in_the_order_of_their_places() {
        let gate = Arc::new(Gate::new(5));
        let hosts: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        gate.begin(&hosts);
        let order = Arc::new(Mutex::new(Vec::new()));
        let walk = |h: &'static str, places: Vec<Place>| {
            let (gate, order) = (gate.clone(), order.clone());
            tokio::spawn(async move {
                let _leave = Leave { gate: Some(gate.clone()), host: h.into() };
                for p in places {
                    let _pass = gate.arrive(h, p.clone()).await;
                    order.lock().unwrap().push((p, h));
                }
            })
        };
        let a = walk("a", vec![vec![0], vec![1], vec![3]]);
        let b = walk("b", vec![vec![0], vec![2], vec![3]]);
        let c = walk("c", vec![vec![0]]);
        for t in [a, b, c] {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let places: Vec<Place> = order.iter().map(|(p, _)| p.clone()).collect();
        let mut sorted = places.clone();
        sorted.sort();
        assert_eq!(places, sorted, "steps ran out of the order of their places: {order:?}");
        assert_eq!(order.len(), 7);
    }
}
