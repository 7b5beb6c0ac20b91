#!/usr/bin/env python3
"""Solve an exported smo placement model with an independent solver.

    smo bench placement --services 100 --clusters 10 --export-mps m.mps ...
    python3 benches/placement-reference.py m.mps --solver scip --time-limit 600 \
        [--start m.start] [--solution m.solution]

Prints one JSON object: the solver's objective and proven bound on smo's
objective (the tie-break costs smo adds, 1e-6 * rank / clusters per chosen
x column, are taken out of both), its status and the wall time. Copy the
figures into benches/placement-reference.json when they beat the entry
there. Needs PySCIPOpt (`pip install pyscipopt`, SCIP bundled in the wheel)
or highspy (`pip install highspy`).
"""

import argparse
import json
import re
import sys
import time

TIE = 1e-6
X = re.compile(r"^x_s\d+_c(\d+)$")


def clusters_in(path):
    with open(path) as f:
        return sum(1 for line in f if line.startswith("* cluster c"))


def tie_cost(values, nc):
    """Tie-break cost and chosen x columns of a solution {name: value}."""
    cost, chosen = 0.0, 0
    for name, v in values.items():
        m = X.match(name)
        if m and v > 0.5:
            cost += TIE * int(m.group(1)) / nc
            chosen += 1
    return cost, chosen


def read_start(path):
    """`name value` lines (smo bench placement --export-mps writes them)."""
    if not path:
        return {}
    with open(path) as f:
        return {n: float(v) for n, v in (line.split() for line in f if line.strip())}


def scip(path, limit, threads, start):
    import pyscipopt

    m = pyscipopt.Model()
    m.hideOutput()
    m.readProblem(path)
    if start:
        sol = m.createSol()
        for v in m.getVars():
            m.setSolVal(sol, v, start.get(v.name, 0.0))
        if not m.addSol(sol):
            print("warning: SCIP rejected the start", file=sys.stderr)
    m.setParam("limits/time", limit)
    m.setParam("parallel/maxnthreads", threads)
    m.optimize()
    values = {v.name: m.getVal(v) for v in m.getVars()} if m.getNSols() else {}
    obj = m.getObjVal() if m.getNSols() else None
    return obj, m.getDualbound(), m.getStatus(), values, "SCIP " + str(m.version())


def highs(path, limit, threads, start):
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(limit))
    h.setOptionValue("threads", threads)
    h.readModel(path)
    if start:
        sol = highspy.HighsSolution()
        sol.col_value = [start.get(n, 0.0) for n in h.getLp().col_names_]
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    info = h.getInfo()
    lp = h.getLp()
    sol = h.getSolution()
    values = dict(zip(lp.col_names_, sol.col_value))
    obj = info.objective_function_value if info.primal_solution_status == 2 else None
    status = h.modelStatusToString(h.getModelStatus())
    return obj, info.mip_dual_bound, status, values, "HiGHS " + h.version()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mps")
    ap.add_argument("--solver", choices=["scip", "highs"], default="scip")
    ap.add_argument("--time-limit", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--start", help="a start solution (`name value` lines)")
    ap.add_argument(
        "--solution", help="write the solver's answer here (`name value` lines, as --start reads)"
    )
    a = ap.parse_args()
    t0 = time.monotonic()
    run = scip if a.solver == "scip" else highs
    start = read_start(a.start)
    obj, bound, status, values, version = run(a.mps, a.time_limit, a.threads, start)
    seconds = time.monotonic() - t0
    ties, chosen = tie_cost(values, clusters_in(a.mps))
    if a.solution and values:
        with open(a.solution, "w") as f:
            for name, v in values.items():
                if abs(v) > 1e-9:
                    f.write(f"{name} {v:.9g}\n")
    out = {
        "solver": version,
        "start": bool(start),
        "status": status,
        "seconds": round(seconds, 1),
        "objective": None if obj is None else round(obj - ties, 6),
        # Each chosen x column adds at most TIE to the model's objective.
        "bound": round(bound - TIE * chosen, 6) if chosen else bound,
    }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
