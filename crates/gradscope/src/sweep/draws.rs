//! The order a sweep's units run in, and the weights its points share.
//!
//! Grid points that differ only in their activations (a sweep over `model.activation`) draw
//! the same parameters: a trial's weights come from its seed, its widths and its
//! initialisers, never from the activation. The sweep draws them once for all such points
//! (a *group*) and loads them onto the device once: for each chunk of trials, the trials'
//! weights are drawn, then every point of the group runs its stack of those trials on them.
//! The same holds of points whose models differ in nothing else (a sweep over the loss, the
//! inputs or the precision: a stack is loaded again where the precision changes). A point with
//! no partner runs alone, its trials in chunks, as before.
//!
//! So `trials.jsonl` lists the units in this order of running, not in grid order. Everything
//! read from it sorts the records first (`summarise`, `trials.csv`, `merge`), and a trial's
//! numbers do not depend on what ran beside it (`trials_per_stack_do_not_change_a_single_bit`).

use gradscope_model::{MlpConfig, MlpStack, MlpWeights};
use rayon::prelude::*;

use super::*;

/// What makes two points' weights the same, for the points whose weights are drawn: the
/// model without its activations. `None` where a point cannot share: its weights are loaded
/// from a file (each point keeps its own copy), or it trains (each trial its own run).
///
/// The key is the configuration's `Debug` form: f64's is its shortest round-trip form, so
/// equal keys mean equal configurations. (Two that compare equal but print differently,
/// 0.0 and -0.0, only lose the sharing.)
fn draw_key(exp: &Experiment) -> Option<String> {
    if exp.weights.is_some() || exp.task.train().is_some() {
        return None;
    }
    let model = MlpConfig {
        activations: Vec::new(),
        ..exp.model.clone()
    };
    Some(format!("{model:?}"))
}

/// A unit of a sweep: (point, trial).
type Unit = (usize, usize);

/// One draw of weights: the stacks (each the units of one point, in trial order) that run on
/// it. Every stack's trials are among the draw's.
pub(super) type Draw = Vec<Vec<Unit>>;

/// The points of one group, in order, each with its units.
type Group = Vec<(usize, Vec<Unit>)>;

/// The units `todo` (point, trial) in the order they run, as draws: the points of one key
/// (`key`; `None` for a point alone) are one group, in the order of their first unit; each
/// group's trials run in chunks of at most `limit` (the least of its points'), and in each
/// chunk every point of the group runs its own units of those trials as one stack.
pub(super) fn plan(
    todo: &[Unit],
    key: impl Fn(usize) -> Option<String>,
    limit: impl Fn(usize) -> usize,
) -> Vec<Draw> {
    // Groups in order of their first unit, each with its points in order and their units.
    let mut groups: Vec<Group> = Vec::new();
    let mut by_key: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut by_point: std::collections::HashMap<usize, (usize, usize)> =
        std::collections::HashMap::new();
    for &unit in todo {
        let point = unit.0;
        let (g, p) = *by_point.entry(point).or_insert_with(|| {
            // A new group where the key is new, or where the point has none.
            let new = groups.len();
            let g = key(point).map_or(new, |k| *by_key.entry(k).or_insert(new));
            if g == new {
                groups.push(Vec::new());
            }
            groups[g].push((point, Vec::new()));
            (g, groups[g].len() - 1)
        });
        groups[g][p].1.push(unit);
    }
    let mut draws = Vec::new();
    for mut group in groups {
        for (_, units) in &mut group {
            units.sort_unstable_by_key(|u| u.1);
        }
        let mut trials: Vec<usize> = group
            .iter()
            .flat_map(|(_, units)| units.iter().map(|u| u.1))
            .collect();
        trials.sort_unstable();
        trials.dedup();
        let size = group
            .iter()
            .map(|(point, _)| limit(*point))
            .min()
            .unwrap_or(1)
            .max(1);
        // Each point's units are in trial order: a cursor per point walks them chunk by chunk.
        let mut next = vec![0usize; group.len()];
        for chunk in trials.chunks(size) {
            let high = chunk[chunk.len() - 1];
            let stacks: Draw = group
                .iter()
                .zip(&mut next)
                .map(|((_, units), at)| {
                    let start = *at;
                    while units.get(*at).is_some_and(|u| u.1 <= high) {
                        *at += 1;
                    }
                    units[start..*at].to_vec()
                })
                .filter(|units| !units.is_empty())
                .collect();
            draws.push(stacks);
        }
    }
    draws
}

/// The draw order of a sweep's pending units, with the stack size of each point (`--stack`,
/// else as many of its trials as fit in `budget`).
pub(super) fn sweep_plan(
    todo: &[Unit],
    sweep: &Sweep,
    stack: Option<usize>,
    budget: u128,
) -> Vec<Draw> {
    plan(
        todo,
        |p| draw_key(sweep.point(p)),
        |p| stack.unwrap_or_else(|| auto_stack(sweep.point(p), budget)),
    )
}

/// The networks on the device, kept for the next point of the same draw: the trials they
/// hold and the precision they were loaded in.
struct Loaded {
    trials: Vec<usize>,
    precision: crate::config::Precision,
    stack: MlpStack,
}

/// Run one draw: each trial's weights drawn once, then each stack (one point's units) on them,
/// its lines appended to the log in trial order; `ran(point, units)` after each stack.
/// Returns the records.
pub(super) fn run_draw(
    exp: &Experiment,
    sweep: &Sweep,
    draw: &Draw,
    backend: &Backend,
    opts: &SweepOptions,
    log: &mut TrialLog,
    mut ran: impl FnMut(usize, usize),
) -> Result<Vec<TrialRecord>, SweepError> {
    let mut records = Vec::new();
    let Some(first) = draw.first().and_then(|s| s.first()) else {
        return Ok(records);
    };
    let base = sweep.point(first.0);
    if base.task.train().is_some() {
        // Training trials are independent runs, a point alone in its draw.
        for units in draw {
            let point = units[0].0;
            records.extend(run_training_units(
                exp,
                sweep.point(point),
                units,
                backend,
                log,
            )?);
            ran(point, units.len());
        }
        return Ok(records);
    }
    // The draw's trials, each drawn once from the first point's trial experiment (for a point
    // alone in its draw, its own).
    let mut trials: Vec<usize> = draw.iter().flatten().map(|u| u.1).collect();
    trials.sort_unstable();
    trials.dedup();
    let drawn: std::collections::BTreeMap<usize, MlpWeights> = trials
        .par_iter()
        .map(|&t| {
            (
                t,
                crate::run::weights_of(&trial_experiment(base, exp.seed, t)),
            )
        })
        .collect();
    let mut loaded: Option<Loaded> = None;
    for units in draw {
        let point = units[0].0;
        let point_exp = sweep.point(point);
        let trial_exps: Vec<Experiment> = units
            .iter()
            .map(|&(_, trial)| trial_experiment(point_exp, exp.seed, trial))
            .collect();
        let weights: Vec<MlpWeights> = units
            .iter()
            .map(|u| drawn[&u.1].with_activations(point_exp.model.activations.clone()))
            .collect();
        let own: Vec<usize> = units.iter().map(|u| u.1).collect();
        let mut l = match loaded.take() {
            Some(l) if l.trials == own && l.precision == point_exp.precision => l,
            old => {
                // The old stack goes before the new one is loaded: one stack on the device.
                drop(old);
                Loaded {
                    stack: crate::run::load_stack(&weights, point_exp, backend)?,
                    trials: own,
                    precision: point_exp.precision,
                }
            }
        };
        // A sweep over precision measures where each trial leaves the range, from its z_l.
        let keep_z = point_exp.precision != crate::config::Precision::F32 || exp.sweeps_precision();
        let outcomes =
            crate::run::execute_loaded(&trial_exps, weights, &mut l.stack, backend, keep_z)?;
        let lines: Vec<(String, Vec<TrialRecord>)> = units
            .par_iter()
            .zip(&trial_exps)
            .zip(outcomes)
            .map(|((&(point, trial), trial_exp), outcome)| {
                trial_lines(point, trial, trial_exp, &outcome, opts.thresholds)
            })
            .collect::<Result<_, _>>()?;
        records.extend(log.append(lines)?);
        ran(point, units.len());
        loaded = Some(l);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points 0..4 of a grid `activation × depth` (activation outermost): 0 and 2 share
    /// depth 2's weights, 1 and 3 depth 5's.
    fn key(p: usize) -> Option<String> {
        Some(format!("depth {}", p % 2))
    }

    fn units(points: &[usize], trials: &[usize]) -> Vec<(usize, usize)> {
        points
            .iter()
            .flat_map(|&p| trials.iter().map(move |&t| (p, t)))
            .collect()
    }

    #[test]
    fn points_that_share_weights_run_side_by_side_on_one_draw() {
        let todo = units(&[0, 1, 2, 3], &[0, 1, 2]);
        let draws = plan(&todo, key, |_| 10);
        assert_eq!(
            draws,
            vec![
                vec![units(&[0], &[0, 1, 2]), units(&[2], &[0, 1, 2])],
                vec![units(&[1], &[0, 1, 2]), units(&[3], &[0, 1, 2])],
            ]
        );
        // In chunks of the least stack of the group's points: here 2.
        let draws = plan(&todo, key, |p| if p == 2 { 2 } else { 10 });
        assert_eq!(
            draws,
            vec![
                vec![units(&[0], &[0, 1]), units(&[2], &[0, 1])],
                vec![units(&[0], &[2]), units(&[2], &[2])],
                vec![units(&[1], &[0, 1, 2]), units(&[3], &[0, 1, 2])],
            ]
        );
    }

    #[test]
    fn every_unit_runs_once_and_points_without_a_key_run_alone_as_before() {
        // A shard's units: each point owns other trials.
        let todo: Vec<(usize, usize)> = units(&[0, 1, 2, 3], &[0, 1, 2, 3, 4])
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % 3 == 1)
            .map(|(_, u)| u)
            .collect();
        for size in [1, 2, 3, 10] {
            let draws = plan(&todo, key, |_| size);
            let mut ran: Vec<(usize, usize)> = draws.iter().flatten().flatten().copied().collect();
            assert_eq!(ran.len(), todo.len(), "chunks of {size}");
            ran.sort_unstable();
            let mut want = todo.clone();
            want.sort_unstable();
            assert_eq!(ran, want, "chunks of {size}");
            for draw in &draws {
                let trials: std::collections::BTreeSet<usize> =
                    draw.iter().flatten().map(|u| u.1).collect();
                assert!(
                    trials.len() <= size,
                    "a draw of {trials:?}, chunks of {size}"
                );
                for stack in draw {
                    assert!(stack.iter().all(|u| u.0 == stack[0].0), "{stack:?}");
                }
            }
        }
        // Without keys, every point alone, in order, in chunks of its own stack size: the
        // order the units were given.
        let draws = plan(&todo, |_| None, |_| 2);
        let ran: Vec<(usize, usize)> = draws.iter().flatten().flatten().copied().collect();
        assert_eq!(ran, todo);
        assert!(draws.iter().all(|d| d.len() == 1 && d[0].len() <= 2));
    }
}
