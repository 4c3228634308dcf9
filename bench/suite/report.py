#!/usr/bin/env python3
"""Aggregate the suite's raw lines into docs/bench/results.md and a gnuplot
script + data for docs/bench/results.png. Standard library only.

Input (--raw): one line per measurement, `round runtime name value`, as
written by bench/run-suite.sh. Workload order and units come from
WORKLOADS.md (--workloads); names printed by a program but not listed there
are appended in the order first seen, so new workloads need no change here.
Machine/version facts come from SUITE_* environment variables.
"""
import argparse
import os
import re
import statistics
import sys
from collections import OrderedDict, defaultdict

RUNTIMES = ["ursa", "tokio", "go", "fiber"]
PEERS = RUNTIMES[1:]
DASH = "—"
BAR_COLORS = {"ursa": "#d62728", "tokio": "#1f77b4", "go": "#2ca02c", "fiber": "#9467bd"}


def parse_workloads(path):
    """[(name, section, what, divisor)] in WORKLOADS.md order.
    section is 'time' or 'mem' (the table after 'Memory workloads')."""
    out = []
    if not path or not os.path.isfile(path):
        return out
    section = "time"
    with open(path, encoding="utf-8") as f:
        for line in f:
            if re.match(r"\s*memory workloads", line, re.I):
                section = "mem"
            m = re.match(r"\s*\|\s*`([A-Za-z0-9_]+)`\s*\|(.*)", line)
            if not m:
                continue
            cells = [c.strip() for c in m.group(2).split("|")]
            what = cells[0] if cells else ""
            div = cells[1] if len(cells) > 1 else ""
            out.append((m.group(1), section, what, div))
    return out


_MULT = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}


def _num(tok):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKMG]?)", tok)
    return float(m.group(1)) * _MULT[m.group(2)] if m else None


def ops_per_run(what, div, scale):
    """Best-effort op count for instructions/op, from the WORKLOADS.md
    columns: `4·250k·S`, `4M·S`, `2N` with `N=1M·S`, `total received` with
    `5M·S`. None if it cannot be read."""
    def product(expr):
        val = 1.0
        for part in re.split(r"[·*×x]", expr.replace(" ", "")):
            if part in ("S", ""):
                continue
            n = _num(part)
            if n is None:
                return None
            val *= n
        return val * scale

    dm = re.match(r"\s*([\d.]+[kKMG]?(?:\s*[·*×]\s*[\d.]+[kKMG]?)*\s*·\s*S)\b", div)
    if dm:
        return product(dm.group(1))
    nm = re.search(r"N\s*=\s*([\d.]+[kKMG]?)\s*·\s*S", what) or re.search(r"([\d.]+[kKMG]?)\s*·\s*S", what)
    if not nm:
        return None
    n = _num(nm.group(1)) * scale
    km = re.match(r"\s*(\d+)\s*N\b", div)
    return n * int(km.group(1)) if km else n


def fmt(v, unit):
    if v is None:
        return DASH
    if unit == "bytes":
        return f"{v:.0f}"
    if v >= 1000:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r):
    if r is None:
        return DASH
    return f"{r:.2f}" if r < 10 else f"{r:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--failures")
    ap.add_argument("--perf")
    ap.add_argument("--workloads", default="")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--md", required=True)
    ap.add_argument("--plotdir", required=True)
    a = ap.parse_args()
    env = os.environ.get

    spec = parse_workloads(a.workloads)
    info = OrderedDict((n, (sec, what, div)) for n, sec, what, div in spec)

    vals = defaultdict(list)  # (runtime, name) -> [values]
    seen = []
    bad_lines = 0
    with open(a.raw, encoding="utf-8") as f:
        for line in f:
            p = line.split()
            if len(p) != 4:
                continue
            _, rt, name, v = p
            try:
                x = float(v)
            except ValueError:
                bad_lines += 1
                continue
            vals[(rt, name)].append(x)
            if name not in seen:
                seen.append(name)

    names = list(info) + [n for n in seen if n not in info]
    runtimes = RUNTIMES + sorted({rt for rt, _ in vals} - set(RUNTIMES))
    peers = [r for r in runtimes if r != "ursa"]

    def unit(name):
        sec = info.get(name, (None,))[0]
        return "bytes" if sec == "mem" or (sec is None and name.startswith("mem_")) else "ns/op"

    def med(rt, name):
        xs = vals.get((rt, name))
        return statistics.median(xs) if xs else None

    def spread(rt, name):
        xs = vals.get((rt, name))
        return (min(xs), max(xs), len(xs)) if xs else None

    failures = []
    if a.failures and os.path.isfile(a.failures):
        with open(a.failures) as f:
            failures = [l.split() for l in f if l.strip()]

    perf = {}
    if a.perf and os.path.isfile(a.perf):
        with open(a.perf) as f:
            for l in f:
                p = l.split()
                if len(p) == 2:
                    perf[p[0]] = float(p[1])

    # ---------------------------------------------------------------- table
    rows = []
    for name in names:
        u = unit(name)
        m = {rt: med(rt, name) for rt in runtimes}
        pm = [(m[p], p) for p in peers if m[p] is not None]
        best = min(pm) if pm else None
        ratio = m["ursa"] / best[0] if best and m.get("ursa") is not None and best[0] > 0 else None
        rows.append((name, u, m, best, ratio))

    L = []
    L.append("# ursa benchmark suite: results")
    L.append("")
    L.append("Generated by `bash bench/run-suite.sh "
             f"{a.scale:g} {a.rounds}` — do not edit by hand; rerun the command.")
    L.append("")
    L.append(f"- **Date:** {env('SUITE_DATE', '?')}")
    L.append(f"- **Machine:** {env('SUITE_CPU', '?')}, {env('SUITE_CORES', '?')} cores, "
             f"{env('SUITE_MEM', '?')} RAM, Linux {env('SUITE_KERNEL', '?')}")
    L.append(f"- **ursa:** {env('SUITE_GCC', '?')}, CMake build type "
             f"{env('SUITE_CMAKE_BT', '?') or '?'} (`build/bench`)")
    L.append(f"- **Tokio:** tokio {env('SUITE_TOKIO', '?') or '?'} (Cargo.lock), "
             f"{env('SUITE_RUSTC', '?')}, {env('SUITE_CARGO', '?')}, release + LTO")
    L.append(f"- **Go:** {env('SUITE_GO', '?')}")
    L.append(f"- **Boost.Fiber:** Boost {env('SUITE_BOOST', '?') or '?'} "
             f"(libboost-fiber-dev {env('SUITE_BOOST_PKG', '?') or '?'}), {env('SUITE_GXX', '?')}, -O2")
    L.append(f"- **Scale:** S = {a.scale:g}; **rounds:** {a.rounds} (interleaved)")
    load = (env("SUITE_LOAD") or "").split()
    busy = False
    if len(load) == 3:
        try:
            busy = float(load[1]) > float(env("SUITE_CORES", "0") or 0) + 1
        except ValueError:
            pass
        L.append(f"- **Load average (1 min):** {load[0]} before the rounds, up to {load[1]} "
                 f"when a program started, {load[2]} after"
                 + (" — **the machine was busy with other work; treat the numbers as noisy**" if busy else ""))
    L.append("")
    L.append("## Medians")
    L.append("")
    L.append("Median over the rounds, ns/op (bytes for `mem_*`); lower is better. "
             "`ursa/best` = ursa ÷ the best (lowest) peer: below 1 means ursa is ahead. "
             f"{DASH} = the runtime does not (yet) have that workload.")
    L.append("")
    hdr = ["workload", "unit"] + runtimes + ["best peer", "ursa/best"]
    L.append("| " + " | ".join(hdr) + " |")
    L.append("|" + "|".join(["---", "---"] + ["--:"] * len(runtimes) + ["---", "--:"]) + "|")
    for name, u, m, best, ratio in rows:
        cells = [f"`{name}`", u] + [fmt(m[rt], u) for rt in runtimes]
        cells += [best[1] if best else DASH, fmt_ratio(ratio)]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("## Spread")
    L.append("")
    L.append("min–max over the rounds (number of rounds that printed the workload, if not all).")
    L.append("")
    L.append("| " + " | ".join(["workload"] + runtimes) + " |")
    L.append("|" + "|".join(["---"] + ["--:"] * len(runtimes)) + "|")
    for name, u, m, best, ratio in rows:
        cells = [f"`{name}`"]
        for rt in runtimes:
            s = spread(rt, name)
            if not s:
                cells.append(DASH)
                continue
            lo, hi, n = s
            c = f"{fmt(lo, u)}–{fmt(hi, u)}"
            if a.rounds and n != a.rounds:
                c += f" ({n})"
            cells.append(c)
        L.append("| " + " | ".join(cells) + " |")
    L.append("")

    # ------------------------------------------------------- instructions
    L.append("## Instructions per op (ursa)")
    L.append("")
    status = env("SUITE_PERF_STATUS", "not measured")
    if status == "ok" and perf:
        L.append("`perf stat -x, -e instructions:u`, one run of `ursa_bench S workload` per workload, "
                 "divided by the workload's op count from WORKLOADS.md. The count covers the whole "
                 "process (runtime start-up, untimed warm-up rounds, result checks), so it is an "
                 "upper bound on the timed loop; memory workloads are left out.")
        L.append("")
        L.append("| workload | ops | instructions | instructions/op |")
        L.append("|---|--:|--:|--:|")
        for name in names:
            if name not in perf or unit(name) == "bytes":
                continue
            sec, what, div = info.get(name, (None, "", ""))
            ops = ops_per_run(what, div, a.scale) if sec else None
            per = f"{perf[name] / ops:.1f}" if ops else DASH
            L.append(f"| `{name}` | {ops:.0f} | {perf[name]:.0f} | {per} |" if ops
                     else f"| `{name}` | {DASH} | {perf[name]:.0f} | {DASH} |")
    else:
        L.append(f"Not recorded: {status}.")
    L.append("")

    # ------------------------------------------------------- how measured
    L.append("## How measured")
    L.append("")
    L.append(
        "Each program (`build/bench/.../ursa_bench`, and `tokio-bench`, `go-bench`, "
        "`fiber-bench` from `bench/peers/`) times each workload itself with the monotonic "
        "clock around the timed region only, checks its result, and prints `name ns_per_op` "
        "(memory workloads: `name bytes`, resident-set growth per parked task or the size of a "
        "wait node). The suite runs every program once per round, in a rotated order "
        "(round r starts with the r-th runtime of ursa, tokio, go, fiber) so that no runtime "
        f"always runs first or last, {a.rounds} round(s) in all, and reports the median of the "
        "rounds. Everything runs on one worker thread except the `mt2_*` workloads, which "
        "use two: Go with `GOMAXPROCS=1` (2 for `mt2_*`), Tokio with a `current_thread` "
        "runtime (`multi_thread` with 2 workers for `mt2_*`), Boost.Fiber on a single "
        "thread with `round_robin` (two threads with `work_stealing` for `mt2_*`), ursa with "
        "`workers = 1` (2 for `mt2_*`). `spawn_join` times a warm round after an untimed "
        "cold one in every program. Some peer workloads use a substitute where the runtime "
        "lacks the primitive (e.g. Go and Boost.Fiber `broadcast_*` and `watch_*`); see "
        "[bench/peers/README.md](../../bench/peers/README.md) for these and the other "
        "fairness notes. `mt2_*` results depend on where the schedulers place tasks and "
        "vary much more between rounds than the single-worker ones (see Spread).")
    L.append("")
    L.append("![ursa vs Tokio, Go, Boost.Fiber](results.png)")
    L.append("")

    notes = []
    if failures:
        for r, rt, rc in failures:
            notes.append(f"round {r}: `{rt}` exited with status {rc} (a failed self-check or a "
                         "crash); the lines it printed before that are kept")
    missing_rt = [rt for rt in RUNTIMES if not any(k[0] == rt for k in vals)]
    for rt in missing_rt:
        notes.append(f"`{rt}` printed nothing (not built or failed); its column is all {DASH}")
    if busy:
        notes.append(f"the 1-minute load average reached {load[1]} on {env('SUITE_CORES', '?')} cores: "
                     "other processes competed for the CPUs, which inflates and spreads the numbers "
                     "(`mt2_*` most); rerun on a quiet machine for reference figures")
    if bad_lines:
        notes.append(f"{bad_lines} output line(s) had a non-numeric value and were ignored")
    unlisted = [n for n in seen if n not in info]
    if unlisted and info:
        notes.append("printed but not in WORKLOADS.md (appended at the end): "
                     + ", ".join(f"`{n}`" for n in unlisted))
    if notes:
        L.append("## Problems in this run")
        L.append("")
        L.extend(f"- {n}" for n in notes)
        L.append("")
    bs, rs = env("SUITE_BUILD_S"), env("SUITE_RUN_S")
    if bs and rs:
        L.append(f"Suite wall time: {bs} s install/build, {rs} s for the rounds. "
                 "Raw lines (`round runtime workload value`) and the programs' stderr are in "
                 "`build/suite/` after a run.")
        L.append("")

    os.makedirs(os.path.dirname(os.path.abspath(a.md)), exist_ok=True)
    with open(a.md, "w", encoding="utf-8") as f:
        f.write("\n".join(L))

    # ---------------------------------------------------------------- plot
    def write_dat(path, sel):
        """rows: label, then per runtime median min max ('?' = missing)."""
        with open(path, "w") as f:
            f.write("# workload " + " ".join(f"{rt}_med {rt}_min {rt}_max" for rt in runtimes) + "\n")
            for name in sel:
                cols = []
                for rt in runtimes:
                    s = spread(rt, name)
                    m = med(rt, name)
                    cols += [f"{m:.6g}", f"{s[0]:.6g}", f"{s[1]:.6g}"] if s and m > 0 else ["?"] * 3
                f.write(f'"{name}" ' + " ".join(cols) + "\n")

    has = lambda n: any(med(rt, n) is not None for rt in runtimes)
    tnames = [n for n in names if unit(n) != "bytes" and has(n)]
    mnames = [n for n in names if unit(n) == "bytes" and has(n)]
    write_dat(os.path.join(a.plotdir, "time.dat"), tnames)
    write_dat(os.path.join(a.plotdir, "mem.dat"), mnames)

    title = (f"ursa vs Tokio / Go / Boost.Fiber — S={a.scale:g}, median of {a.rounds} interleaved rounds, "
             f"{env('SUITE_DATE', '')}\\n{env('SUITE_CPU', '')}, {env('SUITE_CORES', '')} cores, "
             f"Linux {env('SUITE_KERNEL', '')}")

    def plot_cmd(dat):
        parts = []
        for i, rt in enumerate(runtimes):
            c = 2 + 3 * i
            xt = ":xtic(1)" if i == 0 else ""
            color = BAR_COLORS.get(rt, "#7f7f7f")
            parts.append(f"'{dat}' using {c}:{c + 1}:{c + 2}{xt} title '{rt}' lc rgb '{color}'")
        return "plot " + ", \\\n     ".join(parts)

    G = []
    G.append("set terminal pngcairo size 1500,1100 font 'DejaVu Sans,11' noenhanced")
    G.append(f"set output '{os.path.join(a.plotdir, 'results.png')}'")
    G.append("set datafile missing '?'")
    G.append("set style data histograms")
    G.append("set style histogram errorbars gap 1.5 lw 1")
    G.append("set style fill solid 0.85 border -1")
    G.append("set boxwidth 0.9")
    G.append("set logscale y")
    G.append("set grid ytics mytics lc rgb '#dddddd'")
    G.append("set key outside top center horizontal")
    G.append("set xtics rotate by 35 right nomirror")
    G.append("set tics font ',11'")
    G.append("set multiplot")
    G.append("set lmargin 12; set rmargin 4; set bmargin 9")
    G.append(f"set title \"{title}\" font ',13'")
    G.append("set ylabel 'ns per op (log scale; bars = median, whiskers = min–max)'")
    G.append("set size 1,0.68; set origin 0,0.32")
    if tnames:
        G.append(plot_cmd(os.path.join(a.plotdir, "time.dat")))
    G.append("unset title")
    G.append("set ylabel 'bytes (log scale)'")
    G.append("set size 0.55,0.32; set origin 0,0")
    G.append("set key outside top center horizontal font ',10'")
    G.append("set bmargin 3")
    G.append("set label 1 \"Lower is better in both panels. A missing bar: that runtime lacks the workload\\n"
             "(see docs/bench/results.md and bench/peers/README.md).\\n"
             "ns/op from each program's own monotonic clock; mt2_* = 2 workers, others 1.\" "
             "at screen 0.58, screen 0.2 left font ',11'")
    G.append("set xtics rotate by 0 center")
    if mnames:
        G.append(plot_cmd(os.path.join(a.plotdir, "mem.dat")))
    G.append("unset multiplot")
    with open(os.path.join(a.plotdir, "results.gp"), "w") as f:
        f.write("\n".join(G) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
