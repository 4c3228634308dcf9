#!/usr/bin/env python3
"""Aggregate the suite's raw lines into results.md and a gnuplot script +
data for results.png. Standard library only.

Input (--raw): one line per measurement, `round program name value`, as
written by bench/run-suite.sh. A program label `peer@variant` is one build
or configuration of a peer (Tokio with each Rust toolchain, Boost.Fiber
with idle threads spinning or sleeping): the peer's column shows, per
workload, the variant with the lower median, tagged with which one it was.
Workload order and units come from WORKLOADS.md (--workloads); names printed
but not listed there are appended in the order first seen. Machine/version
facts come from SUITE_* environment variables.
"""
import argparse
import os
import re
import statistics
import sys
from collections import OrderedDict, defaultdict

# Column order; any other peer a program reports is appended.
RUNTIMES = ["ursa", "tokio", "go", "fiber", "hikaricp", "gosql", "r2d2", "libpq", "advisory"]
NAMES = {"ursa": "ursa", "tokio": "Tokio", "go": "Go", "fiber": "Boost.Fiber",
         "hikaricp": "HikariCP", "gosql": "Go database/sql", "r2d2": "r2d2",
         "libpq": "libpq (sync)", "advisory": "pg_advisory_lock"}
DASH = "—"
BAR_COLORS = {"ursa": "#d62728", "tokio": "#1f77b4", "go": "#2ca02c", "fiber": "#9467bd",
              "hikaricp": "#ff7f0e", "gosql": "#17becf", "r2d2": "#8c564b",
              "libpq": "#7f7f7f", "advisory": "#bcbd22"}


def parse_workloads(path):
    """[(name, kind, what)] in WORKLOADS.md order. kind is 'time' in a table
    whose header says what is timed, else 'bytes' for mem_* names and
    'count' for the others (e.g. pool_spike_creates)."""
    out = []
    if not path or not os.path.isfile(path):
        return out
    timed = True
    with open(path, encoding="utf-8") as f:
        for line in f:
            if re.match(r"\s*\|\s*name\s*\|", line):
                timed = "timed" in line
                continue
            m = re.match(r"\s*\|\s*`([A-Za-z0-9_]+)`\s*\|(.*)", line)
            if not m:
                continue
            name = m.group(1)
            kind = "time" if timed else ("bytes" if name.startswith("mem_") else "count")
            out.append((name, kind, m.group(2).split("|")[0].strip()))
    return out


def fmt(v, unit):
    if v is None:
        return DASH
    if unit in ("bytes", "count"):
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


def short_tag(variant, desc):
    """What a cell says about the variant it came from: the compiler
    version for a toolchain build (`rustc 1.95.0 (...)` -> `1.95`), else the
    variant's own name."""
    m = re.search(r"rustc (\d+\.\d+)", desc or "")
    return m.group(1) if m else variant


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--failures")
    ap.add_argument("--instr", help="`name instr_per_op` lines from bench/callgrind.sh")
    ap.add_argument("--instr-before", help="the same for an earlier ursa_bench (a baseline)")
    ap.add_argument("--instr-before-label", default="before",
                    help="what the baseline is (a commit, a tag)")
    ap.add_argument("--variant", action="append", default=[],
                    help="label=description of a peer@variant program (repeatable)")
    ap.add_argument("--workloads", default="")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--md", required=True)
    ap.add_argument("--plotdir", required=True)
    a = ap.parse_args()
    env = os.environ.get

    spec = parse_workloads(a.workloads)
    info = OrderedDict((n, (kind, what)) for n, kind, what in spec)
    vdesc = dict(v.split("=", 1) for v in a.variant if "=" in v)

    vals = defaultdict(list)  # (program, name) -> [values]
    seen = []
    programs = []
    bad_lines = 0
    with open(a.raw, encoding="utf-8") as f:
        for line in f:
            p = line.split()
            if len(p) != 4:
                continue
            _, prog, name, v = p
            try:
                x = float(v)
            except ValueError:
                bad_lines += 1
                continue
            vals[(prog, name)].append(x)
            if name not in seen:
                seen.append(name)
            if prog not in programs:
                programs.append(prog)

    # peer -> its programs (variants), in the order first seen.
    group = OrderedDict()
    for prog in programs:
        group.setdefault(prog.split("@")[0], []).append(prog)
    runtimes = [r for r in RUNTIMES if r in group] + [r for r in group if r not in RUNTIMES]
    if "ursa" not in runtimes:
        runtimes.insert(0, "ursa")
    peers = [r for r in runtimes if r != "ursa"]
    names = list(info) + [n for n in seen if n not in info]

    def unit(name):
        kind = info.get(name, (None,))[0]
        if kind is None:
            kind = "bytes" if name.startswith("mem_") else "time"
        return {"time": "ns/op"}.get(kind, kind)

    def vmed(prog, name):
        xs = vals.get((prog, name))
        return statistics.median(xs) if xs else None

    def pick(rt, name):
        """(median, program) of the variant with the lowest median."""
        cands = [(vmed(p, name), p) for p in group.get(rt, [])]
        cands = [c for c in cands if c[0] is not None]
        return min(cands) if cands else (None, None)

    def winner(rt, name):
        """The variant that won the row, or None (one variant, or a tie)."""
        have = sorted((vmed(p, name), p) for p in group.get(rt, []) if vmed(p, name) is not None)
        return have[0][1] if len(have) > 1 and have[0][0] < have[1][0] else None

    def spread(prog, name):
        xs = vals.get((prog, name))
        return (min(xs), max(xs), len(xs)) if xs else None

    failures = []
    if a.failures and os.path.isfile(a.failures):
        with open(a.failures) as f:
            failures = [l.rstrip("\n").split("\t") for l in f if l.strip()]

    def read_instr(path):
        counts = {}
        if path and os.path.isfile(path):
            with open(path) as f:
                for l in f:
                    p = l.split()
                    if len(p) == 2:
                        counts[p[0]] = float(p[1])
        return counts

    instr = read_instr(a.instr)
    instr_before = read_instr(a.instr_before)

    # ---------------------------------------------------------------- table
    rows = []
    for name in names:
        u = unit(name)
        cell = {rt: pick(rt, name) for rt in runtimes}
        pm = [(cell[p][0], p) for p in peers if cell[p][0] is not None]
        best = min(pm) if pm else None
        um = cell["ursa"][0]
        ratio = um / best[0] if best and um is not None and best[0] > 0 else None
        rows.append((name, u, cell, best, ratio))

    def show(rt, name, u, cell):
        v, _ = cell[rt]
        s = fmt(v, u)
        win = winner(rt, name)
        if win:
            s += f" ({short_tag(win.split('@', 1)[1], vdesc.get(win))})"
        return s

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
    for prog in programs:
        if prog in vdesc and "@" in prog:
            L.append(f"- **{prog}:** {vdesc[prog]}")
    L.append(f"- **Tokio:** tokio {env('SUITE_TOKIO', '?') or '?'} (Cargo.lock), release + LTO, "
             "built with every Rust toolchain above")
    L.append(f"- **Go:** {env('SUITE_GO', '?')}")
    L.append(f"- **Boost.Fiber:** Boost {env('SUITE_BOOST', '?') or '?'} "
             f"(libboost-fiber-dev {env('SUITE_BOOST_PKG', '?') or '?'}), {env('SUITE_GXX', '?')}, -O2")
    L.append(f"- **Pools:** HikariCP {env('SUITE_HIKARI', '?') or '?'} on {env('SUITE_JAVA', '?')}; "
             f"Go database/sql ({env('SUITE_GO', '?')}); r2d2 {env('SUITE_R2D2', '?') or '?'}")
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
    L.append("Median over the rounds, ns/op (bytes for `mem_*`, a count for `pool_spike_creates`); "
             "lower is better. A peer built or configured more than one way shows its faster "
             "variant, tagged: `(1.63)`/`(1.95)` = the rustc that built it, `(spin)`/`(suspend)` = "
             "Boost.Fiber's work_stealing idle mode (see *Variants*). `ursa/best` = ursa ÷ the best "
             f"(lowest) peer: below 1 means ursa is ahead. {DASH} = that runtime does not (yet) have "
             "the workload. `instr/op` = ursa's instructions per op under callgrind (see below).")
    L.append("")
    hdr = ["workload", "unit"] + runtimes + ["best peer", "ursa/best", "instr/op"]
    L.append("| " + " | ".join(hdr) + " |")
    L.append("|" + "|".join(["---", "---"] + ["--:"] * len(runtimes) + ["---", "--:", "--:"]) + "|")
    for name, u, cell, best, ratio in rows:
        cells = [f"`{name}`", u] + [show(rt, name, u, cell) for rt in runtimes]
        cells += [best[1] if best else DASH, fmt_ratio(ratio),
                  f"{instr[name]:.1f}" if name in instr else DASH]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("## Spread")
    L.append("")
    L.append("min–max over the rounds (of the variant shown in Medians; number of rounds that "
             "printed the workload, if not all).")
    L.append("")
    L.append("| " + " | ".join(["workload"] + runtimes) + " |")
    L.append("|" + "|".join(["---"] + ["--:"] * len(runtimes)) + "|")
    for name, u, cell, best, ratio in rows:
        cells = [f"`{name}`"]
        for rt in runtimes:
            s = spread(cell[rt][1], name) if cell[rt][1] else None
            if not s:
                cells.append(DASH)
                continue
            lo, hi, n = s
            c = f"{fmt(lo, u)}–{fmt(hi, u)}"
            if a.rounds and n != a.rounds and not name.startswith("mem_1m"):
                c += f" ({n})"
            cells.append(c)
        L.append("| " + " | ".join(cells) + " |")
    L.append("")

    # ------------------------------------------------------- variants
    # A runtime run by more than one program, measured both ways on some
    # workload (not ursa and ursa@lease: one binary per set of workloads).
    multi = [(rt, progs) for rt, progs in group.items() if len(progs) > 1 and any(
        sum(vmed(p, name) is not None for p in progs) >= 2 for name in names)]
    if multi:
        L.append("## Variants")
        L.append("")
        L.append("Peers measured more than one way (rows measured both ways); Medians shows the "
                 "faster per workload.")
        L.append("")
        for rt, progs in multi:
            tags = {p: short_tag(p.split("@", 1)[1], vdesc.get(p)) for p in progs}
            wins = defaultdict(int)
            L.append(f"**{NAMES.get(rt, rt)}**: " + "; ".join(
                f"`{p}` = {vdesc.get(p, p)}" for p in progs))
            L.append("")
            L.append("| workload | " + " | ".join(f"`{p}`" for p in progs) + " | faster |")
            L.append("|---|" + "--:|" * len(progs) + "---|")
            ties = 0
            for name in names:
                ms = {p: vmed(p, name) for p in progs}
                if sum(v is not None for v in ms.values()) < 2:
                    continue  # measured one way only
                win = winner(rt, name)
                if win:
                    wins[win] += 1
                else:
                    ties += 1
                L.append(f"| `{name}` | " + " | ".join(fmt(ms[p], unit(name)) for p in progs)
                         + f" | {tags[win] if win else 'tie'} |")
            L.append("")
            total = sum(wins.values()) + ties
            L.append("Faster per workload: " + ", ".join(
                f"`{p}` ({tags[p]}) on {wins[p]} of {total}" for p in progs)
                + (f", tied on {ties}" if ties else "") + ".")
            L.append("")

    # ------------------------------------------------------- instructions
    L.append("## Instructions per op (ursa)")
    L.append("")
    status = env("SUITE_INSTR_STATUS", "not measured")
    if status == "ok" and instr:
        L.append("`bash bench/callgrind.sh` on the same `ursa_bench`: each single-worker time "
                 "workload runs under `valgrind --tool=callgrind` at S = 0.002 and 0.004 (doubled "
                 "until the op counts differ), and instr/op = (I₂ − I₁) ÷ (ops₂ − ops₁), so "
                 "start-up and set-up cancel out; untimed warm-up rounds are skipped. The counts do "
                 "not depend on the machine's load; they are the column `instr/op` above. Rerun "
                 "`bash bench/callgrind.sh NAME...` to compare a change.")
        if instr_before:
            L.append("")
            L.append(f"Against a baseline, `{a.instr_before_label}` (the same count on its "
                     "`ursa_bench`; `INSTR_BEFORE` in `bench/run-suite.sh`):")
            L.append("")
            L.append(f"| workload | {a.instr_before_label} | now | change |")
            L.append("|---|--:|--:|--:|")
            for name in instr:
                if name in instr_before and instr_before[name] > 0:
                    b, n = instr_before[name], instr[name]
                    L.append(f"| `{name}` | {b:.1f} | {n:.1f} | {100 * (n - b) / b:+.1f}% |")
    elif status == "ok":
        L.append("Not recorded: callgrind.sh printed nothing (see `build/suite/callgrind.log`).")
    else:
        L.append(f"Not recorded: {status}.")
    L.append("")

    # ------------------------------------------------------- how measured
    L.append("## How measured")
    L.append("")
    L.append(
        "Each program (`build/bench/.../ursa_bench`, and from `bench/peers/`: `tokio-bench`, "
        "`go-bench`, `fiber-bench`, and the pool peers `hikari-bench`, `gosql-bench`, "
        "`r2d2-bench`) times each workload itself with the monotonic clock around the timed "
        "region only, checks its result, and prints `name value`. The suite runs every "
        "program once per round, the list rotated by the round number so that no program "
        f"always runs first or last, {a.rounds} round(s) in all, and reports the median of the "
        "rounds; `mem_1m_tasks` runs once per program, in its own process, after the rounds. "
        "Everything runs on one worker except `mt2_*` and `oversub_*` (two): ursa with "
        "`workers` 1 or 2, Tokio `current_thread` or `multi_thread(2)`, Go `GOMAXPROCS` 1 or 2, "
        "Boost.Fiber `round_robin` on one thread or `work_stealing` on two; the pool peers use "
        "plain threads (8 for `mt2_pool_contended`, on at most 2 CPUs). `oversub_*`: the whole "
        "process is confined to one CPU with `sched_setaffinity` before its runtime starts "
        "(ursa and Tokio confine the thread that builds the runtime; Go and Boost.Fiber "
        "re-execute themselves under the mask), and each checks the mask from its workers. "
        "Tokio, Go and Boost.Fiber cannot pin a task to a worker: their "
        "`mt2_request_reply` and `mt2_request_reply_migratable` are the same code with "
        "their own placement; their `mt2_mutex_contended_barging` is their "
        "`mt2_mutex_contended` (Go's sync.Mutex barges, Tokio's is FIFO). Some peer "
        "workloads use a substitute where the runtime lacks the primitive; see "
        "[bench/peers/README.md](../../bench/peers/README.md) for these and the other "
        "fairness notes. Two-worker results depend on where the schedulers place tasks and "
        "vary much more between rounds than the single-worker ones (see Spread).")
    L.append("")
    L.append("![ursa vs the peers](results.png)")
    L.append("")

    notes = []
    for fl in failures:
        fl += [""] * (5 - len(fl))
        r, prog, rc, args, why = fl[:5]
        named = args.split()[1:]  # after S: workload names
        what = " " + " ".join(f"`{n}`" for n in named) if named else ""
        notes.append(f"round {r}: `{prog}`{what} exited with status {rc}"
                     + (f": {why.strip()}" if why.strip() else "")
                     + " (stderr in build/suite/run.log; the lines it printed before are kept)")
    for rt in RUNTIMES:
        if rt not in group:
            notes.append(f"`{rt}` printed nothing (not built or failed); its column is all {DASH}"
                         if rt != "ursa" else "`ursa` printed nothing")
    if busy:
        notes.append(f"the 1-minute load average reached {load[1]} on {env('SUITE_CORES', '?')} cores: "
                     "other processes competed for the CPUs, which inflates and spreads the numbers "
                     "(two-worker rows most); rerun on a quiet machine for reference figures")
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
    times = (env("SUITE_TIMES") or "").split()
    if len(times) == 4:
        b, r, m, c = times
        L.append(f"Suite wall time: {b} s install/build, {r} s for the rounds, {m} s for "
                 f"`mem_1m_tasks`, {c} s for callgrind. Raw lines (`round program workload "
                 "value`) and the programs' stderr are in `build/suite/` after a run.")
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
                    m, prog = pick(rt, name)
                    s = spread(prog, name) if prog else None
                    cols += [f"{m:.6g}", f"{s[0]:.6g}", f"{s[1]:.6g}"] if s and m > 0 else ["?"] * 3
                f.write(f'"{name}" ' + " ".join(cols) + "\n")

    has = lambda n: any(pick(rt, n)[0] is not None for rt in runtimes)
    tnames = [n for n in names if unit(n) == "ns/op" and has(n)]
    mnames = [n for n in names if unit(n) == "bytes" and has(n)]
    write_dat(os.path.join(a.plotdir, "time.dat"), tnames)
    write_dat(os.path.join(a.plotdir, "mem.dat"), mnames)

    title = (f"ursa vs its peers — S={a.scale:g}, median of {a.rounds} interleaved rounds, "
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
    G.append("set terminal pngcairo size 2000,1200 font 'DejaVu Sans,11' noenhanced")
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
    G.append("set tics font ',10'")
    G.append("set multiplot")
    G.append("set lmargin 12; set rmargin 4; set bmargin 11")
    G.append(f"set title \"{title}\" font ',13'")
    G.append("set ylabel 'ns per op (log scale; bars = median, whiskers = min–max)'")
    G.append("set size 1,0.7; set origin 0,0.3")
    if tnames:
        G.append(plot_cmd(os.path.join(a.plotdir, "time.dat")))
    G.append("unset title")
    G.append("set ylabel 'bytes (log scale)'")
    G.append("set size 0.5,0.3; set origin 0,0")
    G.append("set key outside top center horizontal font ',10'")
    G.append("set bmargin 3")
    G.append("set label 1 \"Lower is better in both panels. A missing bar: that runtime lacks the workload\\n"
             "(see docs/bench/results.md and bench/peers/README.md). Multi-build peers: the faster build.\\n"
             "ns/op from each program's own monotonic clock; mt2_*/oversub_* = 2 workers, others 1.\" "
             "at screen 0.53, screen 0.2 left font ',11'")
    G.append("set xtics rotate by 0 center")
    if mnames:
        G.append(plot_cmd(os.path.join(a.plotdir, "mem.dat")))
    G.append("unset multiplot")
    with open(os.path.join(a.plotdir, "results.gp"), "w") as f:
        f.write("\n".join(G) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
