//! A webhook's conditions and how they combine, as one flat array of
//! numbers: what the rule set walks for each candidate webhook.
//!
//! A plan is a group: a header word, then its operands. An operand is
//! either a condition's number in the rule set (decided at most once per
//! event, whichever webhooks use it) or a nested group. A header has the
//! top bit set, says whether the group needs all or any of its operands,
//! and how many words follow it, so a group whose answer is known early is
//! skipped in one step. `all` and `any` are one group of numbers; an
//! expression is its tree, in the order it was written.
//!
//! Walking one array of numbers, rather than the webhook's conditions,
//! match mode and expression tree each behind a pointer of its own, keeps
//! each candidate to a cache line or two and a call at most, which counts
//! double inside wasmtime: each call there checks the deadline.

use crate::expression::Expr;

/// Marks a group's header; a word without it is a condition's number.
const GROUP: u32 = 1 << 31;
/// In a header: the group needs one operand to hold, not all of them.
const ANY: u32 = 1 << 30;
/// In a header: how many words the group's operands take.
const LENGTH: u32 = ANY - 1;

/// The largest number a condition can have in a plan.
pub(crate) const MAX_NUMBER: u32 = GROUP - 1;

/// A compiled plan (see the module documentation). The empty plan never
/// fires: it stands for a free slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan(Box<[u32]>);

impl Plan {
    /// All of conditions `0..count` must hold (`any` false), or one of
    /// them.
    pub(crate) fn flat(any: bool, count: usize) -> Self {
        let count = u32::try_from(count).unwrap_or(MAX_NUMBER).min(MAX_NUMBER);
        let mut code = Vec::with_capacity(count as usize + 1);
        push_group(&mut code, any, |code| code.extend(0..count));
        Self(code.into())
    }

    /// `expression`, condition `id` in it numbered `number(id)`.
    pub(crate) fn expression(expression: &Expr, number: impl Fn(u32) -> u32) -> Self {
        fn encode(expr: &Expr, number: &dyn Fn(u32) -> u32, code: &mut Vec<u32>) {
            match expr {
                Expr::Condition(id) => code.push(number(*id).min(MAX_NUMBER)),
                Expr::And(operands) | Expr::Or(operands) => {
                    push_group(code, matches!(expr, Expr::Or(_)), |code| {
                        operands.iter().for_each(|e| encode(e, number, code))
                    });
                }
            }
        }
        let mut code = Vec::new();
        match expression {
            // The root is always a group.
            Expr::Condition(_) => {
                push_group(&mut code, false, |code| encode(expression, &number, code))
            }
            group => encode(group, &number, &mut code),
        }
        Self(code.into())
    }

    /// The same plan with condition `n` numbered `numbers[n]`.
    pub(crate) fn renumbered(&self, numbers: &[u32]) -> Self {
        let word = |word: u32| match word & GROUP {
            0 => numbers.get(word as usize).copied().unwrap_or(MAX_NUMBER),
            _ => word,
        };
        Self(self.0.iter().map(|w| word(*w)).collect())
    }

    /// Whether the plan holds, asking `holds` about each condition number
    /// it needs, left to right, skipping what cannot change the answer.
    #[inline]
    pub(crate) fn decide(&self, holds: &mut impl FnMut(u32) -> bool) -> bool {
        !self.0.is_empty() && walk(&self.0, holds)
    }
}

/// Appends a group header and what `operands` writes after it, then sets
/// the header's length.
fn push_group(code: &mut Vec<u32>, any: bool, operands: impl FnOnce(&mut Vec<u32>)) {
    let header = code.len();
    code.push(GROUP | if any { ANY } else { 0 });
    operands(code);
    // A webhook has at most 100 conditions, and an expression at most a
    // few thousand characters: far below the length field's 2^30.
    let length = u32::try_from(code.len() - header - 1).unwrap_or(LENGTH);
    code[header] |= length.min(LENGTH);
}

/// Decides a nested group: a call of its own, so that [`walk`] can be
/// inlined where plans are decided (most plans have no nested group).
#[inline(never)]
fn nested(code: &[u32], holds: &mut impl FnMut(u32) -> bool) -> bool {
    walk(code, holds)
}

/// Decides the group starting at `code[0]`.
#[inline]
fn walk(code: &[u32], holds: &mut impl FnMut(u32) -> bool) -> bool {
    let Some((&header, rest)) = code.split_first() else {
        return false;
    };
    let any = header & ANY != 0;
    let end = ((header & LENGTH) as usize).min(rest.len());
    let mut operands = &rest[..end];
    // An `all` group stops at the first operand that fails, an `any`
    // group at the first that holds: either way, at an operand equal to
    // `any`.
    while let Some((&word, after)) = operands.split_first() {
        let (holds_here, next) = if word & GROUP == 0 {
            (holds(word), after)
        } else {
            let width = ((word & LENGTH) as usize + 1).min(operands.len());
            let (group, next) = operands.split_at(width);
            (nested(group, holds), next)
        };
        if holds_here == any {
            return any;
        }
        operands = next;
    }
    !any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expression::Expr::{And, Condition, Or};

    /// Decides `plan` with conditions `truth` (by number), and the numbers
    /// it asked about, in order.
    fn run(plan: &Plan, truth: &[bool]) -> (bool, Vec<u32>) {
        let mut asked = Vec::new();
        let answer = plan.decide(&mut |n| {
            asked.push(n);
            truth[n as usize]
        });
        (answer, asked)
    }

    #[test]
    fn flat_groups_stop_at_the_first_operand_that_settles_them() {
        let all = Plan::flat(false, 3).renumbered(&[2, 0, 1]);
        assert_eq!(run(&all, &[true, true, true]), (true, vec![2, 0, 1]));
        assert_eq!(run(&all, &[false, true, true]), (false, vec![2, 0]));
        let any = Plan::flat(true, 3).renumbered(&[2, 0, 1]);
        assert_eq!(run(&any, &[false, false, false]), (false, vec![2, 0, 1]));
        assert_eq!(run(&any, &[true, false, false]), (true, vec![2, 0]));
    }

    #[test]
    fn an_empty_group_is_all_of_nothing_and_an_empty_plan_never_fires() {
        assert_eq!(run(&Plan::flat(false, 0), &[]), (true, vec![]));
        assert_eq!(run(&Plan::default(), &[]), (false, vec![]));
    }

    #[test]
    fn expressions_skip_nested_groups_whose_answer_cannot_matter() {
        // (1 or 2) and (3 or (4 and 5)), conditions numbered 10..=14.
        let expr = And(vec![
            Or(vec![Condition(0), Condition(1)]),
            Or(vec![Condition(2), And(vec![Condition(3), Condition(4)])]),
        ]);
        let plan = Plan::expression(&expr, |id| id + 10);
        let truth = |set: &[u32]| -> Vec<bool> { (0..15).map(|n| set.contains(&n)).collect() };
        // The first group fails: the second is skipped whole.
        assert_eq!(run(&plan, &truth(&[])), (false, vec![10, 11]));
        assert_eq!(
            run(&plan, &truth(&[10, 13, 14])),
            (true, vec![10, 12, 13, 14])
        );
        assert_eq!(
            run(&plan, &truth(&[11, 13])),
            (false, vec![10, 11, 12, 13, 14])
        );
        // A lone condition is a group of one.
        let lone = Plan::expression(&Condition(1), |id| id + 10);
        assert_eq!(run(&lone, &truth(&[11])), (true, vec![11]));
        assert_eq!(run(&lone, &truth(&[])), (false, vec![11]));
    }
}
