//! `gradscope merge`: shard records combined into the record of the whole sweep, refusing a
//! missing or repeated part unless asked for a partial summary.

use super::*;

/// The part of the sweep a record holds: its shard file's `i/n`, or the whole sweep.
pub(super) fn recorded_shard(dir: &Path) -> Result<Option<Shard>, SweepError> {
    match std::fs::read_to_string(dir.join(SHARD_FILE)) {
        Ok(text) => {
            Shard::parse(text.trim())
                .map(Some)
                .map_err(|source| SweepError::BadShardFile {
                    dir: dir.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", &dir.join(SHARD_FILE))(e)),
    }
}

/// `shard 2/3`, or `the whole sweep`.
pub(super) fn part_name(shard: Option<Shard>) -> String {
    shard.map_or("the whole sweep".to_string(), |s| {
        format!("shard {}/{}", s.index, s.count)
    })
}

/// What an incomplete set of records lacks, for people: the shards no record holds (when the
/// records are shards of one split), then the first missing trials.
pub(super) fn missing_parts(
    sweep: &Sweep,
    parts: &[(Option<Shard>, &PathBuf)],
    owner: &std::collections::HashMap<(usize, usize, String), usize>,
) -> String {
    let mut out = Vec::new();
    let counts: HashSet<Option<usize>> = parts.iter().map(|(s, _)| s.map(|s| s.count)).collect();
    if let [Some(n)] = counts.into_iter().collect::<Vec<_>>()[..] {
        let held: HashSet<usize> = parts
            .iter()
            .filter_map(|(s, _)| s.map(|s| s.index))
            .collect();
        let absent: Vec<String> = (1..=n)
            .filter(|i| !held.contains(i))
            .map(|i| format!("shard {i}/{n}"))
            .collect();
        if !absent.is_empty() {
            out.push(absent.join(", "));
        }
    }
    let mut missing = (0..sweep.len() * sweep.trials).flat_map(|k| {
        let (point, trial) = (k / sweep.trials, k % sweep.trials);
        sweep
            .cases
            .iter()
            .filter(move |c| !owner.contains_key(&(point, trial, (*c).clone())))
            .map(move |c| format!("point {point}, trial {trial}, case {c}"))
    });
    let listed: Vec<String> = missing.by_ref().take(3).collect();
    let more = missing.count();
    let mut trials = listed.join("; ");
    if more > 0 {
        trials.push_str(&format!("; and {more} more"));
    }
    out.push(format!("trials {trials}"));
    out.join("; ")
}

/// Combine sweep records (shards of one sweep) into a new record under `out`; returns its
/// directory and summary. Two records of the same part, or sharing trials, are refused; so is
/// a set that does not cover the sweep, unless `allow_partial` (the summary then says it is
/// partial in every output).
pub fn merge(
    dirs: &[PathBuf],
    out: &Path,
    allow_partial: bool,
) -> Result<(PathBuf, SweepSummary), SweepError> {
    let started = std::time::SystemTime::now();
    let clock = std::time::Instant::now();
    let first = dirs.first().ok_or(SweepError::NoRecords)?;
    // The first record's config is read once: parsed for the sweep, compared with the others,
    // and copied into the merged record.
    let bad_config = |e| SweepError::BadRecordConfig {
        dir: first.clone(),
        source: Box::new(e),
    };
    let source = config::read_source(&first.join("config.toml")).map_err(bad_config)?;
    let exp = config::parse(source.clone()).map_err(bad_config)?;
    let sweep = exp
        .sweep
        .clone()
        .ok_or_else(|| SweepError::NotASweep { dir: first.clone() })?;
    let body = config_body(&source.text);
    let mut parts: Vec<(Option<Shard>, &PathBuf)> = Vec::new();
    let mut owner: std::collections::HashMap<(usize, usize, String), usize> =
        std::collections::HashMap::new();
    let mut records = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let path = dir.join("config.toml");
        let other = std::fs::read_to_string(&path).map_err(|source| SweepError::NoConfig {
            dir: dir.clone(),
            source,
        })?;
        if config_body(&other) != body {
            return Err(SweepError::DifferentSweep {
                dir: dir.clone(),
                first: first.clone(),
            });
        }
        let shard = recorded_shard(dir)?;
        if let Some((_, earlier)) = parts.iter().find(|(s, _)| *s == shard) {
            return Err(SweepError::DuplicateShard {
                shard: part_name(shard),
                first: (*earlier).clone(),
                second: dir.clone(),
            });
        }
        parts.push((shard, dir));
        let mut shared: Vec<(usize, TrialRecord)> = Vec::new();
        for r in read_trials(dir)? {
            use std::collections::hash_map::Entry;
            match owner.entry((r.point, r.trial, r.case.clone())) {
                Entry::Occupied(e) => shared.push((*e.get(), r)),
                Entry::Vacant(e) => {
                    e.insert(i);
                    records.push(r);
                }
            }
        }
        if let Some((j, r)) = shared.first() {
            return Err(SweepError::DuplicateTrials {
                first: dirs[*j].clone(),
                second: dir.clone(),
                count: shared.len(),
                example: format!("point {}, trial {}, case {}", r.point, r.trial, r.case),
            });
        }
    }
    let expected = sweep.len() * sweep.trials * sweep.cases.len();
    if records.len() < expected && !allow_partial {
        return Err(SweepError::Incomplete {
            done: records.len(),
            expected,
            missing: missing_parts(&sweep, &parts, &owner),
        });
    }
    records.sort_by(|a, b| (a.point, a.trial, &a.case).cmp(&(b.point, b.trial, &b.case)));
    let summary = summarise(&exp.name, &sweep, &records);
    let stem = format!(
        "{}-merged",
        crate::record::utc(std::time::SystemTime::now(), false)
    );
    let dir = crate::record::unused_dir(&out.join(&exp.name), &stem);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    write_atomic(&dir.join("config.toml"), &source.text)?;
    let lines: String = records
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|l| l + "\n")
        .collect();
    write_atomic(&dir.join("trials.jsonl"), &lines)?;
    let named: Vec<(PathBuf, String)> = parts
        .iter()
        .map(|(shard, d)| ((*d).clone(), part_name(*shard)))
        .collect();
    let meta = crate::record::merged_meta(&exp, &named, started, clock.elapsed());
    let json = serde_json::to_string_pretty(&meta)?;
    write_atomic(&dir.join("meta.json"), &format!("{json}\n"))?;
    // Last: the summary files end with report.html, which lists every file of the record.
    write_summary(&dir, &summary, &records)?;
    Ok((dir, summary))
}
