//! Process-shared robust mutex living inside the region.
//!
//! `ShmMutex<T>` is a `pthread_mutex_t` set up with `PTHREAD_PROCESS_SHARED` (the futex
//! lives in shared memory, so a waiter in one process is woken by an unlock in another),
//! `PTHREAD_MUTEX_ROBUST` (the kernel hands the lock on when the holder dies, with
//! `EOWNERDEAD`) and `PTHREAD_MUTEX_ERRORCHECK` (relocking from the holding thread is an
//! error instead of a silent deadlock), plus the `T` it protects.
//!
//! # Initialisation
//! All-zero bytes are a valid, *uninitialised* `ShmMutex`: the first `lock` in any process
//! initialises it (an init word moves 0 → initialiser pid → READY). A process that dies in
//! the few instructions of initialisation is detected (`kill(pid, 0)` fails) and another
//! locker redoes it. So a mutex inside a freshly zeroed allocation needs no set-up call.
//!
//! # Repair
//! When the previous holder died, `lock` returns a guard whose
//! [`ShmGuard::previous_owner_died`] is true. The guard has already marked the mutex
//! consistent (`pthread_mutex_consistent`), so the lock keeps working whatever the caller
//! does. The *data* is another matter: it is exactly as the dead process left it, possibly
//! half-updated. The caller must bring it back to a valid state before dropping the guard
//! (for example: recount a list, drop a half-inserted entry, mark a transaction for
//! deletion). A caller that does not repair keeps running on whatever the dead holder
//! left; that is why shared structures are updated in an order where a crash between
//! steps only leaks (see the allocator), and why repair code should validate, not trust.
//! If the repairing process itself dies while holding the guard, the next locker sees
//! `previous_owner_died()` again and repeats the repair.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ShmSafe;
use crate::error::LockError;

/// Init word value once the pthread mutex is ready to use.
const READY: u32 = u32::MAX;
/// Spins between liveness checks of a process that is initialising the mutex.
const SPINS_PER_LIVENESS_CHECK: u32 = 1024;

/// A robust, process-shared mutex protecting a `T` in shared memory. See the module docs
/// for initialisation and the repair contract.
#[repr(C)]
pub struct ShmMutex<T = ()> {
    init: AtomicU32,
    raw: UnsafeCell<libc::pthread_mutex_t>,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is only through a guard, which exists only while the pthread
// mutex is held; the mutex itself is designed for concurrent use from threads and
// processes. `T: ShmSafe` implies `T: Sync + Send`-safe plain data.
unsafe impl<T: ShmSafe> Sync for ShmMutex<T> {}
// SAFETY: as above; moving a never-shared ShmMutex between threads moves plain data.
unsafe impl<T: ShmSafe> Send for ShmMutex<T> {}
// SAFETY: zero bytes are a valid uninitialised ShmMutex (init word 0, pthread_mutex_t is
// plain bytes that get initialised on first lock, T is zero-valid by its own ShmSafe),
// it holds no pointers and has no Drop.
unsafe impl<T: ShmSafe> crate::ShmSafe for ShmMutex<T> {}

impl<T: ShmSafe> ShmMutex<T> {
    /// Blocks until the mutex is held. `Ok` also when the previous holder died: check
    /// [`ShmGuard::previous_owner_died`] and repair.
    pub fn lock(&self) -> Result<ShmGuard<'_, T>, LockError> {
        self.ensure_init()?;
        // SAFETY: `raw` was initialised as a process-shared robust mutex by ensure_init and
        // is never moved (it lives in the region, we only have `&self`).
        let rc = unsafe { libc::pthread_mutex_lock(self.raw.get()) };
        self.after_lock(rc)?.ok_or(LockError::Os(libc::EAGAIN))
    }

    /// Takes the mutex if it is free right now; `Ok(None)` when another holder has it.
    pub fn try_lock(&self) -> Result<Option<ShmGuard<'_, T>>, LockError> {
        self.ensure_init()?;
        // SAFETY: as in `lock`.
        let rc = unsafe { libc::pthread_mutex_trylock(self.raw.get()) };
        self.after_lock(rc)
    }

    fn after_lock(&self, rc: libc::c_int) -> Result<Option<ShmGuard<'_, T>>, LockError> {
        match rc {
            0 => Ok(Some(ShmGuard::new(self, false))),
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex (EOWNERDEAD means acquired); marking it
                // consistent is what POSIX requires of the new holder.
                let rc = unsafe { libc::pthread_mutex_consistent(self.raw.get()) };
                let guard = ShmGuard::new(self, true);
                if rc != 0 {
                    return Err(LockError::Os(rc));
                }
                Ok(Some(guard))
            }
            libc::EBUSY => Ok(None),
            libc::ENOTRECOVERABLE => Err(LockError::NotRecoverable),
            libc::EDEADLK => Err(LockError::WouldDeadlock),
            e => Err(LockError::Os(e)),
        }
    }

    fn ensure_init(&self) -> Result<(), LockError> {
        if self.init.load(Ordering::Acquire) == READY {
            return Ok(());
        }
        self.init_slow()
    }

    #[cold]
    fn init_slow(&self) -> Result<(), LockError> {
        let me = current_pid();
        let mut spins = 0u32;
        loop {
            let state = self.init.load(Ordering::Acquire);
            if state == READY {
                return Ok(());
            }
            if state == 0 {
                if self
                    .init
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Acquire)
                    .is_ok()
                {
                    return match self.init_pthread() {
                        Ok(()) => {
                            self.init.store(READY, Ordering::Release);
                            Ok(())
                        }
                        Err(e) => {
                            self.init.store(0, Ordering::Release);
                            Err(e)
                        }
                    };
                }
                continue;
            }
            // Someone (pid `state`) is initialising: wait, and take over if it died.
            spins += 1;
            if spins % SPINS_PER_LIVENESS_CHECK == 0 && !process_alive(state) {
                let _ = self
                    .init
                    .compare_exchange(state, 0, Ordering::AcqRel, Ordering::Acquire);
            }
            std::thread::yield_now();
        }
    }

    fn init_pthread(&self) -> Result<(), LockError> {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: standard attr lifecycle on a local; every call gets a valid pointer and
        // the attr is destroyed on all paths after a successful init. `raw` is exclusively
        // ours: the init word holds our pid, so no other process touches it until READY.
        unsafe {
            let a = attr.as_mut_ptr();
            check(libc::pthread_mutexattr_init(a))?;
            let configured = check(libc::pthread_mutexattr_setpshared(
                a,
                libc::PTHREAD_PROCESS_SHARED,
            ))
            .and_then(|()| {
                check(libc::pthread_mutexattr_setrobust(
                    a,
                    libc::PTHREAD_MUTEX_ROBUST,
                ))
            })
            .and_then(|()| {
                check(libc::pthread_mutexattr_settype(
                    a,
                    libc::PTHREAD_MUTEX_ERRORCHECK,
                ))
            })
            .and_then(|()| check(libc::pthread_mutex_init(self.raw.get(), a)));
            libc::pthread_mutexattr_destroy(a);
            configured
        }
    }
}

fn check(rc: libc::c_int) -> Result<(), LockError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(LockError::Os(rc))
    }
}

fn current_pid() -> u32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    let pid = unsafe { libc::getpid() };
    // Pids are positive, so never 0 and never READY (u32::MAX).
    pid as u32
}

/// `kill(pid, 0)`: false only when the process certainly does not exist.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 performs only the existence/permission check, sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Proof that this thread holds a [`ShmMutex`]; gives `&mut T` to the protected data and
/// unlocks on drop. Not `Send`: a pthread mutex must be unlocked by the thread that
/// locked it.
pub struct ShmGuard<'a, T: ShmSafe = ()> {
    mutex: &'a ShmMutex<T>,
    owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl<'a, T: ShmSafe> ShmGuard<'a, T> {
    fn new(mutex: &'a ShmMutex<T>, owner_died: bool) -> Self {
        ShmGuard {
            mutex,
            owner_died,
            _not_send: PhantomData,
        }
    }

    /// True when the previous holder died while holding the lock: the protected data may
    /// be half-updated and must be repaired before this guard is dropped.
    pub fn previous_owner_died(&self) -> bool {
        self.owner_died
    }
}

impl<T: ShmSafe> Deref for ShmGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the mutex is held, so no one else accesses
        // `data` (all access goes through guards).
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ShmSafe> DerefMut for ShmGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only live reference.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ShmSafe> Drop for ShmGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this thread holds the mutex (the guard is !Send and only created after a
        // successful lock). An unlock error cannot be acted on in drop.
        unsafe {
            libc::pthread_mutex_unlock(self.mutex.raw.get());
        }
    }
}

impl<T: ShmSafe> std::fmt::Debug for ShmGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmGuard")
            .field("previous_owner_died", &self.owner_died)
            .finish_non_exhaustive()
    }
}

impl<T: ShmSafe> std::fmt::Debug for ShmMutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmMutex")
            .field("initialised", &(self.init.load(Ordering::Relaxed) == READY))
            .finish_non_exhaustive()
    }
}
