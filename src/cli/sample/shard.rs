//! `--shard I/N` of `ebm sample`: which of the run's chains one process runs.

use super::SampleArgs;
use anyhow::bail;

pub(crate) fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 0/4")?;
    let num = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("{v:?} is not a whole number"));
    let (i, n) = (num(i)?, num(n)?);
    if n == 0 || i >= n {
        return Err(format!("shard {i} of {n}: need N >= 1 and 0 <= I < N"));
    }
    Ok((i, n))
}

/// The chains `--shard I/N` runs: (first chain, count).
pub(super) fn shard_chains(args: &SampleArgs) -> anyhow::Result<(u32, usize)> {
    let Some((i, n)) = args.shard else { return Ok((0, args.chains as usize)) };
    // A warm-up of one step size per chain and no mass matrix adapts each chain from its own
    // acceptance alone: a shard's chains adapt as they do in the whole run.
    if args.warmup > 0 && !(args.adapt_per_chain && args.no_adapt_mass) {
        bail!(
            "--shard cannot be combined with --warmup without --adapt-per-chain --no-adapt-mass: that warm-up adapts one step size and a mass matrix from all chains together, so a shard would adapt differently from the whole run; add both flags, or warm up once, then shard with the adapted --step-size"
        );
    }
    let bound = |k: u32| (k as u64 * args.chains as u64 / n as u64) as u32;
    let (first, end) = (bound(i), bound(i + 1));
    if first == end {
        bail!("--shard {i}/{n} of --chains {} holds no chain: use at most {} shards", args.chains, args.chains);
    }
    Ok((first, (end - first) as usize))
}
