//! The tests' own executor, to show that `append_async` needs no runtime: one thread polls
//! the futures whose wakers fired and parks when none did.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

struct Ready {
    queue: Mutex<Vec<usize>>,
    thread: Thread,
}

struct TaskWaker {
    task: usize,
    ready: Arc<Ready>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.queue.lock().unwrap().push(self.task);
        self.ready.thread.unpark();
    }
}

/// Runs every future to completion on this thread; returns their outputs in order and how
/// many polls it took in all (a poll happens only after a wake, or the first).
pub fn run_all<F: Future>(futures: Vec<F>) -> (Vec<F::Output>, usize) {
    let n = futures.len();
    let ready = Arc::new(Ready {
        queue: Mutex::new((0..n).collect()),
        thread: std::thread::current(),
    });
    let wakers: Vec<Waker> = (0..n)
        .map(|task| {
            Waker::from(Arc::new(TaskWaker {
                task,
                ready: Arc::clone(&ready),
            }))
        })
        .collect();
    let mut futures: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..n).map(|_| None).collect();
    let (mut done, mut polls) = (0, 0);
    while done < n {
        let batch = std::mem::take(&mut *ready.queue.lock().unwrap());
        if batch.is_empty() {
            std::thread::park();
            continue;
        }
        for task in batch {
            let Some(future) = futures[task].as_mut() else {
                continue; // a wake after completion
            };
            polls += 1;
            if let Poll::Ready(out) = future
                .as_mut()
                .poll(&mut Context::from_waker(&wakers[task]))
            {
                outputs[task] = Some(out);
                futures[task] = None;
                done += 1;
            }
        }
    }
    (
        outputs
            .into_iter()
            .map(|o| o.expect("every future completed"))
            .collect(),
        polls,
    )
}

/// Runs one future to completion on this thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let (mut out, _) = run_all(vec![future]);
    out.pop().expect("one output")
}
