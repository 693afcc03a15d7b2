//! The machine: core pinning, the open-file limit, process memory, and what a result records
//! about where it was measured (cores, memory, CPU, date, commit).
use std::{os::unix::process::CommandExt, process::Command};

use serde::Serialize;

/// Where a result was measured.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    pub date: String,
    pub commit: String,
    pub pinned: bool,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let mut commit = git(&["rev-parse", "--short=12", "HEAD"]);
    if !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        commit.push_str("+dirty");
    }
    Machine {
        cores: cores(),
        memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        cpu,
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        commit,
        pinned: cores() > 1,
    }
}

/// Online cores of the machine (not of this process's affinity mask, which pinning narrows).
fn cores() -> usize {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1)
}

/// The core the load generator runs on (the last one); servers get the others.
pub fn client_core() -> usize {
    cores() - 1
}

/// Pins the calling process (all its future threads) to one core; a no-op on one core.
pub fn pin_to_core(core: usize) {
    if cores() < 2 {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Makes a child process run on the server cores only (every core but the load generator's).
pub fn pin_child_to_server_cores(command: &mut Command) {
    let total = cores();
    if total < 2 {
        return;
    }
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe syscalls.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for core in 0..total - 1 {
                libc::CPU_SET(core, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
}

/// Raises the soft open-file limit to the hard one (10,000 sockets need 10,000 descriptors).
pub fn raise_open_file_limit() -> anyhow::Result<u64> {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            anyhow::bail!("getrlimit failed");
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            anyhow::bail!("setrlimit failed");
        }
        Ok(limit.rlim_cur)
    }
}

/// Resident memory of a process in KiB (from /proc).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
