//! Data-parallel training on PyTorch's c10d: one process per device, launched by `torchrun
//! --no-python` or `srun`, joined through a TCPStore into a Gloo (CPU) or NCCL (CUDA) process
//! group ([`proxyrobust_torch_ext::ProcessGroup`]). Every rank starts from rank 0's weights,
//! trains on its own shard of each global batch, and averages gradients by bucketed all-reduce
//! after every backward pass, as `DistributedDataParallel` does (batch-norm statistics stay per
//! rank, as with `broadcast_buffers=False`). A world of one process is not distributed at all.

use std::collections::BTreeMap;
use std::time::Duration;

use proxyrobust_torch_ext::{Backend, ProcessGroup};
use tch::Tensor;

use crate::error::{Error, Result};

/// Where this process stands in a multi-process launch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Launch {
    pub rank: usize,
    pub world_size: usize,
    /// The device index on this node (one process per GPU).
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// `torchrun` or `slurm`.
    pub launcher: &'static str,
}

/// torchrun's variables (all or none), then srun's.
const TORCHRUN: [&str; 5] = [
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
];
const SLURM: [&str; 3] = ["SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"];
const DEFAULT_PORT: u16 = 29500;

impl Launch {
    /// The launch this process's environment describes; `None` for a single process.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`Launch::from_env`] over any variable lookup. torchrun's five variables must be set
    /// together; under `srun` (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID) the master is
    /// MASTER_ADDR or the first node of SLURM_STEP_NODELIST (or SLURM_JOB_NODELIST), the port
    /// MASTER_PORT or 29500.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let number = |name: &str| -> Result<usize> {
            let value = get(name).unwrap_or_default();
            value
                .trim()
                .parse()
                .map_err(|_| Error::invalid(name, format!("a whole number, got {value:?}")))
        };
        let port = |default: Option<u16>| -> Result<u16> {
            match get("MASTER_PORT") {
                Some(v) => v.trim().parse().map_err(|_| {
                    Error::invalid("MASTER_PORT", format!("a port number, got {v:?}"))
                }),
                None => default.ok_or_else(|| Error::invalid("MASTER_PORT", "set")),
            }
        };
        // Every variable of `names` set, else one line naming the missing ones.
        let require = |names: &[&str], context: &str| -> Result<()> {
            let absent: Vec<&str> = names.iter().copied().filter(|n| get(n).is_none()).collect();
            if absent.is_empty() {
                return Ok(());
            }
            Err(Error::invalid(
                "environment",
                format!(
                    "all of {} {context}; missing: {}",
                    names.join(", "),
                    absent.join(", ")
                ),
            ))
        };
        let launch = if TORCHRUN.iter().any(|n| get(n).is_some()) {
            require(
                &TORCHRUN,
                "for a distributed launch (as torchrun sets them)",
            )?;
            Launch {
                rank: number("RANK")?,
                world_size: number("WORLD_SIZE")?,
                local_rank: number("LOCAL_RANK")?,
                master_addr: get("MASTER_ADDR").unwrap_or_default(),
                master_port: port(None)?,
                launcher: "torchrun",
            }
        } else if get("SLURM_PROCID").is_some() && get("SLURM_STEP_NUM_TASKS").is_some() {
            require(&SLURM, "under srun")?;
            let nodes = get("SLURM_STEP_NODELIST").or_else(|| get("SLURM_JOB_NODELIST"));
            let master_addr = match get("MASTER_ADDR") {
                Some(addr) => addr,
                None => first_host(nodes.as_deref().unwrap_or_default()).ok_or_else(|| {
                    Error::invalid(
                        "SLURM_STEP_NODELIST",
                        format!("a Slurm node list to take the master from (or MASTER_ADDR), got {nodes:?}"),
                    )
                })?,
            };
            Launch {
                rank: number("SLURM_PROCID")?,
                world_size: number("SLURM_STEP_NUM_TASKS")?,
                local_rank: number("SLURM_LOCALID")?,
                master_addr,
                master_port: port(Some(DEFAULT_PORT))?,
                launcher: "slurm",
            }
        } else {
            return Ok(None);
        };
        if launch.world_size == 0 || launch.rank >= launch.world_size {
            return Err(Error::invalid(
                "environment",
                format!(
                    "a rank below the world size, got rank {} of {}",
                    launch.rank, launch.world_size
                ),
            ));
        }
        // A world of one is the single-process path, unless PROXYROBUST_PROCESS_GROUP=always
        // asks for the group anyway (to measure what the collectives cost).
        let forced = get("PROXYROBUST_PROCESS_GROUP").as_deref() == Some("always");
        Ok((launch.world_size > 1 || forced).then_some(launch))
    }
}

/// The first host of a Slurm node list: `gpu[03-05,9],cpu1` → `gpu03`.
pub fn first_host(list: &str) -> Option<String> {
    let list = list.trim();
    let end = list
        .char_indices()
        .scan(0i32, |depth, (i, c)| {
            *depth += match c {
                '[' => 1,
                ']' => -1,
                _ => 0,
            };
            Some((i, c, *depth))
        })
        .find(|&(_, c, depth)| c == ',' && depth == 0)
        .map_or(list.len(), |(i, _, _)| i);
    let host = &list[..end];
    let first = match host.split_once('[') {
        None => host.to_string(),
        Some((prefix, ranges)) => {
            let first_range = ranges.trim_end_matches(']').split(',').next()?;
            format!("{prefix}{}", first_range.split('-').next()?)
        }
    };
    (!first.is_empty()).then_some(first)
}

/// Gradients are all-reduced in flat buckets of at most this many bytes (DDP's default 25 MiB).
const BUCKET_BYTES: i64 = 25 << 20;

/// This process's part in data-parallel training.
pub struct DataParallel {
    group: ProcessGroup,
    pub launch: Launch,
}

impl DataParallel {
    /// Joins the launch's process group: Gloo for a CPU `device`, NCCL for CUDA; collectives
    /// fail after `timeout`.
    pub fn join(launch: Launch, device: tch::Device, timeout: Duration) -> Result<Self> {
        let backend = match device {
            tch::Device::Cuda(_) => {
                if !proxyrobust_torch_ext::nccl_available() {
                    return Err(Error::invalid(
                        "device",
                        "cpu for distributed training with this build: it has no NCCL (built without CUDA's headers; docs/distributed.md)",
                    ));
                }
                Backend::Nccl
            }
            _ => Backend::Gloo,
        };
        let group = ProcessGroup::new(
            backend,
            &launch.master_addr,
            launch.master_port,
            launch.rank,
            launch.world_size,
            timeout,
        )
        .map_err(|e| collective_error("joining the process group", &e.to_string()))?;
        Ok(DataParallel { group, launch })
    }

    /// Copies rank 0's values of `tensors` (parameters and buffers) to every rank.
    pub fn broadcast_from_first(&self, tensors: &[Tensor]) -> Result<()> {
        tch::no_grad(|| {
            for t in tensors {
                let flat = t.contiguous();
                self.group.broadcast(&flat, 0).map_err(|e| {
                    collective_error("broadcasting rank 0's weights", &e.to_string())
                })?;
                if flat.data_ptr() != t.data_ptr() {
                    let mut t = t.shallow_clone();
                    t.copy_(&flat);
                }
            }
            Ok(())
        })
    }

    /// Replaces every gradient of `parameters` by its mean over the ranks: flattened into
    /// buckets of at most 25 MiB in reverse parameter order, one all-reduce per bucket.
    pub fn average_gradients(&self, parameters: &BTreeMap<String, Tensor>) -> Result<()> {
        let grads: Vec<Tensor> = parameters
            .values()
            .rev()
            .map(|p| p.grad())
            .filter(|g| g.defined())
            .collect();
        let scale = 1.0 / self.launch.world_size as f64;
        tch::no_grad(|| {
            let mut start = 0;
            while start < grads.len() {
                let mut end = start;
                let mut bytes = 0;
                while end < grads.len()
                    && (end == start || bytes + bytes_of(&grads[end]) <= BUCKET_BYTES)
                {
                    bytes += bytes_of(&grads[end]);
                    end += 1;
                }
                let bucket = &grads[start..end];
                let flat = Tensor::cat(
                    &bucket.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(),
                    0,
                );
                self.group
                    .all_reduce_sum(&flat)
                    .map_err(|e| collective_error("averaging gradients", &e.to_string()))?;
                let mut offset = 0;
                for g in bucket {
                    let n = g.numel() as i64;
                    let mut g = g.shallow_clone();
                    g.copy_(&(flat.narrow(0, offset, n).view_as(&g) * scale));
                    offset += n;
                }
                start = end;
            }
            Ok(())
        })
    }

    /// Sums `t` over the ranks, in place.
    pub fn sum(&self, t: &Tensor) -> Result<()> {
        self.group
            .all_reduce_sum(t)
            .map_err(|e| collective_error("summing metrics", &e.to_string()))
    }
}

fn bytes_of(t: &Tensor) -> i64 {
    t.numel() as i64 * t.kind().elt_size_in_bytes() as i64
}

/// One line for a failed collective: most often another rank died or timed out.
fn collective_error(what: &str, message: &str) -> Error {
    let first = message.lines().next().unwrap_or(message);
    Error::invalid(
        "distributed",
        format!("every rank alive and reachable while {what}; the process group failed: {first}"),
    )
}

/// The positions (into an epoch's permutation of `n` images) that `rank` of `world` trains on
/// at global step `step` with `batch` images per rank: the step covers positions
/// `step·world·batch` onwards, split into `world` equal consecutive parts, wrapping to the start of
/// the permutation where the epoch's last step is short (as `DistributedSampler` pads). With one
/// rank, exactly the positions `[step·batch, min((step+1)·batch, n))`.
pub fn shard(n: i64, batch: i64, world: i64, rank: i64, step: i64) -> (i64, i64) {
    let start = step * world * batch;
    let len = (world * batch).min(n - start);
    let per_rank = (len + world - 1) / world;
    (start + rank * per_rank, per_rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn torchrun_and_srun_environments_are_read_and_half_set_ones_refused() {
        assert_eq!(Launch::from_vars(env(&[])).unwrap(), None);
        let torchrun = env(&[
            ("RANK", "1"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "29400"),
        ]);
        let launch = Launch::from_vars(torchrun).unwrap().unwrap();
        assert_eq!(
            (
                launch.rank,
                launch.world_size,
                launch.local_rank,
                launch.master_addr.as_str(),
                launch.master_port
            ),
            (1, 4, 1, "10.0.0.1", 29400)
        );
        let e = Launch::from_vars(env(&[("RANK", "0"), ("WORLD_SIZE", "2")])).unwrap_err();
        assert!(
            e.to_string()
                .contains("missing: LOCAL_RANK, MASTER_ADDR, MASTER_PORT"),
            "{e}"
        );
        let srun = env(&[
            ("SLURM_PROCID", "3"),
            ("SLURM_STEP_NUM_TASKS", "16"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_STEP_NODELIST", "gpu[07-14]"),
        ]);
        let launch = Launch::from_vars(srun).unwrap().unwrap();
        assert_eq!(
            (
                launch.rank,
                launch.world_size,
                launch.master_addr.as_str(),
                launch.master_port,
                launch.launcher
            ),
            (3, 16, "gpu07", 29500, "slurm")
        );
        let forced = env(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("LOCAL_RANK", "0"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "29400"),
            ("PROXYROBUST_PROCESS_GROUP", "always"),
        ]);
        assert_eq!(
            Launch::from_vars(forced).unwrap().map(|l| l.world_size),
            Some(1)
        );
        // One task is today's single-process path.
        assert_eq!(
            Launch::from_vars(env(&[
                ("SLURM_PROCID", "0"),
                ("SLURM_STEP_NUM_TASKS", "1"),
                ("SLURM_LOCALID", "0"),
                ("SLURM_STEP_NODELIST", "a1")
            ]))
            .unwrap(),
            None
        );
        let e = Launch::from_vars(env(&[
            ("RANK", "2"),
            ("WORLD_SIZE", "2"),
            ("LOCAL_RANK", "0"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("rank 2 of 2"), "{e}");
    }

    #[test]
    fn first_hosts_of_slurm_node_lists() {
        assert_eq!(first_host("gpu[03-05,9],cpu1").as_deref(), Some("gpu03"));
        assert_eq!(first_host("cpu1,gpu[1-2]").as_deref(), Some("cpu1"));
        assert_eq!(first_host("node7").as_deref(), Some("node7"));
        assert_eq!(first_host(""), None);
    }

    #[test]
    fn shards_cover_each_global_batch_and_one_rank_is_the_plain_batch() {
        // 10 images, 2 ranks of 3: steps cover 0..6 and 6..10 (+2 wrapped).
        assert_eq!(shard(10, 3, 2, 0, 0), (0, 3));
        assert_eq!(shard(10, 3, 2, 1, 0), (3, 3));
        assert_eq!(shard(10, 3, 2, 0, 1), (6, 2));
        assert_eq!(shard(10, 3, 2, 1, 1), (8, 2));
        assert_eq!(shard(10, 4, 1, 0, 2), (8, 2));
        assert_eq!(shard(7, 2, 2, 1, 1), (6, 2)); // positions 6 and 7 → 7 wraps to 0
    }
}
