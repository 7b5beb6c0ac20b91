//! The exported MPS is the model smo solves: read back by a small MPS
//! reader (standard free-format semantics, written here independently of
//! the writer) and solved with HiGHS, it reaches the objective of smo's
//! own exact solve on the same instance.

use std::collections::HashMap;

use good_lp::solvers::highs::highs;
use good_lp::{Expression, ProblemVariables, SolverModel, variable};

use super::check::{effective_weights, evaluate};
use super::instance::Instance;
use super::milp;
use super::*;

struct Col {
    int: bool,
    lo: f64,
    hi: f64,
    binary: bool,
    entries: Vec<(String, f64)>,
}

/// Minimises the MPS model; returns its optimal objective.
fn solve_mps(text: &str) -> f64 {
    let mut section = "";
    let mut rows: Vec<(String, char)> = Vec::new();
    let mut cols: Vec<(String, Col)> = Vec::new();
    let mut rhs: HashMap<String, f64> = HashMap::new();
    let mut int = false;
    for line in text.lines().filter(|l| !l.starts_with('*')) {
        if !line.starts_with(' ') {
            section = line.split_whitespace().next().unwrap_or("");
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match section {
            "ROWS" => rows.push((f[1].to_string(), f[0].chars().next().unwrap())),
            "COLUMNS" if f[1] == "'MARKER'" => int = f[2] == "'INTORG'",
            "COLUMNS" => {
                if cols.last().is_none_or(|c| c.0 != f[0]) {
                    let col = Col {
                        int,
                        lo: 0.0,
                        hi: f64::INFINITY,
                        binary: false,
                        entries: Vec::new(),
                    };
                    cols.push((f[0].to_string(), col));
                }
                let col = &mut cols.last_mut().unwrap().1;
                for pair in f[1..].chunks(2) {
                    col.entries
                        .push((pair[0].to_string(), pair[1].parse().unwrap()));
                }
            }
            "RHS" => {
                for pair in f[1..].chunks(2) {
                    rhs.insert(pair[0].to_string(), pair[1].parse().unwrap());
                }
            }
            "BOUNDS" => {
                let col = &mut cols.iter_mut().find(|c| c.0 == f[2]).unwrap().1;
                let v = || f[3].parse::<f64>().unwrap();
                match f[0] {
                    "BV" => col.binary = true,
                    "LO" => col.lo = v(),
                    "UP" => col.hi = v(),
                    "FX" => (col.lo, col.hi) = (v(), v()),
                    "FR" => (col.lo, col.hi) = (f64::NEG_INFINITY, f64::INFINITY),
                    "MI" => col.lo = f64::NEG_INFINITY,
                    other => panic!("bound type {other}"),
                }
            }
            _ => {}
        }
    }
    let mut vars = ProblemVariables::new();
    let mut row_expr: HashMap<String, Expression> = HashMap::new();
    for (_, c) in &cols {
        let def = if c.binary {
            variable().binary()
        } else {
            let d = variable().min(c.lo).max(c.hi);
            if c.int { d.integer() } else { d }
        };
        let v = vars.add(def);
        for (row, coef) in &c.entries {
            row_expr.entry(row.clone()).or_default().add_mul(*coef, v);
        }
    }
    let objective_row = rows.iter().find(|r| r.1 == 'N').unwrap().0.clone();
    let objective = row_expr.remove(&objective_row).unwrap_or_default();
    let constant = -rhs.get(&objective_row).copied().unwrap_or(0.0);
    let mut model = vars.minimise(objective.clone()).using(highs);
    for (name, sense) in rows.iter().filter(|r| r.1 != 'N') {
        let e = row_expr.remove(name).unwrap_or_default();
        let b = rhs.get(name).copied().unwrap_or(0.0);
        model.add_constraint(match sense {
            'L' => e.leq(b),
            'G' => e.geq(b),
            'E' => e.eq(b),
            other => panic!("row type {other}"),
        });
    }
    let sol = model
        .set_option("mip_rel_gap", 0.0)
        .set_option("threads", solver::HIGHS_THREADS)
        .solve()
        .expect("the exported model solves");
    objective.eval_with(&sol) + constant
}

#[test]
fn the_exported_model_has_smos_optimum() {
    for seed in 1..=4 {
        let p = crate::bench::placement_instance(14, 4, seed);
        let opts = PlacementOptions {
            mip_gap: 0.0,
            time_limit_s: 60.0,
            ..PlacementOptions::default()
        };
        let inst = Instance::new(&p, &opts).unwrap();
        let w = effective_weights(&inst, &opts);
        let (a, solved, _) = milp::solve(&inst, &w, milp::ALL, 60.0, 0.0, None).unwrap();
        assert_eq!(solved.finish, solver::Finish::Optimal, "seed {seed}");
        let ours = evaluate(&inst, &w, &a).total;
        let exported = solve_mps(&export_mps(&p, &opts).unwrap());
        // The exported objective adds the tie-break costs (< TIE each).
        let ties = milp::TIE * inst.k.iter().sum::<usize>() as f64;
        assert!(
            exported >= ours - 1e-6 && exported <= ours + ties + 1e-6,
            "seed {seed}: exported model optimum {exported}, smo's {ours}"
        );
    }
}
