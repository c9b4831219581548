"""Tables and a chart of benchmark records (the JSON lines ``benchmarks.run`` prints).

``python -m benchmarks.report RESULTS.jsonl [--chart PNG]`` redraws both from a log.
The ratio of an implementation is the median of its wall times over the median
of the bound's wall times measured in the same run (same pipeline).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

BOUND = "bound"


def _groups(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Records by (pipeline, impl, scheduler); the bound's runs of all scheduler blocks together."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        sched = "own threads" if r["impl"] == BOUND else r["scheduler"]
        groups[(r["pipeline"], r["impl"], sched)].append(r)
    return groups


def _paired_ratio(recs: list[dict[str, Any]], records: list[dict[str, Any]]) -> float | None:
    """Median over repeats of wall / the bound's wall in the same scheduler block and repeat."""
    bound = {
        (r["pipeline"], r["scheduler"], r.get("repeat")): r["wall"]
        for r in records
        if r["impl"] == BOUND and r.get("status") == "ok"
    }
    ratios = []
    for r in recs:
        b = bound.get((r["pipeline"], r["scheduler"], r.get("repeat")))
        if b:
            ratios.append(r["wall"] / b)
    return statistics.median(ratios) if ratios else None


def _bound_times(records: list[dict[str, Any]]) -> dict[str, float]:
    times: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r["impl"] == BOUND and r.get("status") == "ok":
            times[r["pipeline"]].append(r["wall"])
    return {k: statistics.median(v) for k, v in times.items()}


def _bound_cpu(records: list[dict[str, Any]]) -> dict[str, float]:
    cpu: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r["impl"] == BOUND and r.get("status") == "ok" and "cpu_s" in r:
            cpu[r["pipeline"]].append(r["cpu_s"])
    return {k: statistics.median(v) for k, v in cpu.items()}


def _bound_checksums(records: list[dict[str, Any]]) -> dict[str, float]:
    return {r["pipeline"]: r["checksum"] for r in records if r["impl"] == BOUND and r.get("status") == "ok"}


def rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per (pipeline, impl, scheduler), in first-seen order."""
    bounds = _bound_times(records)
    bound_cpu = _bound_cpu(records)
    sums = _bound_checksums(records)
    out = []
    for (pipe, impl, sched), recs in _groups(records).items():
        ok = [r for r in recs if r.get("status") == "ok"]
        row: dict[str, Any] = {"pipeline": pipe, "impl": impl, "scheduler": sched}
        if not ok:
            row.update(status=recs[-1].get("status"), reason=recs[-1].get("reason", ""))
            out.append(row)
            continue
        walls = [r["wall"] for r in ok]
        med = statistics.median(walls)
        step_names = list(ok[0].get("steps", {}))
        steps = {s: statistics.median(r["steps"].get(s, 0.0) for r in ok) for s in step_names}
        checksum = ok[0].get("checksum")
        ref = sums.get(pipe)
        agree = None
        if ref is not None and checksum is not None and pipe not in ("decode", "http", "read_cube_1000"):
            agree = abs(checksum - ref) <= 1e-5 * max(abs(ref), 1.0)
        row.update(
            status="ok",
            n=len(ok),
            wall=med,
            wall_min=min(walls),
            ratio=(med / bounds[pipe]) if pipe in bounds and bounds[pipe] > 0 else None,
            paired=None if impl == BOUND else _paired_ratio(ok, records),
            cpu_s=statistics.median(r.get("cpu_s", float("nan")) for r in ok),
        )
        row.update(
            cpu_ratio=row["cpu_s"] / bound_cpu[pipe] if bound_cpu.get(pipe) else None,
            steps=steps,
            peak_rss_mb=max(r["peak_rss_mb"] for r in ok),
            base_rss_mb=min(r["base_rss_mb"] for r in ok),
            checksum=checksum,
            agree=agree,
        )
        for key in (
            "bytes_ratio",
            "bytes_ratio_tiles",
            "http_requests",
            "files_opened",
            "opens",
            "graph_tasks",
            "chunks",
            "sources",
        ):
            if key in ok[0]:
                row[key] = ok[0][key]
        out.append(row)
    return out


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def table(records: list[dict[str, Any]], *, compact: bool = False) -> str:
    """A Markdown table of the summary rows (``compact``: fewer columns, for the docs)."""
    cols = ["pipeline", "impl", "scheduler", "n", "wall s (median)"]
    if not compact:
        cols += ["min", "ratio to bound"]
    cols += ["paired ratio", "CPU s", "CPU ratio", "steps (median s)", "peak RSS MiB (tree)"]
    if not compact:
        cols += ["checksum"]
    cols += ["agrees", "notes"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows(records):
        if r["status"] != "ok":
            cells = [r["pipeline"], r["impl"], r["scheduler"], "0"] + ["-"] * (len(cols) - 5)
            cells.append(f"{r['status']}: {r.get('reason', '')}")
            lines.append("| " + " | ".join(cells) + " |")
            continue
        notes = []
        if "bytes_ratio" in r:
            notes.append(
                f"HTTP bytes {r['bytes_ratio']:.3f}x file, {r.get('bytes_ratio_tiles', 0):.3f}x its full-res tiles, "
                f"{r['http_requests']} requests"
            )
        if "files_opened" in r:
            notes.append(
                f"{r['sources']} sources: {r['files_opened']} file(s) opened, "
                f"{r['graph_tasks']} tasks in the mean graph"
            )
        if "chunks" in r:
            notes.append(f"chunks {r['chunks']}")
        cells = [r["pipeline"], r["impl"], r["scheduler"], str(r["n"]), f"{r['wall']:.2f}"]
        if not compact:
            cells += [f"{r['wall_min']:.2f}", _fmt(r["ratio"])]
        cells += [
            _fmt(r["paired"]),
            _fmt(r["cpu_s"], 1),
            _fmt(r["cpu_ratio"]),
            ", ".join(f"{k} {v:.2f}" for k, v in r["steps"].items()),
            f"{r['peak_rss_mb']:.0f}",
        ]
        if not compact:
            cells.append(f"{r['checksum']:.7g}")
        cells += [{True: "yes", False: "NO", None: "-"}[r["agree"]], "; ".join(notes)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _family(impl: str) -> str:
    if impl.startswith("pyr") and not impl.startswith("pyramids"):
        return "pyr"
    if impl.startswith("odc"):
        return "odc-stac"
    return "rioxarray" if impl.startswith("rio") else "pyramids"


def chart(records: list[dict[str, Any]], path: str) -> None:
    """Bars of ratios to the bound, one panel per pipeline: paired wall ratio and CPU-seconds ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [r for r in rows(records) if r.get("paired") is not None and r["impl"] != BOUND]
    pipes = list(dict.fromkeys(r["pipeline"] for r in data))
    if not pipes:
        raise ValueError("no ratios to draw")
    heights = [max(1.4, 0.42 * sum(1 for r in data if r["pipeline"] == p) + 0.7) for p in pipes]
    fig, axes = plt.subplots(len(pipes), 1, figsize=(9, sum(heights) + 0.8), gridspec_kw={"height_ratios": heights})
    if len(pipes) == 1:
        axes = [axes]
    colors = {"pyr": "tab:blue", "rioxarray": "tab:orange", "pyramids": "tab:green", "odc-stac": "tab:purple"}
    for ax, pipe in zip(axes, pipes, strict=True):
        sub = [r for r in data if r["pipeline"] == pipe]
        ys = range(len(sub))
        wall = [r["paired"] for r in sub]
        cpu = [r.get("cpu_ratio") or 0.0 for r in sub]
        col = [colors[_family(r["impl"])] for r in sub]
        ax.barh([y - 0.2 for y in ys], wall, height=0.4, color=col, label="wall / bound (paired)")
        ax.barh([y + 0.2 for y in ys], cpu, height=0.4, color=col, alpha=0.45, hatch="//", label="CPU s / bound")
        ax.set_yticks(list(ys), [f"{r['impl']} / {r['scheduler']}" for r in sub], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="k", lw=0.8)
        for y, w, c in zip(ys, wall, cpu, strict=True):
            ax.text(w, y - 0.2, f" {w:.2f}x", va="center", fontsize=7)
            if c:
                ax.text(c, y + 0.2, f" {c:.2f}x cpu", va="center", fontsize=6, color="dimgray")
        ax.set_title(f"{pipe}: time / hand-written bound (solid: wall, hatched: CPU seconds)", fontsize=9, loc="left")
        ax.set_xlim(0, max(max(wall), max(cpu)) * 1.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def profile_summary(path: str, *, top: int = 25, focus: str = "") -> str:
    """Summarise a py-spy ``--format raw`` file (collapsed stacks).

    Prints, over all sampled threads and processes, the functions with the
    most samples on top of the stack ("self") and anywhere in it ("total"),
    as percentages of all non-idle samples.
    """
    self_c: dict[str, int] = defaultdict(int)
    total_c: dict[str, int] = defaultdict(int)
    n = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            c = int(count)
            frames = [
                fr.split(" (")[0] + " (" + fr.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                for fr in stack.split(";")[1:]
            ]  # the first frame names the process/thread
            if focus and not any(focus in fr for fr in frames):
                continue
            n += c
            if frames:
                self_c[frames[-1]] += c
            for fr in set(frames):
                total_c[fr] += c
    if not n:
        return f"{path}: no samples"
    lines = [f"{path}: {n} samples"]
    lines.append("self%  function")
    for fr, c in sorted(self_c.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * c / n:5.1f}  {fr}")
    lines.append("total% function")
    for fr, c in sorted(total_c.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * c / n:5.1f}  {fr}")
    return "\n".join(lines)


def merge(logs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Records of several runs; repeats are renamed per run so runs are never paired across."""
    if len(logs) == 1:
        return logs[0]
    return [{**r, "repeat": f"{i}:{r.get('repeat')}"} for i, log in enumerate(logs) for r in log]


def load(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report")
    p.add_argument("logs", nargs="+", help="JSON-lines logs written by benchmarks.run")
    p.add_argument("--chart", help="write the PNG chart here")
    p.add_argument("--profile", action="store_true", help="the files are py-spy raw profiles: summarise them")
    p.add_argument("--focus", default="", help="with --profile: only stacks with a frame containing this")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--compact", action="store_true", help="fewer columns (as in docs/benchmarks.md)")
    args = p.parse_args(argv)
    if args.profile:
        for log in args.logs:
            print(profile_summary(log, top=args.top, focus=args.focus))
        return 0
    records = merge([load(log) for log in args.logs])
    print(table(records, compact=args.compact))
    if args.chart:
        chart(records, args.chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
