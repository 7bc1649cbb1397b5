//! Choosing where a job runs: a slot of a host from the host list, or a
//! slot of this machine for work that must run locally.
//!
//! Hosts are scanned slot by slot, as stock distcc 3.4 does
//! (`src/where.c`): slot 0 of every host in list order, then slot 1 of
//! every host that has one, and so on. So jobs spread over the hosts before
//! any host gets a second job. Hosts marked `,down`, hosts in
//! backoff and hosts that already failed for this job are skipped. When
//! every slot is taken the job blocks on one of them for up to
//! `DISTCC_PAUSE_TIME_MSEC` and then scans again, rather than
//! oversubscribing a host. It takes that slot as soon as it is released (see
//! [`SlotWait`]). Stock distcc sleeps through the whole pause.
//!
//! Work that must run on this machine takes a slot from one of two pools.
//! Compiles that cannot be distributed or that fell back use `--localslots`
//! (default 4), and local preprocessing uses `--localslots_cpp` (default 8).
//! Both pools share the `cpu_localhost_<N>` files with the `localhost` host
//! entry. The defaults are those of stock distcc 3.4 (`src/lock.c`).

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::config::{Config, format_seconds};
use crate::hosts::{HostList, HostSpec};
use crate::lock::{SlotLock, SlotWait, slot_file_name};
use crate::state::{Monitor, Phase, Target};
use crate::statedir::{self, StateDir};

/// Slots for compiles that must run on this machine, when the host list
/// sets no `--localslots`.
pub const DEFAULT_LOCAL_SLOTS: u32 = 4;

/// Slots for local preprocessing, when the host list sets no `--localslots_cpp`.
pub const DEFAULT_LOCAL_SLOTS_CPP: u32 = 8;

/// Shortest wait between scans, used when `DISTCC_PAUSE_TIME_MSEC` is 0.
const MIN_PAUSE: Duration = Duration::from_millis(1);

/// The pools of this machine's slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalPool {
    /// A compile (or link) that runs here.
    Compile,
    /// The preprocessor of a remote job, or a preprocess-only (`-E`) job.
    Preprocess,
}

/// Sizes of the local pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalLimits {
    pub compile: u32,
    pub preprocess: u32,
}

impl LocalLimits {
    /// Takes `--localslots` and `--localslots_cpp` from the host list, or
    /// the defaults.
    pub fn from_list(list: Option<&HostList>) -> LocalLimits {
        LocalLimits {
            compile: list.and_then(|l| l.local_slots).unwrap_or(DEFAULT_LOCAL_SLOTS),
            preprocess: list.and_then(|l| l.local_slots_cpp).unwrap_or(DEFAULT_LOCAL_SLOTS_CPP),
        }
    }

    fn of(&self, pool: LocalPool) -> u32 {
        match pool {
            LocalPool::Compile => self.compile,
            LocalPool::Preprocess => self.preprocess,
        }
    }
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct HeldSlot {
    /// Slot number, from 0.
    pub number: u32,
    /// Held for its `Drop`, which releases the lock.
    _lock: SlotLock,
}

/// The hosts one job may still use, in the order it tries them.
#[derive(Debug)]
pub struct HostChoice<'a> {
    hosts: &'a [HostSpec],
    order: Vec<usize>,
    /// Hosts that failed for this job; they are not tried again even when
    /// backoff is disabled.
    failed: Vec<bool>,
    /// Hosts whose backoff was already logged for this job.
    reported: Vec<bool>,
    /// Why each host was not used, as the fallback warning names it: the
    /// failure of this job's attempt, or the failure recorded with the
    /// host's backoff. The recorded failure keeps the warning the same in
    /// every run while the host stays backed off, which configure scripts
    /// and libtool need, because they compare standard error between runs.
    reasons: Vec<Option<String>>,
}

impl<'a> HostChoice<'a> {
    /// Starts with every host of `list`, shuffled when the list contains
    /// `--randomize`.
    pub fn new(list: &'a HostList) -> HostChoice<'a> {
        let mut order: Vec<usize> = (0..list.hosts.len()).collect();
        if list.randomize {
            fastrand::shuffle(&mut order);
            let names: Vec<String> = order.iter().map(|&i| list.hosts[i].display_name()).collect();
            log::debug!("--randomize: trying hosts in the order {}", names.join(" "));
        }
        HostChoice {
            hosts: &list.hosts,
            order,
            failed: vec![false; list.hosts.len()],
            reported: vec![false; list.hosts.len()],
            reasons: vec![None; list.hosts.len()],
        }
    }

    pub fn host(&self, index: usize) -> &'a HostSpec {
        &self.hosts[index]
    }

    /// Excludes a host for the rest of this job after it failed for `reason`.
    pub fn exclude(&mut self, index: usize, reason: &str) {
        self.failed[index] = true;
        self.reasons[index] = Some(reason.to_string());
    }

    /// Returns `ENTRY: REASON` for each host that failed or was skipped
    /// after a failure, in the order the job tries hosts. Hosts marked
    /// `,down` are left out.
    pub fn unused_host_reasons(&self) -> Vec<String> {
        self.order
            .iter()
            .filter_map(|&index| self.reasons[index].as_ref().map(|reason| format!("{}: {reason}", self.hosts[index].verbatim)))
            .collect()
    }
}

enum Scan {
    Got(usize, HeldSlot),
    /// Every slot is taken: the host index and number of each.
    AllBusy(Vec<(usize, u32)>),
    NoCandidates,
}

/// The shared state of all clients: slots, backoff and the monitor record
/// of this process.
#[derive(Debug)]
pub struct Slots {
    pub dir: StateDir,
    backoff: Backoff,
    pause: Duration,
    pub monitor: Monitor,
}

impl Slots {
    /// Opens the state directory. `source` names the job's source file in
    /// the monitor record.
    pub fn open(config: &Config, source: &str) -> Result<Slots, String> {
        let dir = statedir::open(config)?;
        log::debug!("state directory {}", dir.root.display());
        Ok(Slots {
            backoff: Backoff::new(&dir.lock, config.backoff_period),
            pause: config.pause_time.max(MIN_PAUSE),
            monitor: Monitor::new(&dir.state, source),
            dir,
        })
    }

    /// Waits for a free slot of one of the hosts `choice` still allows, and
    /// returns the host's index with the slot. Returns `Ok(None)` when no
    /// host is left: all are down, backed off or failed for this job.
    pub fn acquire_host(&self, choice: &mut HostChoice) -> Result<Option<(usize, HeldSlot)>, String> {
        let mut waiting_since: Option<Instant> = None;
        // The slot this job waits on, kept from one round to the next.
        let mut pending: Option<(usize, u32, SlotWait)> = None;
        loop {
            match self.scan_hosts(choice)? {
                Scan::Got(index, slot) => {
                    self.note_host_slot(choice.host(index), slot.number, waiting_since);
                    return Ok(Some((index, slot)));
                }
                Scan::NoCandidates => return Ok(None),
                Scan::AllBusy(busy) => {
                    if waiting_since.is_none() {
                        log::debug!(
                            "every slot of the usable hosts is taken ({} in all); waiting for one, and looking at all again every {} ms (DISTCC_PAUSE_TIME_MSEC)",
                            busy.len(),
                            self.pause.as_millis()
                        );
                        self.monitor.set_host(Target::Remote, "", 0);
                        self.monitor.note(Target::Remote, Phase::Blocked);
                        waiting_since = Some(Instant::now());
                    }
                    if pending.as_ref().is_some_and(|(index, slot, _)| !busy.contains(&(*index, *slot))) {
                        // Its host is no longer usable (backed off meanwhile).
                        pending = None;
                    }
                    if pending.is_none() {
                        // A random pick spreads the waiting clients over the slots.
                        let (index, slot) = busy[fastrand::usize(..busy.len())];
                        pending = self.start_wait(&choice.host(index).lock_name(), slot).map(|wait| (index, slot, wait));
                    }
                    if let Some(lock) = self.resume_wait(&mut pending) {
                        let (index, slot) = pending.as_ref().map(|(index, slot, _)| (*index, *slot)).expect("a wait gave the lock");
                        self.note_host_slot(choice.host(index), slot, waiting_since);
                        return Ok(Some((index, HeldSlot { number: slot, _lock: lock })));
                    }
                }
            }
        }
    }

    /// Logs the slot a job took on `host`, and how long it waited, and puts
    /// both in the monitor record.
    fn note_host_slot(&self, host: &HostSpec, slot: u32, waiting_since: Option<Instant>) {
        if let Some(since) = waiting_since {
            log::debug!("waited {:.3} s for a free slot", since.elapsed().as_secs_f64());
        }
        log::debug!("took slot {slot} of {}", host.display_name());
        let target = if host.is_local() { Target::Local } else { Target::Remote };
        self.monitor.set_host(target, &host.display_name(), slot);
    }

    /// Tries every slot of the usable hosts once, slot by slot.
    fn scan_hosts(&self, choice: &mut HostChoice) -> Result<Scan, String> {
        let mut candidates = Vec::with_capacity(choice.order.len());
        for position in 0..choice.order.len() {
            let index = choice.order[position];
            if self.is_usable(choice, index) {
                candidates.push(index);
            }
        }
        let Some(max_limit) = candidates.iter().map(|&i| choice.host(i).limit).max() else {
            return Ok(Scan::NoCandidates);
        };
        for slot in 0..max_limit {
            for &index in &candidates {
                let host = choice.host(index);
                if slot >= host.limit {
                    continue;
                }
                if let Some(lock) = self.try_slot(&host.lock_name(), slot)? {
                    return Ok(Scan::Got(index, HeldSlot { number: slot, _lock: lock }));
                }
            }
        }
        let mut busy = Vec::new();
        for slot in 0..max_limit {
            busy.extend(candidates.iter().filter(|&&i| slot < choice.host(i).limit).map(|&i| (i, slot)));
        }
        Ok(Scan::AllBusy(busy))
    }

    /// Returns true when the job may try `index`, logging the reason (once
    /// per job) when it may not.
    fn is_usable(&self, choice: &mut HostChoice, index: usize) -> bool {
        let host = choice.host(index);
        if choice.failed[index] {
            return false;
        }
        let skip_reason = if host.down {
            Some("marked ,down in the host list".to_string())
        } else if host.is_local() {
            None
        } else {
            match self.backoff.check(host) {
                Ok(None) => None,
                Ok(Some(state)) => {
                    if choice.reasons[index].is_none() {
                        choice.reasons[index] = Some(if state.reason.is_empty() {
                            "skipped after a failure that another client recorded (DISTCC_BACKOFF_PERIOD)".to_string()
                        } else {
                            state.reason.clone()
                        });
                    }
                    Some(format!(
                        "backed off {} ago{}; tried again in {}",
                        format_seconds(Duration::from_secs(state.elapsed.as_secs())),
                        if state.reason.is_empty() { String::new() } else { format!(" after: {}", state.reason) },
                        format_seconds(Duration::from_secs(state.remaining.as_secs().max(1))),
                    ))
                }
                Err(error) => {
                    log::debug!("cannot read {}: {error}; using the host", self.backoff.file(host).display());
                    None
                }
            }
        };
        match skip_reason {
            None => true,
            Some(reason) => {
                if !choice.reported[index] {
                    log::debug!("skipping {}: {reason}", host.display_name());
                    choice.reported[index] = true;
                }
                false
            }
        }
    }

    fn try_slot(&self, lock_name: &str, slot: u32) -> Result<Option<SlotLock>, String> {
        let path = self.dir.lock.join(slot_file_name(lock_name, slot));
        SlotLock::try_lock(&path).map_err(|error| format!("cannot lock slot file '{}': {error}", path.display()))
    }

    /// Starts a blocking wait for one taken slot. When that is not possible
    /// (no thread or descriptor to spare), the job sleeps between scans
    /// instead, as stock distcc does.
    fn start_wait(&self, lock_name: &str, slot: u32) -> Option<SlotWait> {
        let path = self.dir.lock.join(slot_file_name(lock_name, slot));
        match SlotWait::start(&path) {
            Ok(wait) => wait,
            Err(error) => {
                log::debug!("cannot wait for slot file '{}' ({error}); sleeping between scans instead", path.display());
                None
            }
        }
    }

    /// Waits up to the pause time for the slot of `pending`, or sleeps that
    /// long without one. A failed wait is dropped, so the next round starts
    /// another.
    fn resume_wait<T>(&self, pending: &mut Option<(T, u32, SlotWait)>) -> Option<SlotLock> {
        let Some((_, _, wait)) = pending.as_ref() else {
            std::thread::sleep(self.pause);
            return None;
        };
        match wait.resume(self.pause) {
            Ok(lock) => lock,
            Err(error) => {
                log::debug!("{error}; looking at every slot again");
                *pending = None;
                None
            }
        }
    }

    /// Waits for a slot of this machine's `pool`.
    pub fn acquire_local(&self, pool: LocalPool, limits: LocalLimits) -> Result<HeldSlot, String> {
        let limit = limits.of(pool);
        let mut waiting_since: Option<Instant> = None;
        let mut pending: Option<((), u32, SlotWait)> = None;
        loop {
            for number in 0..limit {
                if let Some(lock) = self.try_slot("localhost", number)? {
                    if let Some(since) = waiting_since {
                        log::debug!("waited {:.1} s for a local slot", since.elapsed().as_secs_f64());
                    }
                    log::debug!("took local slot {number} of {limit} ({})", pool_name(pool));
                    self.monitor.set_host(Target::Local, "localhost", number);
                    return Ok(HeldSlot { number, _lock: lock });
                }
            }
            if waiting_since.is_none() {
                log::debug!(
                    "every local slot is taken ({limit} in all, {}); waiting for one, and looking at all again every {} ms (DISTCC_PAUSE_TIME_MSEC)",
                    pool_name(pool),
                    self.pause.as_millis()
                );
                self.monitor.set_host(Target::Local, "localhost", 0);
                self.monitor.note(Target::Local, Phase::Blocked);
                waiting_since = Some(Instant::now());
            }
            if pending.is_none() {
                let number = fastrand::u32(..limit.max(1));
                pending = self.start_wait("localhost", number).map(|wait| ((), number, wait));
            }
            if let Some(lock) = self.resume_wait(&mut pending) {
                let number = pending.as_ref().map(|(_, number, _)| *number).expect("a wait gave the lock");
                log::debug!("took local slot {number} of {limit} ({}) after waiting", pool_name(pool));
                self.monitor.set_host(Target::Local, "localhost", number);
                return Ok(HeldSlot { number, _lock: lock });
            }
        }
    }

    /// Records a failure on the host's side, so that every client skips
    /// the host for the backoff period. The decision is a debug message. A
    /// job that then falls back names the failure in its warning, and one
    /// that succeeds on another host stays quiet.
    pub fn host_failed(&self, host: &HostSpec, reason: &str) {
        if !self.backoff.is_enabled() {
            log::debug!(
                "not backing off {} (DISTCC_BACKOFF_PERIOD=0); this job does not try it again",
                host.display_name()
            );
            return;
        }
        match self.backoff.mark(host, reason) {
            Ok(()) => log::debug!(
                "backing off {} after: {reason}; all jobs skip it for {} (DISTCC_BACKOFF_PERIOD)",
                host.display_name(),
                format_seconds(self.backoff.period())
            ),
            Err(error) => log::warn!(
                "{} failed: {reason}; cannot record the backoff in '{}': {error}",
                host.display_name(),
                self.backoff.file(host).display()
            ),
        }
    }

    /// Ends any backoff of a host that just completed a job.
    pub fn host_worked(&self, host: &HostSpec) {
        if let Err(error) = self.backoff.clear(host) {
            log::debug!("cannot remove '{}': {error}", self.backoff.file(host).display());
        }
    }
}

fn pool_name(pool: LocalPool) -> &'static str {
    match pool {
        LocalPool::Compile => "--localslots",
        LocalPool::Preprocess => "--localslots_cpp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::parse_host_list;
    use std::ffi::OsString;
    use std::path::Path;

    fn slots_in(dir: &Path, backoff: &str) -> Slots {
        let vars = [("DISTCC_DIR", dir.as_os_str().to_owned()), ("DISTCC_BACKOFF_PERIOD", OsString::from(backoff)), ("DISTCC_PAUSE_TIME_MSEC", OsString::from("10"))];
        let config = Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()));
        Slots::open(&config, "x.c").unwrap()
    }

    fn take(slots: &Slots, choice: &mut HostChoice) -> (String, u32, HeldSlot) {
        let (index, slot) = slots.acquire_host(choice).unwrap().expect("a free slot");
        (choice.host(index).display_name(), slot.number, slot)
    }

    #[test]
    fn slots_fill_slot_by_slot_in_list_order() {
        let tmp = tempfile::tempdir().unwrap();
        let slots = slots_in(tmp.path(), "60");
        let list = parse_host_list("a:1/2 b:2/1 c:3/2", "test").unwrap();
        let mut choice = HostChoice::new(&list);
        let mut held = Vec::new();
        let mut order = Vec::new();
        for _ in 0..5 {
            let (name, number, slot) = take(&slots, &mut choice);
            order.push(format!("{name}#{number}"));
            held.push(slot);
        }
        assert_eq!(order, ["a:1#0", "b:2#0", "c:3#0", "a:1#1", "c:3#1"]);
        assert!(tmp.path().join("lock/cpu_tcp_a_1_1").exists());
    }

    #[test]
    fn freed_slot_is_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let slots = slots_in(tmp.path(), "60");
        let list = parse_host_list("a:1/1 b:2/1", "test").unwrap();
        let mut choice = HostChoice::new(&list);
        let first = take(&slots, &mut choice);
        let second = take(&slots, &mut choice);
        assert_eq!((first.0.as_str(), second.0.as_str()), ("a:1", "b:2"));
        drop(first);
        assert_eq!(take(&slots, &mut choice).0, "a:1");
    }

    #[test]
    fn down_failed_and_backed_off_hosts_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let slots = slots_in(tmp.path(), "60");
        let list = parse_host_list("a:1,down b:2 c:3 d:4", "test").unwrap();
        slots.host_failed(&list.hosts[1], "connection refused");
        let mut choice = HostChoice::new(&list);
        choice.exclude(2, "connect to 127.0.0.1:3 timed out");
        assert_eq!(take(&slots, &mut choice).0, "d:4");
        choice.exclude(3, "access denied");
        assert!(slots.acquire_host(&mut choice).unwrap().is_none());
        // The fallback warning names every host but the one marked down, in
        // list order, with the failure recorded for the backed-off host.
        assert_eq!(
            choice.unused_host_reasons(),
            ["b:2: connection refused", "c:3: connect to 127.0.0.1:3 timed out", "d:4: access denied"]
        );

        slots.host_worked(&list.hosts[1]);
        let mut fresh = HostChoice::new(&list);
        assert_eq!(take(&slots, &mut fresh).0, "b:2");
    }

    #[test]
    fn zero_backoff_never_skips() {
        let tmp = tempfile::tempdir().unwrap();
        let slots = slots_in(tmp.path(), "0");
        let list = parse_host_list("b:2", "test").unwrap();
        slots.host_failed(&list.hosts[0], "connection refused");
        let mut choice = HostChoice::new(&list);
        assert_eq!(take(&slots, &mut choice).0, "b:2");
    }

    #[test]
    fn full_hosts_wait_until_a_slot_frees() {
        let tmp = tempfile::tempdir().unwrap();
        let slots = slots_in(tmp.path(), "60");
        let list = parse_host_list("a:1/1", "test").unwrap();
        // Another process locks the slot, because a lock of this process
        // would not conflict with this process's own scan.
        let path = tmp.path().join("lock/cpu_tcp_a_1_0");
        let mut holder = std::process::Command::new("python3")
            .arg("-c")
            .arg("import fcntl,sys,time\nf=open(sys.argv[1],'w')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(0.5)\n")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "locked");
        let started = Instant::now();
        let mut choice = HostChoice::new(&list);
        let (name, _, _) = take(&slots, &mut choice);
        assert_eq!(name, "a:1");
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
        holder.wait().unwrap();
    }

    #[test]
    fn local_pools_share_localhost_files() {
        let tmp = tempfile::tempdir().unwrap();
        let slots = slots_in(tmp.path(), "60");
        let limits = LocalLimits { compile: 2, preprocess: 3 };
        let a = slots.acquire_local(LocalPool::Compile, limits).unwrap();
        let b = slots.acquire_local(LocalPool::Preprocess, limits).unwrap();
        let c = slots.acquire_local(LocalPool::Preprocess, limits).unwrap();
        assert_eq!((a.number, b.number, c.number), (0, 1, 2));
        assert!(tmp.path().join("lock/cpu_localhost_2").exists());
    }

    #[test]
    fn local_limits_from_list() {
        assert_eq!(LocalLimits::from_list(None), LocalLimits { compile: 4, preprocess: 8 });
        let list = parse_host_list("--localslots=1 --localslots_cpp=3 a", "test").unwrap();
        assert_eq!(LocalLimits::from_list(Some(&list)), LocalLimits { compile: 1, preprocess: 3 });
    }

    #[test]
    fn randomize_keeps_every_host() {
        let list = parse_host_list("--randomize a b c d e f", "test").unwrap();
        let choice = HostChoice::new(&list);
        let mut order = choice.order.clone();
        order.sort();
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
    }
}
