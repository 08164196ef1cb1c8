//! The reaper: one background thread that expires idle cursors and sessions, aborts
//! transactions past their lifetime, deletes expired documents of TTL indexes and prunes the
//! oplog. Its jobs sit in a deadline-ordered queue; the thread sleeps on its channel until the
//! earliest deadline (or a message), runs that job, and queues it again at the deadline the
//! job reports. The server stops it with a message and joins it on shutdown.

use crate::cursors::CURSOR_TIMEOUT;
use crate::server::Shared;
use crate::store::StoreSession;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the oplog is pruned to its retention limits.
pub const OPLOG_PRUNE_PERIOD: Duration = Duration::from_secs(10);

/// The reaper's jobs. The order breaks ties between equal deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    Cursors,
    Sessions,
    Transactions,
    Ttl,
    OplogPrune,
}

impl Job {
    pub const ALL: [Job; 5] = [Job::Cursors, Job::Sessions, Job::Transactions, Job::Ttl, Job::OplogPrune];
}

/// What the reaper runs: each job does its work at `now` and answers when it is next due.
pub trait Jobs: Send + 'static {
    fn run(&mut self, job: Job, now: Instant) -> Instant;
}

enum Msg {
    /// Run the job now (then at the deadline it reports).
    RunNow(Job),
    Stop,
}

/// The deadline-ordered queue, apart from the thread so it can be tested alone.
struct Schedule {
    queue: BinaryHeap<Reverse<(Instant, Job)>>,
}

impl Schedule {
    fn new(first: impl IntoIterator<Item = (Instant, Job)>) -> Schedule {
        Schedule { queue: first.into_iter().map(Reverse).collect() }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, _))| *t)
    }

    /// Runs every job due at `now`, each once, and queues it again.
    fn run_due(&mut self, jobs: &mut impl Jobs, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((t, job))) = self.queue.peek().copied() {
            if t > now {
                break;
            }
            self.queue.pop();
            due.push(job);
        }
        for job in due {
            let next = jobs.run(job, now).max(now + Duration::from_millis(1));
            self.queue.push(Reverse((next, job)));
        }
    }

    /// Runs `job` at once and moves its queue entry to the deadline it reports.
    fn run_now(&mut self, jobs: &mut impl Jobs, job: Job, now: Instant) {
        self.queue.retain(|Reverse((_, j))| *j != job);
        let next = jobs.run(job, now).max(now + Duration::from_millis(1));
        self.queue.push(Reverse((next, job)));
    }
}

fn run_loop(mut jobs: impl Jobs, mut schedule: Schedule, rx: Receiver<Msg>) {
    loop {
        let now = Instant::now();
        schedule.run_due(&mut jobs, now);
        let wait = schedule.next_deadline().map_or(Duration::from_secs(3600), |t| t - now.min(t));
        match rx.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Msg::RunNow(job)) => schedule.run_now(&mut jobs, job, Instant::now()),
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The running reaper thread. Dropping it (or `stop`) stops and joins the thread.
pub struct Reaper {
    tx: Sender<Msg>,
    handle: Option<JoinHandle<()>>,
}

impl Reaper {
    /// Starts the thread.
    pub fn start<J: Jobs>(jobs: J) -> std::io::Result<Reaper> {
        let (tx, rx) = unbounded();
        let handle = std::thread::Builder::new().name("reaper".into()).spawn(move || {
            // Every job runs once at start; each run reports when the job is next due.
            let now = Instant::now();
            run_loop(jobs, Schedule::new(Job::ALL.map(|j| (now, j))), rx)
        })?;
        Ok(Reaper { tx, handle: Some(handle) })
    }

    /// Asks the thread to run `job` now (tests, and commands that change a job's inputs).
    pub fn run_now(&self, job: Job) {
        let _ = self.tx.send(Msg::RunNow(job));
    }

    pub fn stop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server's jobs, over its shared state.
pub struct ServerJobs {
    shared: Arc<Shared>,
    /// Opened on first use: the TTL monitor and oplog pruning write through it.
    session: Option<StoreSession>,
}

impl ServerJobs {
    pub fn new(shared: Arc<Shared>) -> ServerJobs {
        ServerJobs { shared, session: None }
    }

    fn session(&mut self) -> Option<&mut StoreSession> {
        if self.session.is_none() {
            match self.shared.store.session() {
                Ok(s) => self.session = Some(s),
                Err(e) => log::warn!("reaper: opening a store session: {e}"),
            }
        }
        self.session.as_mut()
    }
}

/// When a failed or contended job tries again.
const RETRY: Duration = Duration::from_secs(1);

impl Jobs for ServerJobs {
    fn run(&mut self, job: Job, now: Instant) -> Instant {
        let shared = self.shared.clone();
        match job {
            Job::Cursors => {
                let n = shared.cursors.reap(now);
                if n > 0 {
                    log::debug!("reaped {n} idle cursors");
                }
                // A cursor registered later expires later than one registered now.
                shared.cursors.next_expiry(now).unwrap_or(now + CURSOR_TIMEOUT)
            }
            Job::Sessions => {
                shared.expire_sessions(now);
                shared.sessions.next_expiry(now, RETRY)
            }
            Job::Transactions => {
                let limit = Duration::from_secs(shared.config.transaction_lifetime_secs);
                let n = shared.sessions.abort_expired_transactions(now, limit);
                if n > 0 {
                    log::info!("aborted {n} transactions older than {}s", limit.as_secs());
                }
                shared.sessions.next_transaction_deadline(now, limit, RETRY)
            }
            Job::Ttl => {
                let every = Duration::from_secs(shared.config.ttl_monitor_secs.max(1));
                if let Some(ss) = self.session() {
                    match crate::ttl::run_pass(ss, &shared.store) {
                        Ok(n) if n > 0 => log::debug!("TTL monitor deleted {n} documents"),
                        Ok(_) => {}
                        Err(e) => log::warn!("TTL monitor: {e}"),
                    }
                }
                Instant::now() + every
            }
            Job::OplogPrune => {
                let (secs, max) = (shared.config.oplog_retention_secs, shared.config.oplog_max_entries);
                if let Some(ss) = self.session() {
                    match ss.prune_oplog(secs, max) {
                        Ok(n) if n > 0 => log::debug!("pruned {n} oplog entries"),
                        Ok(_) => {}
                        Err(e) => log::warn!("oplog pruning failed: {e}"),
                    }
                }
                Instant::now() + OPLOG_PRUNE_PERIOD
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    type Runs = Arc<Mutex<Vec<(Job, Instant)>>>;

    /// Records each run and reports deadlines from a fixed period per job.
    struct Fake {
        runs: Runs,
        period: fn(Job) -> Duration,
    }

    impl Jobs for Fake {
        fn run(&mut self, job: Job, now: Instant) -> Instant {
            self.runs.lock().map(|mut r| r.push((job, now))).ok();
            now + (self.period)(job)
        }
    }

    fn fake(period: fn(Job) -> Duration) -> (Fake, Runs) {
        let runs = Arc::new(Mutex::new(Vec::new()));
        (Fake { runs: runs.clone(), period }, runs)
    }

    #[test]
    fn runs_only_the_jobs_that_are_due_in_deadline_order() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let (mut jobs, runs) = fake(|j| Duration::from_secs(if j == Job::Cursors { 5 } else { 100 }));
        let mut s = Schedule::new([(t0 + secs(3), Job::Ttl), (t0 + secs(1), Job::Cursors)]);
        assert_eq!(s.next_deadline(), Some(t0 + secs(1)));
        s.run_due(&mut jobs, t0);
        assert!(runs.lock().unwrap().is_empty(), "nothing is due before its deadline");
        s.run_due(&mut jobs, t0 + secs(1));
        assert_eq!(s.next_deadline(), Some(t0 + secs(3)), "cursors rescheduled at 6 s, TTL still at 3 s");
        s.run_due(&mut jobs, t0 + secs(7));
        let order: Vec<Job> = runs.lock().unwrap().iter().map(|r| r.0).collect();
        assert_eq!(order, vec![Job::Cursors, Job::Ttl, Job::Cursors], "overdue jobs run earliest first");
        assert_eq!(s.next_deadline(), Some(t0 + secs(12)));
    }

    #[test]
    fn run_now_moves_the_job_instead_of_duplicating_it() {
        let t0 = Instant::now();
        let (mut jobs, runs) = fake(|_| Duration::from_secs(10));
        let mut s = Schedule::new([(t0 + Duration::from_secs(60), Job::Ttl)]);
        s.run_now(&mut jobs, Job::Ttl, t0);
        assert_eq!(s.queue.len(), 1);
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(runs.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_thread_sleeps_until_a_message_and_joins_on_stop() {
        let (jobs, runs) = fake(|_| Duration::from_secs(3600));
        let mut reaper = Reaper::start(jobs).unwrap();
        // Every job runs once at start, then nothing is due for an hour.
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.lock().unwrap().len() < Job::ALL.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(runs.lock().unwrap().len(), Job::ALL.len());
        reaper.run_now(Job::OplogPrune);
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.lock().unwrap().len() < Job::ALL.len() + 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(runs.lock().unwrap().last().map(|r| r.0), Some(Job::OplogPrune));
        reaper.stop();
        assert!(reaper.handle.is_none());
    }
}
