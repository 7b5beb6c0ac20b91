//! Writes a good_lp model as free-format MPS, so that any MILP solver
//! (HiGHS, SCIP, CBC, Gurobi…) can solve exactly the model smo solves and
//! check its answer and bound.
//!
//! Conventions (those of HiGHS and SCIP): minimisation; the objective row
//! is `obj`; an objective constant is written as the negated right-hand
//! side of `obj`; binary columns get `BV` bounds, other integer columns are
//! wrapped in `MARKER INTORG/INTEND`; every bound is written explicitly
//! (no solver-specific defaults). Output order is deterministic: columns in
//! creation order, entries of a column in row order.

use std::collections::HashMap;
use std::fmt::Write as _;

use good_lp::{Constraint, Expression, IntoAffineExpression, ProblemVariables, Variable};

/// The parts of a model, as handed to good_lp.
pub(crate) struct Model<'a> {
    pub name: &'a str,
    pub vars: &'a ProblemVariables,
    /// Column names, in creation order (one per variable).
    pub columns: &'a [String],
    pub objective: &'a Expression,
    pub constraints: &'a [Constraint],
}

/// A finite number the way MPS readers parse it (full precision).
fn num(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:e}")
    }
}

pub(crate) fn write(m: &Model<'_>) -> String {
    let index: HashMap<Variable, usize> = m
        .vars
        .iter_variables_with_def()
        .enumerate()
        .map(|(i, (v, _))| (v, i))
        .collect();
    let n = index.len();
    // Column-major entries: (row, coefficient) per column; row 0 = obj.
    let mut entries: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (v, c) in m.objective.linear_coefficients() {
        if c != 0.0 {
            entries[index[&v]].push((0, c));
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "NAME {}", m.name);
    out.push_str("ROWS\n N obj\n");
    let mut rhs = Vec::new();
    for (i, c) in m.constraints.iter().enumerate() {
        let row = i + 1;
        let _ = writeln!(out, " {} r{i}", if c.is_equality() { 'E' } else { 'L' });
        let e = c.expression();
        for (v, coef) in e.linear_coefficients() {
            if coef != 0.0 {
                entries[index[&v]].push((row, coef));
            }
        }
        // Normalised as `Σ c·x + k ≤ 0` (or `= 0`): the bound is −k.
        let b = -e.constant();
        if b != 0.0 {
            rhs.push((i, b));
        }
    }
    out.push_str("COLUMNS\n");
    let defs: Vec<_> = m.vars.iter_variables_with_def().map(|(_, d)| d).collect();
    let mut in_int = false;
    for (j, col) in entries.iter_mut().enumerate() {
        col.sort_by_key(|e| e.0);
        let d = defs[j];
        let binary = d.is_integer() && d.get_min() == 0.0 && d.get_max() == 1.0;
        let general_int = d.is_integer() && !binary;
        if general_int != in_int {
            let tag = if general_int { "INTORG" } else { "INTEND" };
            let _ = writeln!(out, "    MARKER 'MARKER' '{tag}'");
            in_int = general_int;
        }
        let name = &m.columns[j];
        if col.is_empty() {
            // A column in no row still exists (with its bounds).
            let _ = writeln!(out, "    {name} obj 0");
        }
        for &(row, coef) in col.iter() {
            let r = if row == 0 {
                "obj".to_string()
            } else {
                format!("r{}", row - 1)
            };
            let _ = writeln!(out, "    {name} {r} {}", num(coef));
        }
    }
    if in_int {
        out.push_str("    MARKER 'MARKER' 'INTEND'\n");
    }
    out.push_str("RHS\n");
    let constant = m.objective.constant();
    if constant != 0.0 {
        let _ = writeln!(out, "    rhs obj {}", num(-constant));
    }
    for (i, b) in rhs {
        let _ = writeln!(out, "    rhs r{i} {}", num(b));
    }
    out.push_str("BOUNDS\n");
    for (j, d) in defs.iter().enumerate() {
        let name = &m.columns[j];
        let (lo, hi) = (d.get_min(), d.get_max());
        if d.is_integer() && lo == 0.0 && hi == 1.0 {
            let _ = writeln!(out, " BV bnd {name}");
        } else if lo == hi {
            let _ = writeln!(out, " FX bnd {name} {}", num(lo));
        } else if lo == f64::NEG_INFINITY && hi == f64::INFINITY {
            let _ = writeln!(out, " FR bnd {name}");
        } else {
            if lo == f64::NEG_INFINITY {
                let _ = writeln!(out, " MI bnd {name}");
            } else {
                let _ = writeln!(out, " LO bnd {name} {}", num(lo));
            }
            if hi != f64::INFINITY {
                let _ = writeln!(out, " UP bnd {name} {}", num(hi));
            }
        }
    }
    out.push_str("ENDATA\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use good_lp::{Expression, variable};

    #[test]
    fn writes_rows_columns_rhs_and_bounds_in_a_fixed_order() {
        let mut vars = ProblemVariables::new();
        let x = vars.add(variable().binary());
        let y = vars.add(variable().min(0.0));
        let z = vars.add(variable().integer().min(-2.0).max(5.0));
        let one = vars.add(variable().clamp(1.0, 1.0));
        let objective: Expression = 3.0 * x + 0.5 * y + z + 2.0 * one;
        let constraints = vec![
            (x + y).leq(4.0),
            Expression::from(y).geq(2.0 * x - 1.5),
            (x + z).eq(3.0),
        ];
        let columns: Vec<String> = ["x", "y", "z", "one"].map(String::from).to_vec();
        let text = write(&Model {
            name: "t",
            vars: &vars,
            columns: &columns,
            objective: &objective,
            constraints: &constraints,
        });
        let expected = "NAME t
ROWS
 N obj
 L r0
 L r1
 E r2
COLUMNS
    x obj 3
    x r0 1
    x r1 2
    x r2 1
    y obj 5e-1
    y r0 1
    y r1 -1
    MARKER 'MARKER' 'INTORG'
    z obj 1
    z r2 1
    MARKER 'MARKER' 'INTEND'
    one obj 2
RHS
    rhs r0 4
    rhs r1 1.5e0
    rhs r2 3
BOUNDS
 BV bnd x
 LO bnd y 0
 LO bnd z -2
 UP bnd z 5
 FX bnd one 1
ENDATA
";
        assert_eq!(text, expected);
    }

    #[test]
    fn numbers_keep_full_precision() {
        assert_eq!(num(0.1 + 0.2), "3.0000000000000004e-1");
        assert_eq!(num(-7.0), "-7");
        assert_eq!(num(1e-6), "1e-6");
    }
}
