//! CPU time of every process a benchmark involves, read from `/proc`: this
//! process (which hosts the services), the Postgres server (every live
//! process, plus what its postmaster collected from backends that exited)
//! and the RabbitMQ node. Wall-clock rates swing on a shared machine; CPU
//! time per operation is steady.

use std::path::Path;

/// Clock ticks per second of `/proc/<pid>/stat`'s times (`getconf CLK_TCK`,
/// 100 on Linux everywhere this runs).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far, per part of the system.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    /// This process: the services under test and the load generator.
    pub(crate) popug: f64,
    /// Of `popug`, the threads named [`LOAD_THREADS`]: a load generator
    /// run on a runtime of its own (zero when a bench runs none).
    pub(crate) load: f64,
    /// Every Postgres process.
    pub(crate) postgres: f64,
    /// The RabbitMQ node.
    pub(crate) rabbitmq: f64,
}

impl Cpu {
    /// The CPU time used until now.
    pub(crate) fn now() -> Self {
        let mut cpu = Self::default();
        let own = std::process::id().to_string();
        let Ok(processes) = std::fs::read_dir("/proc") else {
            return cpu;
        };
        for process in processes.flatten() {
            let name = process.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Some(stat) = Stat::read(&process.path()) else {
                continue;
            };
            if name == own {
                cpu.popug += stat.own;
                cpu.load += load_threads(&process.path());
            } else if stat.command == "postgres" {
                // The postmaster's children times hold the backends that
                // exited; live backends are counted on their own.
                cpu.postgres += stat.own + if stat.postmaster { stat.children } else { 0.0 };
            } else if stat.command == "beam.smp" {
                cpu.rabbitmq += stat.own;
            }
        }
        cpu
    }

    /// The CPU time used between `earlier` and `self`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            popug: self.popug - earlier.popug,
            load: self.load - earlier.load,
            postgres: self.postgres - earlier.postgres,
            rabbitmq: self.rabbitmq - earlier.rabbitmq,
        }
    }

    /// All of it.
    pub(crate) fn total(&self) -> f64 {
        self.popug + self.postgres + self.rabbitmq
    }

    /// Milliseconds per operation for `operations`, as a table cell:
    /// `total (popug + postgres + rabbitmq)`.
    pub(crate) fn per(&self, operations: usize) -> String {
        let ms = |seconds: f64| ms_per(seconds, operations);
        format!(
            "{:.3} ({:.3} + {:.3} + {:.3})",
            ms(self.total()),
            ms(self.popug),
            ms(self.postgres),
            ms(self.rabbitmq)
        )
    }
}

/// `seconds` of CPU as milliseconds per operation, over `operations`.
pub(crate) fn ms_per(seconds: f64, operations: usize) -> f64 {
    seconds * 1000.0 / operations.max(1) as f64
}

/// The name of the threads of a bench's load generator.
pub(crate) const LOAD_THREADS: &str = "popug-load";

/// CPU seconds of the threads of `process` named [`LOAD_THREADS`].
fn load_threads(process: &Path) -> f64 {
    let Ok(threads) = std::fs::read_dir(process.join("task")) else {
        return 0.0;
    };
    threads
        .flatten()
        .filter_map(|thread| Stat::read(&thread.path()))
        .filter(|stat| stat.command == LOAD_THREADS)
        .map(|stat| stat.own)
        .sum()
}

struct Stat {
    command: String,
    own: f64,
    children: f64,
    /// A postgres process whose parent is not one: the postmaster.
    postmaster: bool,
}

impl Stat {
    fn read(process: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(process.join("stat")).ok()?;
        // `pid (comm) state ppid ...`: comm may hold spaces, so split at the
        // last parenthesis.
        let (head, rest) = text.rsplit_once(')')?;
        let command = head.split_once('(')?.1.to_owned();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
        let tick = |index: usize| fields.get(index)?.parse::<f64>().ok();
        let parent = fields.get(1)?.parse::<u32>().ok()?;
        Some(Self {
            postmaster: !is_postgres(parent),
            command,
            own: (tick(11)? + tick(12)?) / TICKS_PER_SECOND,
            children: (tick(13)? + tick(14)?) / TICKS_PER_SECOND,
        })
    }
}

fn is_postgres(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "postgres")
}
