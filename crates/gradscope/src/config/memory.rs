//! How much memory a run needs (an upper estimate from the network and its batches) and how
//! much the machine can give it (`MemAvailable`, and any control group's limit), so that a run
//! too large is refused before it starts.

use super::{ConfigError, Experiment, Precision};

impl Experiment {
    /// The network's parameter count and its units (every layer's output width, summed).
    pub fn sizes(&self) -> (u128, u128) {
        // In u128: a product of two widths may not fit a usize.
        let widths: Vec<u128> = self.model.widths().iter().map(|&w| w as u128).collect();
        let bias = |w: u128| if self.model.bias { w } else { 0 };
        let params = widths.windows(2).map(|w| w[0] * w[1] + bias(w[1]));
        (params.sum(), widths.iter().skip(1).sum())
    }

    /// An upper estimate of the bytes a run needs: parameters four times over (host draw,
    /// device copy, gradients, host copy of the gradients) and, for the largest input case,
    /// six tensors per layer output (pre-activation, activation, δ probe, δ, their gradients)
    /// plus the input twice, at 4 bytes a value (f32; 16-bit values are read back as f32).
    /// In f64 (compare's reference) 12 bytes a value: 8 for the value itself, on the device
    /// and on the host, and 4 for the f32 copy the host keeps beside it.
    pub fn memory_estimate(&self) -> u128 {
        let bytes: u128 = if self.precision == Precision::F64 {
            12
        } else {
            4
        };
        let (params, units) = self.sizes();
        let batch = self
            .inputs
            .iter()
            .map(|c| c.batch)
            .chain(self.task.train().map(|t| t.batch))
            .max()
            .unwrap_or(0) as u128;
        bytes * (4 * params + 6 * batch * units + 2 * batch * self.model.d_input as u128)
    }
}

/// Memory the machine can give a run, in bytes: the least of `MemAvailable` (/proc/meminfo)
/// and, where a control group limits this process's memory (a Slurm job's `--mem`, a
/// container's limit), that limit less what the group already uses, at every level up to
/// the root. `None` where none of these can be read.
pub fn available_memory() -> Option<u128> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| mem_available(&t));
    let groups = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .map(|t| cgroup_memory_dirs(&t))
        .unwrap_or_default();
    let read = |dir: &std::path::Path, file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let limits = groups.iter().filter_map(|(dir, v2)| {
        let (limit, usage) = if *v2 {
            ("memory.max", "memory.current")
        } else {
            ("memory.limit_in_bytes", "memory.usage_in_bytes")
        };
        headroom(&read(dir, limit)?, &read(dir, usage)?)
    });
    machine.into_iter().chain(limits).min()
}

/// `MemAvailable` of a /proc/meminfo text, in bytes.
fn mem_available(meminfo: &str) -> Option<u128> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The directories that may hold this process's memory limits, from its /proc/self/cgroup
/// text: its memory cgroup and each parent up to the hierarchy's root, with whether the
/// hierarchy is cgroup v2 (`0::/path`, files `memory.max`/`memory.current`) or v1
/// (`N:memory:/path`, files `memory.limit_in_bytes`/`memory.usage_in_bytes`).
fn cgroup_memory_dirs(proc_self_cgroup: &str) -> Vec<(std::path::PathBuf, bool)> {
    let mut dirs = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (root, v2) = match controllers {
            "" => ("/sys/fs/cgroup", true),
            c if c.split(',').any(|c| c == "memory") => ("/sys/fs/cgroup/memory", false),
            _ => continue,
        };
        let root = std::path::Path::new(root);
        let mut dir = root.to_path_buf();
        dir.extend(path.split('/').filter(|c| !c.is_empty()));
        loop {
            dirs.push((dir.clone(), v2));
            if dir == root || !dir.pop() {
                break;
            }
        }
    }
    dirs
}

/// A control group's limit less its usage, in bytes; `None` where it sets no limit (`max`,
/// or v1's near-2^63 "unlimited").
fn headroom(limit: &str, usage: &str) -> Option<u128> {
    let limit: u128 = limit.trim().parse().ok()?;
    let usage: u128 = usage.trim().parse().ok()?;
    (limit < 1 << 60).then(|| limit.saturating_sub(usage))
}

/// Refuse an experiment whose estimate exceeds `available` bytes.
pub fn check_memory(exp: &Experiment, available: Option<u128>) -> Result<(), ConfigError> {
    let need = exp.memory_estimate();
    match available {
        Some(have) if need > have => {
            let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
            Err(ConfigError::file(
                &exp.path,
                format!(
                    "this experiment needs about {:.1} GiB (parameters, gradients and activations){}, more than the {:.1} GiB available",
                    gib(need),
                    if exp.precision == Precision::F64 { " in f64" } else { "" },
                    gib(have)
                ),
            )
            .with_hint("make the network or batch smaller, or pass --allow-large to run it anyway"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse};

    /// f64 takes 12 bytes a value where f32 takes 4 (README: the memory estimate), so an
    /// f64 compare is refused where its f32 run alone would fit.
    #[test]
    fn an_f64_run_is_estimated_at_three_times_f32s_memory() {
        let mut exp = parse(Source {
            path: "m.toml".into(),
            text: "name = \"m\"\nseed = 0\n[model]\ninput = 8\nhidden = [16]\noutput = 2\n[[inputs]]\nname = \"x\"\nbatch = 4\ndistribution = \"normal\"\n".into(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let f32_bytes = exp.memory_estimate();
        // 4 · (4 · (8·16 + 16 + 16·2 + 2) + 6 · 4 · 18 + 2 · 4 · 8) bytes.
        assert_eq!(f32_bytes, 4 * (4 * 178 + 6 * 4 * 18 + 2 * 4 * 8));
        exp.precision = Precision::F64;
        assert_eq!(exp.memory_estimate(), 3 * f32_bytes);
        assert!(
            check_memory(&exp, Some(f32_bytes)).is_err_and(|e| e.to_string().contains("in f64"))
        );
    }
    use std::path::PathBuf;

    #[test]
    fn mem_available_is_read_in_kib() {
        let meminfo = "MemTotal:       24000000 kB\nMemFree: 1 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(mem_available(meminfo), Some(2048 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn a_control_group_limit_leaves_its_headroom() {
        // 1 GiB limit, 256 MiB used: 768 MiB left.
        assert_eq!(headroom("1073741824\n", "268435456\n"), Some(805_306_368));
        assert_eq!(
            headroom("100", "150"),
            Some(0),
            "over the limit: nothing left"
        );
        // No limit: cgroup v2 writes `max`, v1 a page-rounded 2^63 - 1 (this machine's).
        assert_eq!(headroom("max\n", "5\n"), None);
        assert_eq!(headroom("9223372036854771712\n", "2631950336\n"), None);
    }

    #[test]
    fn the_memory_cgroup_and_its_parents_are_searched() {
        // cgroup v2, a Slurm step: the step, the job, and up to the root.
        let v2 = cgroup_memory_dirs("0::/system.slice/job_7/step_0\n");
        let dirs = |list: &[&str], v2: bool| -> Vec<(PathBuf, bool)> {
            list.iter().map(|d| (PathBuf::from(d), v2)).collect()
        };
        assert_eq!(
            v2,
            dirs(
                &[
                    "/sys/fs/cgroup/system.slice/job_7/step_0",
                    "/sys/fs/cgroup/system.slice/job_7",
                    "/sys/fs/cgroup/system.slice",
                    "/sys/fs/cgroup",
                ],
                true
            )
        );
        // A v1/v2 hybrid (this machine's own text): the memory controller's hierarchy, then
        // the unified root; other controllers are skipped.
        let hybrid = cgroup_memory_dirs("5:devices:/\n4:memory:/api/abc\n3:cpu,cpuacct:/\n0::/\n");
        let mut want = dirs(
            &[
                "/sys/fs/cgroup/memory/api/abc",
                "/sys/fs/cgroup/memory/api",
                "/sys/fs/cgroup/memory",
            ],
            false,
        );
        want.extend(dirs(&["/sys/fs/cgroup"], true));
        assert_eq!(hybrid, want);
    }
}
