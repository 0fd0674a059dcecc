//! Named proof steps and their numeric margins over many instances.

/// What a step asserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// `lhs ≤ rhs`; the margin is `rhs − lhs` (the worst one is the smallest).
    AtMost,
    /// `lhs = rhs`; the margin is `|lhs − rhs|` (the worst one is the largest).
    Equal,
}

/// One numbered step of a written proof, accumulated over instances.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: &'static str,
    pub statement: &'static str,
    pub relation: Relation,
    /// Allowed round-off, relative to `1 + |lhs| + |rhs|`.
    pub tolerance: f64,
    pub instances: usize,
    pub worst_margin: f64,
    pub failures: usize,
    pub first_failure: Option<String>,
}

impl Step {
    pub fn new(
        name: &'static str,
        statement: &'static str,
        relation: Relation,
        tolerance: f64,
    ) -> Self {
        let worst_margin = match relation {
            Relation::AtMost => f64::INFINITY,
            Relation::Equal => 0.0,
        };
        Step {
            name,
            statement,
            relation,
            tolerance,
            instances: 0,
            worst_margin,
            failures: 0,
            first_failure: None,
        }
    }

    /// Records one instance of `lhs (relation) rhs`; `context` describes the instance.
    pub fn record(&mut self, lhs: f64, rhs: f64, context: impl FnOnce() -> String) {
        self.instances += 1;
        let allowed = self.tolerance * (1.0 + lhs.abs() + rhs.abs());
        let ok = match self.relation {
            Relation::AtMost => {
                self.worst_margin = self.worst_margin.min(rhs - lhs);
                lhs <= rhs + allowed
            }
            Relation::Equal => {
                self.worst_margin = self.worst_margin.max((lhs - rhs).abs());
                (lhs - rhs).abs() <= allowed
            }
        };
        if !ok || !lhs.is_finite() || !rhs.is_finite() {
            self.failures += 1;
            if self.first_failure.is_none() {
                self.first_failure =
                    Some(format!("lhs = {lhs:.12e}, rhs = {rhs:.12e}; {}", context()));
            }
        }
    }

    pub fn passed(&self) -> bool {
        self.failures == 0 && self.instances > 0
    }
}

/// The steps of one proof, in the order the proof takes them.
pub struct Proof {
    pub title: &'static str,
    pub steps: Vec<Step>,
}

impl Proof {
    pub fn step(&mut self, name: &str) -> &mut Step {
        self.steps
            .iter_mut()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("step {name} is declared"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violated_inequality_fails_and_reports_the_instance() {
        let mut step = Step::new("x", "a ≤ b", Relation::AtMost, 1e-9);
        step.record(1.0, 2.0, || "fine".into());
        assert!(step.passed());
        step.record(2.0, 1.0, || "instance 7".into());
        assert!(!step.passed());
        assert_eq!(step.worst_margin, -1.0);
        assert!(
            step.first_failure
                .as_deref()
                .unwrap()
                .contains("instance 7")
        );
    }

    #[test]
    fn equalities_allow_only_round_off() {
        let mut step = Step::new("y", "a = b", Relation::Equal, 1e-9);
        step.record(1.0, 1.0 + 1e-12, String::new);
        assert!(step.passed());
        step.record(1.0, 1.0 + 1e-6, String::new);
        assert!(!step.passed());
        let mut nan = Step::new("z", "a = b", Relation::Equal, 1e-9);
        nan.record(f64::NAN, 1.0, String::new);
        assert!(!nan.passed());
    }
}
