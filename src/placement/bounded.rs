//! A wall-clock bound on a call that may not honour its own time limit.
//!
//! HiGHS checks its time limit between steps, and one step can be long:
//! on the 300 × 20 benchmark graph with a 60 s limit, one round of mod-k
//! cut separation at the root ran for more than three minutes past the
//! limit (`HighsModkSeparator::separateLpSolution`, no time check inside).
//! A placement must not hold its reconcile key that long, so the solve
//! runs on its own thread and the caller waits until the deadline plus a
//! grace period; past that it goes on without the answer (the searches'
//! answer stands), and the thread ends on its own later, its result
//! dropped. At most [`MAX_RUNAWAY`] such threads run at once: past that,
//! a call is refused at once rather than adding a core's worth of load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Calls given up on and still running, for one kind of call (the
/// solver's is process-wide; tests keep their own).
pub(crate) struct Runaway(AtomicUsize);

impl Runaway {
    pub(crate) const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Calls given up on that may still run at once.
pub(crate) const MAX_RUNAWAY: usize = 2;

/// How long past its deadline a call is waited for: a solve normally stops
/// within milliseconds of its limit; this only catches the long steps.
pub(crate) fn grace(budget: Duration) -> Duration {
    Duration::from_millis(500) + budget / 10
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Still running at `deadline + grace`; left to finish on its own.
    Abandoned,
    /// Not started: [`MAX_RUNAWAY`] abandoned calls are still running.
    TooManyRunaway,
    /// The call panicked.
    Panicked,
    /// No thread could be started for it.
    NoThread(String),
}

/// The hand-over between the caller and the thread, under one lock so
/// that a result and the caller giving up cannot cross.
struct Slot<T> {
    result: Option<T>,
    abandoned: bool,
    done: bool,
}

/// Runs `f` on a thread named `name` and returns its result, unless it is
/// still running at `deadline + grace`.
pub(crate) fn run<T: Send + 'static>(
    runaway: &'static Runaway,
    name: &str,
    deadline: Instant,
    grace: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refused> {
    if runaway.count() >= MAX_RUNAWAY {
        tracing::warn!(
            running = MAX_RUNAWAY,
            "{name}: not started, earlier solves that overran their time limit are still running"
        );
        return Err(Refused::TooManyRunaway);
    }
    let shared = Arc::new((
        Mutex::new(Slot {
            result: None,
            abandoned: false,
            done: false,
        }),
        Condvar::new(),
    ));
    let theirs = shared.clone();
    let span = tracing::Span::current();
    let thread_name = name.to_owned();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _in = span.enter();
            // A panic leaves `result` empty; `done` still tells the caller.
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
            let (lock, ready) = &*theirs;
            let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
            slot.done = true;
            if slot.abandoned {
                runaway.0.fetch_sub(1, Ordering::AcqRel);
                tracing::info!("{thread_name}: an abandoned solve ended; its result is dropped");
            } else {
                slot.result = out;
                ready.notify_one();
            }
        });
    if let Err(e) = spawned {
        return Err(Refused::NoThread(e.to_string()));
    }
    let (lock, ready) = &*shared;
    let until = deadline + grace;
    let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
    while !slot.done {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            slot.abandoned = true;
            runaway.0.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(
                overrun_ms = grace.as_millis() as u64,
                "{name}: still running past its time limit; going on without it (it ends on its own)"
            );
            return Err(Refused::Abandoned);
        }
        slot = ready
            .wait_timeout(slot, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    slot.result.take().ok_or(Refused::Panicked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_call_that_ends_in_time_gives_its_result_and_one_that_overruns_is_left_behind() {
        static MINE: Runaway = Runaway::new();
        let runaway = || MINE.count();
        let soon = Instant::now() + Duration::from_secs(60);
        assert_eq!(run(&MINE, "quick", soon, Duration::ZERO, || 42), Ok(42));
        assert_eq!(
            run(&MINE, "panics", soon, Duration::ZERO, || -> u8 {
                panic!("boom")
            }),
            Err(Refused::Panicked)
        );

        // A call blocked until released: given up at its deadline.
        let before = runaway();
        assert_eq!(before, 0);
        let (release, wait) = mpsc::channel::<()>();
        let (ended, ends) = mpsc::channel::<()>();
        let deadline = Instant::now() + Duration::from_millis(50);
        let out = run(
            &MINE,
            "stuck",
            deadline,
            Duration::from_millis(10),
            move || {
                let _ = wait.recv();
                let _ = ended.send(());
                7
            },
        );
        assert_eq!(out, Err(Refused::Abandoned));
        assert!(Instant::now() >= deadline);
        assert_eq!(runaway(), before + 1);

        // While MAX_RUNAWAY are left behind, nothing new starts.
        let mut stuck = vec![release];
        while runaway() < MAX_RUNAWAY {
            let (release, wait) = mpsc::channel::<()>();
            let out = run(&MINE, "stuck", Instant::now(), Duration::ZERO, move || {
                let _ = wait.recv();
            });
            assert_eq!(out, Err(Refused::Abandoned));
            stuck.push(release);
        }
        let started = Arc::new(AtomicUsize::new(0));
        let seen = started.clone();
        let refused = run(&MINE, "refused", soon, Duration::ZERO, move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(refused, Err(Refused::TooManyRunaway));
        assert_eq!(started.load(Ordering::SeqCst), 0);

        // Released, the left-behind calls end and are counted out.
        drop(stuck);
        ends.recv().unwrap();
        let t0 = Instant::now();
        while runaway() > before {
            assert!(t0.elapsed() < Duration::from_secs(60), "never counted out");
            std::thread::yield_now();
        }
        assert_eq!(run(&MINE, "after", soon, Duration::ZERO, || 1), Ok(1));
    }
}
