//! Concurrency primitives: the only module that names `core::sync::atomic`,
//! `std::sync` or `loom`.
//!
//! Under `cfg(loom)` every atomic, cell, lock and spin hint here is loom's, so
//! the structures built on them (central pool, arenas) can be model-checked;
//! `break_locks` then swaps the lock's compare-exchange for a racy
//! load-then-store, to show that the models catch it.
//! Outside loom:
//! - [`Lock`] is a three-state futex mutex (unlocked / locked / contended)
//!   with a short spin phase. It never allocates, its `new` is `const`, and a
//!   critical section under it must stay short (no system call but `mmap` of
//!   a new segment, which is rare).
//! - [`UnsafeCell`] offers loom's `with` / `with_mut` form on both sides.

pub use core::sync::atomic::Ordering;
#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize};
pub use crossbeam_utils::CachePadded;
#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize};

/// Atomics for process-wide state that no model races on (the
/// configuration and the OS page size, read once at start-up; the heap
/// profiler's, which loom does not build): their `new` is `const` on both
/// sides, so they can sit in plain statics even under loom.
#[cfg_attr(loom, allow(unused_imports))]
pub mod unmodeled {
    pub use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicUsize};
    /// The heap profiler's.
    #[cfg(feature = "prof")]
    pub use core::sync::atomic::{AtomicI32, AtomicU64};
}

/// The clock seam: a time that replaces the OS clock (`os::now_ms`) where
/// time must not move on its own. Under loom, the model's clock: loom
/// replays every execution from the start, so a model sets the time
/// (`clock::set_model_ms`). In the fuzz targets' builds (`cfg(fuzzing)`
/// or the `invariants` feature), a clock they drive once they advance it, so
/// time-driven behaviour (maintenance, purge deadlines, cache decay)
/// replays exactly. Otherwise nothing: `os::now_ms` reads the OS.
pub mod clock {
    #[cfg(loom)]
    std::thread_local! {
        static MODEL_MS: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    }

    /// Sets the time `os::now_ms` returns on this OS thread (every loom
    /// thread of a model runs on the thread that called `loom::model`).
    #[cfg(loom)]
    pub fn set_model_ms(ms: u32) {
        MODEL_MS.with(|c| c.set(ms));
    }

    /// The time that replaces the OS clock: the model's.
    #[cfg(loom)]
    pub fn fixed_ms() -> Option<u32> {
        Some(MODEL_MS.with(core::cell::Cell::get))
    }

    #[cfg(all(any(fuzzing, feature = "invariants"), not(loom)))]
    mod driven {
        use super::super::unmodeled::{AtomicBool, AtomicU32};
        use core::sync::atomic::Ordering::Relaxed;

        static ON: AtomicBool = AtomicBool::new(false);
        static MS: AtomicU32 = AtomicU32::new(0);

        /// The driven time, once the clock was advanced.
        pub fn fixed_ms() -> Option<u32> {
            ON.load(Relaxed).then(|| MS.load(Relaxed))
        }

        /// Stops the clock (at `now`, the OS time, the first time) and
        /// moves it `ms` forward.
        pub fn advance(ms: u32, now: u32) {
            if !ON.load(Relaxed) {
                MS.store(now, Relaxed);
                ON.store(true, Relaxed);
            }
            MS.fetch_add(ms, Relaxed);
        }
    }
    #[cfg(all(any(fuzzing, feature = "invariants"), not(loom)))]
    pub use driven::{advance, fixed_ms};

    /// No time replaces the OS clock in this build.
    #[cfg(not(any(loom, fuzzing, feature = "invariants")))]
    #[inline(always)]
    pub fn fixed_ms() -> Option<u32> {
        None
    }
}

/// Defines a function that is `const` outside loom (where it builds statics)
/// and plain under loom (whose primitives have no `const` constructors).
macro_rules! const_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[cfg(not(loom))]
        $vis const fn $name($($arg: $ty),*) -> $ret $body
        $(#[$meta])*
        #[cfg(loom)]
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use const_fn;

/// Builds `[T; N]` from an expression evaluated once per element: a `const`
/// block outside loom, `array::from_fn` under it.
macro_rules! array_of {
    ($n:expr, $e:expr) => {{
        #[cfg(not(loom))]
        {
            [const { $e }; $n]
        }
        #[cfg(loom)]
        {
            core::array::from_fn::<_, { $n }, _>(|_| $e)
        }
    }};
}
pub(crate) use array_of;

/// One iteration of a busy-wait loop (under loom a yield to the other
/// threads: a raw spin would never let the lock holder run).
#[inline]
pub fn spin_loop() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::hint::spin_loop();
}

/// A cell whose contents are accessed through closures, as loom requires.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }
    #[inline(always)]
    #[allow(dead_code)] // loom's shared-access form, kept for parity
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// A mutual-exclusion lock around `T` for short critical sections.
pub struct Lock<T> {
    raw: RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: `Lock` hands out access to `T` only to the one thread holding
// `raw`, so sharing the lock between threads is sound when `T` may be sent.
unsafe impl<T: Send> Sync for Lock<T> {}
// SAFETY: moving the lock moves `T` with it.
unsafe impl<T: Send> Send for Lock<T> {}

impl<T> Lock<T> {
    const_fn! {
        pub fn new(value: T) -> Self {
            Self { raw: RawLock::new(), data: UnsafeCell::new(value) }
        }
    }

    /// Runs `f` with exclusive access to the protected value.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with_wait(|data, _| f(data))
    }

    /// As [`Lock::with`], and tells `f` how the acquisition went (for
    /// contention statistics kept in the protected value itself).
    #[inline]
    pub fn with_wait<R>(&self, f: impl FnOnce(&mut T, Wait) -> R) -> R {
        let wait = self.raw.lock();
        // SAFETY: `raw` is held, so no other thread accesses `data` until
        // the unlock below; the `&mut` does not escape `f`.
        let result = self.data.with_mut(|data| f(unsafe { &mut *data }, wait));
        self.raw.unlock();
        result
    }

    /// Takes the lock without running anything (for `fork` handlers).
    ///
    /// # Safety
    /// The caller must call [`Lock::force_unlock`] exactly once later, on the
    /// same thread or in a forked child, and must not touch the data meanwhile.
    #[cfg(not(loom))]
    pub unsafe fn force_lock(&self) {
        let _ = self.raw.lock();
    }

    /// Releases a lock taken by [`Lock::force_lock`].
    ///
    /// # Safety
    /// The lock must be held through `force_lock`.
    #[cfg(not(loom))]
    pub unsafe fn force_unlock(&self) {
        self.raw.unlock();
    }
}

/// How one acquisition of a [`Lock`] went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wait {
    /// The lock was held by another thread when asked for.
    pub waited: bool,
    /// Times the thread slept on the futex before getting it.
    pub sleeps: u32,
}

/// Contention counters of one lock, kept by its holder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockCounts {
    pub acquisitions: u64,
    /// Acquisitions that found the lock held.
    pub waits: u64,
    /// Futex sleeps in those waits.
    pub sleeps: u64,
}

impl LockCounts {
    /// Counts one acquisition.
    #[inline]
    pub fn note(&mut self, wait: Wait) {
        self.acquisitions += 1;
        self.waits += u64::from(wait.waited);
        self.sleeps += u64::from(wait.sleeps);
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: LockCounts) {
        self.acquisitions += other.acquisitions;
        self.waits += other.waits;
        self.sleeps += other.sleeps;
    }
}

/// The lock word: 0 unlocked, 1 locked, 2 locked with possible sleepers.
struct RawLock {
    state: AtomicU32,
}

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;
/// Spins before sleeping: a critical section lasts well under a microsecond.
#[cfg(not(loom))]
const SPINS_BEFORE_SLEEP: u32 = 64;
/// Loom explores both phases with far fewer states.
#[cfg(loom)]
const SPINS_BEFORE_SLEEP: u32 = 1;

impl RawLock {
    const_fn! {
        fn new() -> Self {
            Self { state: AtomicU32::new(UNLOCKED) }
        }
    }

    #[inline]
    fn lock(&self) -> Wait {
        #[cfg(loom)]
        if broken::active() {
            self.lock_broken();
            return Wait::default();
        }
        if self
            .state
            .compare_exchange_weak(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return self.lock_contended();
        }
        Wait::default()
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> Wait {
        // A weak compare-exchange may fail spuriously on a free lock: that
        // is not a wait.
        let mut wait = Wait {
            waited: self.state.load(Ordering::Relaxed) != UNLOCKED,
            sleeps: 0,
        };
        let mut spins = 0;
        while spins < SPINS_BEFORE_SLEEP {
            let state = self.state.load(Ordering::Relaxed);
            if state == UNLOCKED
                && self
                    .state
                    .compare_exchange_weak(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return wait;
            }
            wait.waited = true;
            if state == CONTENDED {
                break;
            }
            spin_loop();
            spins += 1;
        }
        // Announce a sleeper; whoever unlocks sees CONTENDED and wakes one.
        while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            futex_wait(&self.state, CONTENDED);
            wait.sleeps += 1;
        }
        wait
    }

    /// The classic broken acquire: test, then set. Two threads can both see
    /// the lock free before either stores (see [`break_locks`]).
    #[cfg(loom)]
    fn lock_broken(&self) {
        while self.state.load(Ordering::Acquire) != UNLOCKED {
            spin_loop();
        }
        self.state.store(LOCKED, Ordering::Relaxed);
    }

    #[inline]
    fn unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex_wake_one(&self.state);
        }
    }
}

/// Sleeps while `*word == expected` (spurious wake-ups are fine).
#[cfg(not(loom))]
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which lives as
    // long as the call; a null timeout means no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            core::ptr::null::<libc::timespec>(),
        );
    }
}

#[cfg(not(loom))]
fn futex_wake_one(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address of `word` as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Fault injection for the loom models: with the flag set, every [`Lock`]
/// acquired on this OS thread (so in every loom thread of the running
/// model) uses a non-atomic test-then-set, which loom must catch.
#[cfg(loom)]
mod broken {
    use std::cell::Cell;

    std::thread_local! {
        static BROKEN: Cell<bool> = const { Cell::new(false) };
    }

    pub fn set(on: bool) {
        BROKEN.with(|b| b.set(on));
    }

    pub fn active() -> bool {
        BROKEN.with(Cell::get)
    }
}

/// Makes every lock taken on this OS thread from now on acquire with a
/// plain load-then-store instead of a compare-exchange (loom models only).
#[cfg(loom)]
pub fn break_locks(on: bool) {
    broken::set(on);
}

#[cfg(loom)]
fn futex_wait(word: &AtomicU32, expected: u32) {
    if word.load(Ordering::Relaxed) == expected {
        loom::thread::yield_now();
    }
}

#[cfg(loom)]
fn futex_wake_one(_word: &AtomicU32) {}

#[cfg(all(test, not(loom)))]
mod tests;
