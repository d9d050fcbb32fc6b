//! `work-stealing`: tasks and their buffers moving between the workers of
//! an async runtime. Each of N workers creates `size` tasks, each a boxed
//! header holding a buffer of 16 B..4 KiB (log-uniform, filled). It keeps
//! one task in four in its local queue and sends the others to a random
//! other worker over that worker's bounded channel; when the channel is
//! full the task stays local, as a runtime runs a task itself when it
//! cannot hand it off. After creating each task a worker runs (checks and
//! frees) up to 16 tasks it received, and its oldest local task once its
//! local queue holds more than 64; when it has created all its tasks it
//! runs the rest of its local queue, waits at a barrier until every worker
//! has created all of its tasks, and runs what is left in its channel. So
//! most buffers and headers are freed by a thread that did not allocate
//! them, and memory stays bounded by the queues. (Waiting in a blocking
//! receive instead would make nearly every send to a finished worker a
//! wake-up and a context switch once threads outnumber cores, which would
//! measure the scheduler rather than the allocator.)
//!
//! Which thread frees a task depends on scheduling; what is created does
//! not (each worker's sizes and peers come from its own seeded generator,
//! and a full channel consumes no random number), and every task is run
//! exactly once. So the checksum, a wrapping sum of per-task values, and
//! the operation count (4 per task: header and buffer allocated and freed,
//! plus each worker's local queue) depend only on the parameters.

use super::block::{check, filled, mix};
use super::rng::Rng;
use super::{Sizes, Tally, Workload};
use std::collections::VecDeque;
use std::sync::Barrier;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

pub const WORKLOAD: Workload = Workload {
    name: "work-stealing",
    about: "workers create boxed tasks with 16 B..4 KiB buffers, send 3 in 4 to a random peer over bounded channels, run (check, free) what they receive; size = tasks per worker",
    threads: super::as_asked,
    sizes: Sizes {
        smoke: 5_000,
        quick: 2_000_000,
        full: 8_000_000,
    },
    group: super::Group::Main,
    scaling: Some(super::as_asked),
    run: |p| run_with(p.size, p.threads, INBOX).into(),
};

/// Local tasks a worker holds before it runs its oldest.
const LOCAL: usize = 64;
/// Capacity of each worker's channel.
const INBOX: usize = 256;
/// Received tasks run after each task created.
const BATCH: usize = 16;

/// A task: a header with its tag, and its buffer.
struct Task {
    tag: u64,
    data: Vec<u8>,
}

type Sender = SyncSender<Box<Task>>;

/// The `i`-th task of worker `me`.
fn create(rng: &mut Rng, me: usize, i: u64) -> Box<Task> {
    let tag = (me as u64) << 40 | i;
    Box::new(Task {
        tag,
        data: filled(rng.log_uniform(16, 4096), tag),
    })
}

/// Where worker `me` sends its next task: a peer, or `None` to keep it.
fn route(rng: &mut Rng, me: usize, threads: usize) -> Option<usize> {
    if threads == 1 || rng.below(4) == 0 {
        return None;
    }
    let peer = rng.below(threads - 1);
    Some(if peer >= me { peer + 1 } else { peer })
}

/// Runs a task: checks its buffer, then frees buffer and header (taking
/// the box is the point: its free is one of the workload's operations).
#[allow(clippy::boxed_local)]
fn execute(task: Box<Task>, tally: &mut Tally) {
    let value = check(&task.data, task.tag).wrapping_add(mix(task.tag));
    tally.checksum = tally.checksum.wrapping_add(value);
    tally.ops += 2;
}

/// Worker `me`'s channel, its senders to the others, and the barrier all
/// workers reach when they have created their tasks.
struct Lanes<'a> {
    me: usize,
    peers: Vec<Option<Sender>>,
    inbox: Receiver<Box<Task>>,
    created: &'a Barrier,
}

fn worker(tasks: u64, lanes: Lanes) -> Tally {
    let Lanes {
        me,
        peers,
        inbox,
        created,
    } = lanes;
    let threads = peers.len();
    let mut rng = Rng::new(700 + me as u64);
    let mut local: VecDeque<Box<Task>> = VecDeque::with_capacity(LOCAL + 1);
    // The local queue, allocated here and freed on return.
    let mut tally = Tally {
        checksum: 0,
        ops: 2,
    };
    for i in 0..tasks {
        let task = create(&mut rng, me, i);
        tally.ops += 2;
        let stays = match route(&mut rng, me, threads) {
            None => Some(task),
            Some(peer) => match peers[peer].as_ref().expect("a peer").try_send(task) {
                Ok(()) => None,
                Err(TrySendError::Full(t) | TrySendError::Disconnected(t)) => Some(t),
            },
        };
        if let Some(task) = stays {
            local.push_back(task);
            if local.len() > LOCAL {
                execute(local.pop_front().expect("not empty"), &mut tally);
            }
        }
        for _ in 0..BATCH {
            match inbox.try_recv() {
                Ok(task) => execute(task, &mut tally),
                Err(_) => break,
            }
        }
    }
    drop(peers);
    while let Some(task) = local.pop_front() {
        execute(task, &mut tally);
    }
    // After the barrier nothing more is sent: the channel holds the rest.
    created.wait();
    while let Ok(task) = inbox.try_recv() {
        execute(task, &mut tally);
    }
    tally
}

/// Runs `threads` workers of `tasks` tasks each, with channels of
/// `inbox` tasks (the tests vary it to change who frees what).
fn run_with(tasks: u64, threads: usize, inbox: usize) -> Tally {
    let (senders, receivers): (Vec<Sender>, Vec<_>) =
        (0..threads).map(|_| sync_channel(inbox)).unzip();
    let created = Barrier::new(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(me, inbox)| {
                let lanes = Lanes {
                    me,
                    peers: (0..threads)
                        .map(|p| (p != me).then(|| senders[p].clone()))
                        .collect(),
                    inbox,
                    created: &created,
                };
                s.spawn(move || worker(tasks, lanes))
            })
            .collect();
        drop(senders);
        workers
            .into_iter()
            .map(|w| w.join().expect("work-stealing worker panicked"))
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tally computed on one thread, without channels: every task each
    /// worker would create, run once.
    fn sequential(tasks: u64, threads: usize) -> Tally {
        let mut tally = Tally::default();
        for me in 0..threads {
            let mut rng = Rng::new(700 + me as u64);
            tally.ops += 2;
            for i in 0..tasks {
                let task = create(&mut rng, me, i);
                tally.ops += 2;
                route(&mut rng, me, threads);
                execute(task, &mut tally);
            }
        }
        tally
    }

    #[test]
    fn the_tally_does_not_depend_on_who_frees_what() {
        for threads in [1, 2, 3, 8] {
            let want = sequential(3_000, threads);
            // A channel of 1 keeps most tasks local, one of 4,096 sends
            // nearly all of them; repeated runs interleave differently.
            for inbox in [1, 4, INBOX, 4096, INBOX] {
                assert_eq!(run_with(3_000, threads, inbox), want, "{threads} threads");
            }
            assert_eq!(want.ops, 4 * 3_000 * threads as u64 + 2 * threads as u64);
        }
    }

    #[test]
    fn routes_go_to_others() {
        let mut rng = Rng::new(1);
        let routes: Vec<_> = (0..1000).map(|_| route(&mut rng, 2, 4)).collect();
        assert!(routes.iter().flatten().all(|&p| p != 2 && p < 4));
        let kept = routes.iter().filter(|r| r.is_none()).count();
        assert!((150..350).contains(&kept), "{kept}");
        assert!((0..100).all(|_| route(&mut rng, 0, 1).is_none()));
    }
}
