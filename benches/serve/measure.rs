//! What a side of the serve benchmark did, and the CPU time it took.

use std::time::Duration;

/// What one side did in one slice: signatures, wall time, each signature's latency, and the
/// CPU time that did the signing: the worker threads' own (direct signing), or the server
/// process's (over HTTP; the clients' CPU time is left out, as a baker runs elsewhere).
#[derive(Default)]
pub(crate) struct Run {
    pub(crate) ops: u64,
    pub(crate) wall: Duration,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) cpu: Duration,
}

impl Run {
    pub(crate) fn add(&mut self, other: Run) {
        self.ops += other.ops;
        self.wall += other.wall;
        self.latencies.extend(other.latencies);
        self.cpu += other.cpu;
    }

    pub(crate) fn per_op(&self) -> f64 {
        self.wall.as_secs_f64() / self.ops.max(1) as f64
    }

    pub(crate) fn cpu_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() / self.ops.max(1) as f64
    }
}

/// The CPU time this thread has run so far (Linux `/proc/thread-self/schedstat`, ns; SoftHSM2
/// runs in the calling thread); zero where unknown.
pub(crate) fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// The CPU time (user + system) process `pid` and all its threads, living or ended, have used
/// (Linux `/proc/PID/stat`, in clock ticks of 10 ms: summed over a whole side, good to 1 %);
/// zero where unknown.
pub(crate) fn process_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
