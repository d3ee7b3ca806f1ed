#!/usr/bin/env python3
"""Tables of bench/leak-sensitivity-real.sh: reads OUT/<run>/results/summary.json (its `leak_report`) for every
run and prints the leak-rate table, the clean-run table and the summary line with the goals.

    report.py OUT DURATION RATE
"""
import csv
import json
import os
import sys

MEMORY = ("rss", "rss_anon")
GOAL_KIB_PER_MIN = 256


def kib_per_min(per_hour):
    return per_hour / 1024 / 60


def load(out, name):
    run = os.path.join(out, name)
    text = lambda f, d="": open(os.path.join(run, f)).read().strip() if os.path.exists(os.path.join(run, f)) else d
    try:
        summary = json.load(open(os.path.join(run, "results", "summary.json")))
    except (OSError, ValueError) as error:
        summary = {"error": str(error)}
    return {"name": name, "kib": int(text("kib_per_min", "0")), "exit": text("exit_code", "?"), "summary": summary,
            "peak_sockets": peak_steady_sockets(os.path.join(run, "results", "resources.csv"))}


def peak_steady_sockets(path):
    """Most open socket fds of the proxy in the steady window: a burst of connections (after a machine stall, the
    open model fires its backlog at once) is what moves a healthy proxy's memory."""
    try:
        with open(path, newline="") as f:
            values = [int(row["socket_fds"]) for row in csv.DictReader(f) if row.get("phase") == "steady"]
    except (OSError, ValueError, KeyError):
        return "-"
    return max(values) if values else "-"


def metric(run, name):
    for m in (run["summary"].get("leak_report") or {}).get("metrics", []):
        if m.get("metric") == name:
            return m
    return None


def verdict(run, name):
    m = metric(run, name)
    return m["verdict"] if m else "-"


def numbers(run, name):
    m = metric(run, name)
    return (m or {}).get("trend", {}).get("numbers") or {}


def overall(run):
    report = run["summary"].get("leak_report")
    if report:
        return report.get("verdict", "?")
    return "NO RESULT (exit %s)" % run["exit"]


def slope_cell(n):
    if not n:
        return "-"
    lo, hi = n["slope_ci_per_hour"]
    return "%7.1f [%6.1f, %6.1f]" % tuple(kib_per_min(v) for v in (n["slope_per_hour"], lo, hi))


def p_cell(n):
    return "%.2g" % n["p_value"] if n else "-"


def fq_cell(n):
    return "%7.1f" % kib_per_min(n["final_quarter_slope_per_hour"]) if n else "-"


def q24_cell(n):
    return "%7.1f" % kib_per_min(n["q2_to_q4_per_hour"]) if n else "-"


def detected(run):
    return any(verdict(run, m) == "LEAK" for m in MEMORY)


def row(cells, widths):
    return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths))


def table(title, header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print("\n" + title)
    print(row(header, widths))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(row(r, widths))


COUNTS = ("fds", "sockets", "threads")
SHORT = {"INCONCLUSIVE": "INCONCL"}


def counts_cell(run):
    return "/".join(SHORT.get(verdict(run, m), verdict(run, m)) for m in COUNTS)


def cells(run):
    rss, anon = numbers(run, "rss"), numbers(run, "rss_anon")
    return [
        verdict(run, "rss"), verdict(run, "rss_anon"), counts_cell(run), overall(run), run["exit"], run["peak_sockets"],
        slope_cell(rss), p_cell(rss), fq_cell(rss), q24_cell(rss),
        slope_cell(anon), p_cell(anon),
    ]


HEAD = ["rss", "rss_anon", "fds/sockets/threads", "overall", "exit", "peak sockets", "rss slope KiB/min [CI]", "rss MK p",
        "rss final-q slope", "rss Q2->Q4", "rss_anon slope KiB/min [CI]", "rss_anon MK p"]


def main():
    out, duration, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
    names = sorted(d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d)) and d != "bin")
    runs = [load(out, n) for n in names]
    leaks = sorted((r for r in runs if r["name"].startswith("leak-")), key=lambda r: r["kib"])
    cleans = sorted((r for r in runs if r["name"].startswith("clean-")), key=lambda r: int(r["name"].split("-")[1]))

    leak_rows = []
    for r in leaks:
        per_request = round(r["kib"] * 1024 / (rate * 60))
        actual = per_request * rate * 60 / 1024
        leak_rows.append([r["kib"], per_request, "%.1f" % actual] + cells(r))
    table("Leak rates, %s runs at %d req/s (slopes in KiB/min; CI at the verdicts' level)" % (duration, rate),
          ["leak KiB/min", "B/req", "actual KiB/min"] + HEAD, leak_rows)
    table("Clean runs (no leak), %s each" % duration,
          ["run"] + HEAD, [[r["name"]] + cells(r) for r in cleans])

    hits = [r["kib"] for r in leaks if r["kib"] > 0 and detected(r)]
    # Smallest rate from which every larger rate tried was detected too (one lucky hit below a miss is not it).
    monotone = None
    for r in reversed(leaks):
        if r["kib"] == 0 or not detected(r):
            break
        monotone = r["kib"]
    zero_rate = [r for r in leaks if r["kib"] == 0]
    clean_like = cleans + zero_rate
    false_leak = sum(detected(r) or overall(r) == "LEAK" for r in clean_like)
    not_pass = sum(overall(r) != "PASS" for r in clean_like)
    memory_pass = sum(all(verdict(r, m) == "PASS" for m in MEMORY) for r in clean_like)
    counts_only = sum(overall(r) != "PASS" and all(verdict(r, m) == "PASS" for m in MEMORY) for r in clean_like)
    missing = [r["name"] for r in runs if not r["summary"].get("leak_report")]

    print()
    goal_met = monotone is not None and monotone <= GOAL_KIB_PER_MIN
    print("smallest leak rate detected (LEAK on rss or rss_anon): %s KiB/min; detected at every rate from %s KiB/min up"
          " -- goal: <= %d KiB/min in a %s run: %s" % (
              min(hits) if hits else "none", monotone if monotone is not None else "-", GOAL_KIB_PER_MIN, duration,
              "MET" if goal_met else "NOT MET"))
    print("false LEAK on clean runs: %d / %d (the 0 KiB/min rate counted as a clean run) -- goal: 0: %s;"
          " clean runs not PASS (any verdict): %d / %d" % (
              false_leak, len(clean_like), "MET" if false_leak == 0 else "NOT MET", not_pass, len(clean_like)))
    print("clean runs with both memory verdicts PASS: %d / %d; not PASS overall only because of fds/sockets/threads:"
          " %d / %d" % (memory_pass, len(clean_like), counts_only, len(clean_like)))
    for r in clean_like + [r for r in leaks if r["kib"] > 0 and not detected(r)]:
        reasons = (r["summary"].get("leak_report") or {}).get("reasons") or []
        if overall(r) != "PASS":
            print("  %s %s: %s" % (r["name"], overall(r), "; ".join(x[:140] for x in reasons) or "-"))
    if missing:
        print("runs without a leak report (see OUT/<run>/harness.out): %s" % ", ".join(missing))


if __name__ == "__main__":
    main()
