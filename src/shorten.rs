//! Shortens a path found by a search that does not look for the shortest one (depth-first, or
//! random walks): runs of steps are dropped as long as what is left is still a path of
//! the model (every step enabled where it is taken, every state within the boundary) that ends
//! where the original did — a violation of the same `Always` property, or a state where the
//! same `Sometimes` property holds. The result is minimal in that dropping any further single
//! step, or any run of up to four, breaks it. Every step is replayed through the model itself, so the shorter path is as real
//! as the one found.

use stateright::{Expectation, Model, Property};

/// A path as the checker reports it: each state with the action taken from it (none after
/// the last).
pub type Steps<M> = Vec<(<M as Model>::State, Option<<M as Model>::Action>)>;

/// Whether `state` is where a path for `property` may end.
fn is_end<M: Model>(model: &M, property: &Property<M>, state: &M::State) -> bool {
    let holds = (property.condition)(model, state);
    match property.expectation {
        Expectation::Always | Expectation::Eventually => !holds,
        Expectation::Sometimes => holds,
    }
}

/// Replays `actions` from `init`, stopping at the first state that ends a path for `property`;
/// `None` if some action is not enabled where it comes, leaves the boundary, or no state on the
/// way ends a path.
fn replay<M: Model>(
    model: &M,
    property: &Property<M>,
    init: &M::State,
    actions: &[M::Action],
) -> Option<Steps<M>>
where
    M::State: Clone,
    M::Action: Clone + PartialEq,
{
    let mut state = init.clone();
    let mut steps = Vec::new();
    let mut enabled = Vec::new();
    for action in actions {
        if is_end(model, property, &state) {
            break;
        }
        enabled.clear();
        model.actions(&state, &mut enabled);
        if !enabled.contains(action) {
            return None;
        }
        let next = model.next_state(&state, action.clone())?;
        if !model.within_boundary(&next) {
            return None;
        }
        steps.push((std::mem::replace(&mut state, next), Some(action.clone())));
    }
    if !is_end(model, property, &state) {
        return None;
    }
    steps.push((state, None));
    Some(steps)
}

/// The found path without the steps it can do without; the path itself if it does
/// not replay (which would be a checker bug: it is then reported as found).
pub fn shorten<M: Model>(model: &M, property: &Property<M>, path: Steps<M>) -> Steps<M>
where
    M::State: Clone,
    M::Action: Clone + PartialEq,
{
    let Some((init, _)) = path.first() else {
        return path;
    };
    let init = init.clone();
    let mut actions: Vec<M::Action> = path.iter().filter_map(|(_, a)| a.clone()).collect();
    let Some(mut best) = replay(model, property, &init, &actions) else {
        return path;
    };
    loop {
        let mut dropped_any = false;
        // Runs of steps, longest first (a step may be needed only together with another, as
        // a request and its answer are); from the end backwards, since late steps depend on
        // early ones more often than the reverse.
        let mut runs: Vec<usize> = std::iter::successors(Some(actions.len() / 2), |n| Some(n / 2))
            .take_while(|n| *n > 4)
            .chain([4, 3, 2, 1])
            .collect();
        runs.dedup();
        for run in runs {
            let mut start = actions.len().saturating_sub(run);
            loop {
                let end = (start + run).min(actions.len());
                if start < end {
                    let mut candidate = actions.clone();
                    candidate.drain(start..end);
                    if let Some(steps) = replay(model, property, &init, &candidate) {
                        actions = steps.iter().filter_map(|(_, a)| a.clone()).collect();
                        best = steps;
                        dropped_any = true;
                    }
                }
                if start == 0 {
                    break;
                }
                start = start.min(actions.len()) - 1;
            }
        }
        if !dropped_any {
            return best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two counters; `a` may only grow while `b` is even.
    struct Counters;

    #[derive(Clone, Debug, PartialEq)]
    enum Step {
        A,
        B,
    }

    impl Model for Counters {
        type State = (u8, u8);
        type Action = Step;

        fn init_states(&self) -> Vec<(u8, u8)> {
            vec![(0, 0)]
        }

        fn actions(&self, state: &(u8, u8), actions: &mut Vec<Step>) {
            if state.1 % 2 == 0 {
                actions.push(Step::A);
            }
            actions.push(Step::B);
        }

        fn next_state(&self, state: &(u8, u8), action: Step) -> Option<(u8, u8)> {
            Some(match action {
                Step::A => (state.0 + 1, state.1),
                Step::B => (state.0, state.1 + 1),
            })
        }

        fn properties(&self) -> Vec<Property<Self>> {
            vec![
                Property::always("a stays below 3", |_, s: &(u8, u8)| s.0 < 3),
                Property::sometimes("b reaches 2", |_, s: &(u8, u8)| s.1 >= 2),
            ]
        }

        fn within_boundary(&self, state: &(u8, u8)) -> bool {
            state.1 < 5
        }
    }

    fn walk(actions: &[Step]) -> Steps<Counters> {
        let mut state = (0, 0);
        let mut steps = Vec::new();
        for action in actions {
            let next = Counters.next_state(&state, action.clone()).unwrap();
            steps.push((state, Some(action.clone())));
            state = next;
        }
        steps.push((state, None));
        steps
    }

    fn actions(steps: &Steps<Counters>) -> Vec<Step> {
        steps.iter().filter_map(|(_, a)| a.clone()).collect()
    }

    #[test]
    fn drops_every_step_the_violation_does_not_need() {
        use Step::*;
        let found = walk(&[B, B, A, B, B, A, A]);
        let property = &Counters.properties()[0];
        let short = shorten(&Counters, property, found);
        assert_eq!(actions(&short), vec![A, A, A]);
        assert_eq!(short.last().unwrap().0, (3, 0));
    }

    #[test]
    fn keeps_steps_that_enable_later_ones() {
        use Step::*;
        // `A` is enabled only while `b` is even: the two B steps can only go together.
        let found = walk(&[A, B, B, A, A]);
        let property = &Counters.properties()[0];
        assert_eq!(actions(&shorten(&Counters, property, found)), vec![A, A, A]);
        let sometimes = &Counters.properties()[1];
        let found = walk(&[A, B, B, A]);
        assert_eq!(actions(&shorten(&Counters, sometimes, found)), vec![B, B]);
    }

    #[test]
    fn a_path_that_does_not_replay_is_kept() {
        use Step::*;
        // Not a violation of `a stays below 3`: nothing to shorten towards.
        let found = walk(&[A, B]);
        let property = &Counters.properties()[0];
        assert_eq!(actions(&shorten(&Counters, property, found)), vec![A, B]);
    }
}
