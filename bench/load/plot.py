"""Plots and the summary of load runs: what ``bench/load/run.py`` wrote, one directory per topology.

Usage::

    .venv/bin/python bench/load/plot.py var/load/<run>            # figures into the run directory, table printed
    .venv/bin/python bench/load/plot.py var/load/<run> --docs     # also docs/load/*.png and docs/benchmarks.md

A run directory holds a directory per topology (``one-process``, ``services``, ``grouped``), each with
locust's CSV (``locust_stats.csv``, ``locust_stats_history.csv`` with ``--csv-full-history``), the
checkouts' settle times (``settle.csv``), the CPU samples (``cpu.csv``) and ``summary.json``.

Each topology gets a figure of four panels: latency percentiles over time (p50/p95/p99 of locust's
10-second window, every request of the mix), throughput over time (requests and failures per second),
the cores each group of server processes kept busy (the shop's own, the gateway, PostgreSQL, Kafka;
the whole machine as a line), and the distribution of checkout settle times. ``load-comparison``
puts the topologies side by side, a column each, on shared axes.

The headline is requests per server CPU-second: the mix's requests (locust's count; the settle reads
are not in it) divided by the CPU seconds of the shop's own processes, and again by those plus the
gateway's, PostgreSQL's and Kafka's; and each topology's ratio to one process.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server, and the same output everywhere

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TOPOLOGIES = ("one-process", "services", "grouped")
SERVER_GROUPS = ("shop", "gateway", "postgres", "kafka")
GROUP_LABELS = {"shop": "Quire processes", "gateway": "gateway (nginx)", "postgres": "PostgreSQL", "kafka": "Kafka"}
GROUP_COLOURS = {"shop": "tab:blue", "gateway": "tab:purple", "postgres": "tab:green", "kafka": "tab:orange"}
PERCENTILE_COLOURS = {"50%": "tab:blue", "95%": "tab:orange", "99%": "tab:red"}
DOCS_HEADING = "## Load: the mixed workload (locust)"
DOCS_IMAGES = REPO / "docs" / "load"


@dataclass
class Run:
    """One topology's load run, read back from its directory."""

    topology: str
    directory: Path
    summary: dict
    total: dict  # locust_stats.csv, the Aggregated row
    endpoints: list[dict]  # locust_stats.csv, one row per request name
    history: list[dict]  # locust_stats_history.csv, the Aggregated rows (one per second)
    settles: list[dict]
    cpu: list[dict]

    @property
    def started(self) -> float:
        return float(self.summary["started_at"])

    @property
    def requests(self) -> int:
        return int(self.total["Request Count"])

    @property
    def failures(self) -> int:
        return int(self.total["Failure Count"])

    def cpu_seconds(self, *groups: str) -> float:
        return sum(self.summary["cpu_seconds"].get(group, 0.0) for group in groups)

    def per_cpu_second(self, *groups: str) -> float | None:
        seconds = self.cpu_seconds(*groups)
        return self.requests / seconds if seconds > 0 else None

    def settle_seconds(self, *states: str) -> np.ndarray:
        return np.array([float(row["settle_seconds"]) for row in self.settles if row["state"] in states])


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as source:
        return list(csv.DictReader(source))


def load_run(directory: Path) -> Run:
    summary_file = directory / "summary.json"
    if not summary_file.exists():
        raise SystemExit(f"plot.py: {directory} has no summary.json (not a finished load run)")
    stats = _rows(directory / "locust_stats.csv")
    total = next((row for row in stats if row["Name"] == "Aggregated"), None)
    if total is None:
        raise SystemExit(f"plot.py: {directory / 'locust_stats.csv'} has no Aggregated row (did locust run?)")
    return Run(
        topology=directory.name,
        directory=directory,
        summary=json.loads(summary_file.read_text()),
        total=total,
        endpoints=[row for row in stats if row["Name"] != "Aggregated"],
        history=[row for row in _rows(directory / "locust_stats_history.csv") if row["Name"] == "Aggregated"],
        settles=_rows(directory / "settle.csv"),
        cpu=_rows(directory / "cpu.csv"),
    )


def load_runs(run_dir: Path) -> list[Run]:
    """The topologies run in ``run_dir``, in the order one process, services, grouped."""
    runs = [load_run(run_dir / name) for name in TOPOLOGIES if (run_dir / name / "summary.json").exists()]
    if not runs:
        raise SystemExit(f"plot.py: no load run in {run_dir} (expected {', '.join(TOPOLOGIES)} directories)")
    return runs


# --- figures ---------------------------------------------------------------------------------------


def _number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # "N/A" before the first request
        return float("nan")


def plot_latency(run: Run, axes) -> None:
    times = np.array([float(row["Timestamp"]) - run.started for row in run.history])
    for column, colour in PERCENTILE_COLOURS.items():
        axes.plot(times, [_number(row[column]) for row in run.history], color=colour, label=f"p{column[:-1]}")
    axes.set_ylabel("latency (ms, 10 s window)")
    axes.set_yscale("log")
    axes.legend(loc="upper left", fontsize="small")


def plot_throughput(run: Run, axes) -> None:
    times = np.array([float(row["Timestamp"]) - run.started for row in run.history])
    for column, label, colour in (
        ("Total Request Count", "requests/s", "tab:blue"),
        ("Total Failure Count", "failures/s", "tab:red"),
    ):
        counts = np.array([float(row[column]) for row in run.history])
        if len(counts) < 2:
            continue
        per_second = np.diff(counts) / np.maximum(np.diff(times), 1e-9)
        axes.plot(times[1:], per_second, color=colour, alpha=0.35, linewidth=0.8)
        # A centred 5-second mean; at the ends, of the seconds there are (not of zeros beyond them).
        window = np.ones(min(5, len(per_second)))
        smooth = np.convolve(per_second, window, mode="same") / np.convolve(
            np.ones_like(per_second), window, mode="same"
        )
        axes.plot(times[1:], smooth, color=colour, label=f"{label} (5 s mean)")
    axes.set_ylabel("per second")
    axes.legend(loc="upper left", fontsize="small")


def plot_cpu(run: Run, axes) -> None:
    if len(run.cpu) < 2:
        axes.text(0.5, 0.5, "no CPU samples", ha="center", transform=axes.transAxes)
        return
    times = np.array([float(row["timestamp"]) - run.started for row in run.cpu])
    elapsed = np.maximum(np.diff(times), 1e-9)
    stacked, labels, colours = [], [], []
    for group in SERVER_GROUPS:
        if group in run.cpu[0]:
            seconds = np.array([float(row[group]) for row in run.cpu])
            stacked.append(np.diff(seconds) / elapsed)
            labels.append(GROUP_LABELS[group])
            colours.append(GROUP_COLOURS[group])
    axes.stackplot(times[1:], *stacked, labels=labels, colors=colours, alpha=0.8, step="pre")
    if "machine" in run.cpu[0]:
        machine = np.array([float(row["machine"]) for row in run.cpu])
        axes.step(times[1:], np.diff(machine) / elapsed, color="black", linewidth=0.8, label="whole machine")
    axes.set_ylabel("cores busy")
    axes.legend(loc="upper left", fontsize="small")


def settle_bins(runs: list[Run]) -> np.ndarray:
    """Log-spaced bins (ms) that cover every run's settle times, so that histograms side by side compare."""
    settled = np.concatenate([run.settle_seconds("confirmed", "rejected") * 1000 for run in runs] + [np.array([])])
    low, high = (max(settled.min(), 1.0), max(settled.max(), 2.0)) if settled.size else (1.0, 2.0)
    return np.logspace(np.log10(low), np.log10(high * 1.05), 30)


def plot_settle(run: Run, axes, bins: np.ndarray | None = None) -> None:
    settled = run.settle_seconds("confirmed", "rejected") * 1000
    if settled.size == 0:
        axes.text(0.5, 0.5, "no checkout settled", ha="center", transform=axes.transAxes)
        return
    axes.hist(settled, bins=settle_bins([run]) if bins is None else bins, color="tab:blue", alpha=0.7)
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    for quantile, style in ((50, "-"), (95, "--"), (99, ":")):
        value = np.percentile(settled, quantile)
        axes.axvline(value, color="black", linestyle=style, linewidth=0.9, label=f"p{quantile} {value:.0f} ms")
    timeouts = len(run.settle_seconds("timeout", "error"))
    axes.set_xlabel(
        f"checkout settle time (ms), {settled.size} checkouts" + (f", {timeouts} unsettled" if timeouts else "")
    )
    axes.set_ylabel("checkouts")
    axes.legend(loc="upper right", fontsize="small")


PANELS = (plot_latency, plot_throughput, plot_cpu, plot_settle)


def _title(run: Run) -> str:
    per_cpu = run.per_cpu_second("shop")
    rate = f"{per_cpu:.1f} req per shop CPU-s" if per_cpu else "no CPU measured"
    return f"{run.topology}: {run.summary['users']} users, {run.requests} requests, {rate}"


def render(
    runs: list[Run], out_dir: Path, formats: tuple[str, ...] = ("png", "svg"), *, each: bool = True
) -> list[Path]:
    """The side-by-side comparison and (``each``) a figure per topology, in each of ``formats``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for run in runs if each else []:
        figure, axes = plt.subplots(len(PANELS), 1, figsize=(8, 12), constrained_layout=True)
        for panel, axis in zip(PANELS, axes, strict=True):
            panel(run, axis)
        for axis in axes[:-1]:
            axis.set_xlabel("seconds since the start of the run")
        figure.suptitle(_title(run))
        written += _save(figure, out_dir / f"load-{run.topology}", formats)
    figure, axes = plt.subplots(
        len(PANELS), len(runs), figsize=(6 * len(runs), 12), squeeze=False, sharey="row", constrained_layout=True
    )
    bins = settle_bins(runs)
    longest = max(run.summary["wall_seconds"] for run in runs)
    for column, run in enumerate(runs):
        for row, panel in enumerate(PANELS):
            if panel is plot_settle:
                panel(run, axes[row][column], bins)
            else:
                panel(run, axes[row][column])
                axes[row][column].set_xlim(0, longest)
                axes[row][column].set_xlabel("seconds since the start of the run")
        axes[0][column].set_title(_title(run), fontsize="medium")
    written += _save(figure, out_dir / "load-comparison", formats)
    return written


def _save(figure, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    for extension in formats:
        path = stem.with_suffix(f".{extension}")
        # metadata: no creation date in the file, so the same run renders to the same bytes
        figure.savefig(path, dpi=90, metadata={"Date": None} if extension == "svg" else {"Software": None})
        paths.append(path)
    plt.close(figure)
    return paths


# --- the summary ---------------------------------------------------------------------------------


def _ms(values: np.ndarray, quantile: float) -> str:
    return f"{np.percentile(values, quantile) * 1000:.0f}" if values.size else "-"


def _ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}" if value and base else "-"


def summary_table(runs: list[Run]) -> str:
    """The runs as a Markdown table, a column per topology."""
    base = runs[0] if runs[0].topology == "one-process" else None
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, value) -> None:
        rows.append((label, [value(run) for run in runs]))

    row("users, run time", lambda r: f"{r.summary['users']}, {r.summary['run_time']}")
    row("requests of the mix (failures)", lambda r: f"{r.requests:,} ({r.failures})")
    row("requests per second", lambda r: f"{r.requests / max(r.summary['wall_seconds'], 1e-9):.1f}")
    row(
        "latency p50 / p95 / p99 (ms)",
        lambda r: f"{r.total['50%']} / {r.total['95%']} / {r.total['99%']}",
    )
    row(
        "checkouts: confirmed / rejected / unsettled",
        lambda r: " / ".join(
            str(len(r.settle_seconds(*states))) for states in (("confirmed",), ("rejected",), ("timeout", "error"))
        ),
    )
    row(
        "checkout settle time p50 / p95 / p99 (ms)",
        lambda r: " / ".join(_ms(r.settle_seconds("confirmed", "rejected"), q) for q in (50, 95, 99)),
    )
    row("settle reads (outside the mix)", lambda r: f"{sum(int(s['polls']) for s in r.settles):,}")
    row("CPU s: Quire processes", lambda r: f"{r.cpu_seconds('shop'):.1f}")
    row(
        "CPU s: gateway / PostgreSQL / Kafka",
        lambda r: " / ".join(
            f"{r.cpu_seconds(group):.1f}" if group in r.summary["cpu_seconds"] else "-"
            for group in ("gateway", "postgres", "kafka")
        ),
    )
    row("**requests per Quire CPU-second**", lambda r: _bold(r.per_cpu_second("shop")))
    row("requests per server CPU-second (all four)", lambda r: _fixed(r.per_cpu_second(*SERVER_GROUPS)))
    if base:
        row(
            "**ratio to one process**", lambda r: f"**{_ratio(r.per_cpu_second('shop'), base.per_cpu_second('shop'))}**"
        )
        row(
            "ratio to one process, all server CPU",
            lambda r: _ratio(r.per_cpu_second(*SERVER_GROUPS), base.per_cpu_second(*SERVER_GROUPS)),
        )
    row("load generator CPU s", lambda r: f"{r.cpu_seconds('load_generator'):.1f}")
    row("whole machine CPU s (2 cores: 2 per second)", lambda r: f"{r.cpu_seconds('machine'):.1f}")
    row("load average at start / end (1 min)", lambda r: "{:.1f} / {:.1f}".format(*_load(r)))
    lines = [
        "| | " + " | ".join(run.topology for run in runs) + " |",
        "|---|" + "---|" * len(runs),
        *(f"| {label} | " + " | ".join(values) + " |" for label, values in rows),
    ]
    return "\n".join(lines)


def _bold(value: float | None) -> str:
    return f"**{value:.1f}**" if value else "-"


def _fixed(value: float | None) -> str:
    return f"{value:.1f}" if value else "-"


def _load(run: Run) -> tuple[float, float]:
    load = run.summary["load_average"]
    return load["start"][0], load["end"][0]


def cpu_by_role(run: Run) -> str:
    """Where the Quire processes' CPU went: seconds per service and role (web, relay, consumer, ...)."""
    roles = sorted(run.summary.get("cpu_by_role", {}).items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in roles if seconds >= 0.05)


def ratios(runs: list[Run]) -> dict[str, float]:
    """Each topology's requests per Quire CPU-second over one process's (needs a one-process run)."""
    base = next((run for run in runs if run.topology == "one-process"), None)
    if base is None or not base.per_cpu_second("shop"):
        return {}
    return {
        run.topology: run.per_cpu_second("shop") / base.per_cpu_second("shop")
        for run in runs
        if run is not base and run.per_cpu_second("shop")
    }


def docs_section(runs: list[Run], images: list[Path], command: str) -> str:
    """The docs/benchmarks.md section: method, command, table, figures; rewritten by each ``--docs`` run."""
    first = runs[0].summary
    when = datetime.fromtimestamp(min(run.started for run in runs), UTC).strftime("%Y-%m-%d")
    figures = "\n".join(f"![{path.stem}](load/{path.name})" for path in images)
    return f"""{DOCS_HEADING}

`bench/load/` drives the running shop over HTTP with [locust](https://locust.io) (headless, a
bounded run time), the same way against every topology: one process (`run_service`, SQLite,
events in-process), the four services and the grouped topology (`scripts/services.sh`: PostgreSQL,
Kafka, the nginx gateway; fresh databases and a topic prefix of the run's own). Each user is a
customer running issue 13's Online Boutique-style mix, **browse 10 : book 5 : cart 2 : checkout 1**
(`MIX` in `bench/load/locustfile.py`): browse the book list (first pages in five orders, a search for a
word seen in a title, filters by price, stock and language or genre, next pages by cursor); open a
book (its detail and its "more like this" from recommendations); add a book to the cart, read the
cart, take the book out; check out one or two books with an `Idempotency-Key`, wait until the order
is confirmed or rejected (its settle time), pay a confirmed one and read one's own picks from
recommendations. A user starts its session with a token refresh, its profile and the genres.

- *Customers* are registered and signed in before the measured run (a password sign-in is a full
  PBKDF2 hash, about 0.5 s of CPU, which would swamp a short run; `--sign-in password` measures it).
- *The shop's abuse limits are off for a load run*, because every user comes from one address:
  `THROTTLE_ENABLED=false` (registration allows 20 per hour and address, sign-in 20 per minute),
  `ORDERS_MAX_UNPAID_COPIES_PER_BOOK=0` and `ORDERS_MAX_UNPAID_COPIES=0`, and
  `PASSWORD_HASH_WAIT_SECONDS=120` (the registrations queue for the hashing slots).
- *Requests* are the mix's requests as locust counts them. The reads that wait for a checkout to
  settle (every 20 ms growing to 0.5 s) are outside locust's statistics and the request count: how
  often a client polls is not the shop's work, and would flatter the topology that settles later.
  Their CPU is in the server's figures all the same.
- *CPU seconds* of every process of the shop, sampled every second over the process trees
  (psutil: each process's user and system time plus its ended children's): the Quire processes
  (each `run_service` with its gunicorn master and workers, relay, consumer and periodic commands),
  the gateway (nginx), PostgreSQL (the postmaster and its backends) and Kafka (the broker's JVM),
  apart. **Requests per Quire CPU-second** is the headline; the same with all four groups follows.
- Data: {first["data_description"]}.
- Think time: {first["think"][0]} to {first["think"][1]} s between two tasks of a user.

Measured {when} with:

```sh
{command}
```

{summary_table(runs)}

Where the Quire processes' CPU went (seconds, per process and role):

{chr(10).join(f"- {run.topology}: {cpu_by_role(run)}" for run in runs)}

{figures}

- Machine: {first["cores"]} cores, Python {first["python"]}, {platform.system()} {platform.machine()}; the load
  generator runs on the same cores as the shop, and so does whatever else the machine runs (the load
  average above). The figures move with that load: rerun on a quiet machine with `--docs`, which
  rewrites this section and `docs/load/load-comparison.png`.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a directory bench/load/run.py wrote (var/load/<run>)")
    parser.add_argument("--out", type=Path, help="where the figures go (default: the run directory)")
    parser.add_argument("--formats", default="png,svg", help="comma-separated: png, svg (default both)")
    parser.add_argument(
        "--docs", action="store_true", help="also write docs/load/*.png and the load section of docs/benchmarks.md"
    )
    parser.add_argument("--command", default="", help="the command to show in docs/benchmarks.md")
    options = parser.parse_args(argv)
    runs = load_runs(options.run_dir)
    written = render(runs, options.out or options.run_dir, tuple(options.formats.split(",")))
    print(summary_table(runs))
    for topology, ratio in ratios(runs).items():
        print(f"requests per Quire CPU-second, {topology} / one-process: {ratio:.2f}")
    print("figures: " + ", ".join(str(path) for path in written))
    if options.docs:
        write_docs(runs, options.command or f"bench/load/run.sh {' '.join(run.topology for run in runs)}")
    return 0


def write_docs(runs: list[Run], command: str) -> None:
    sys.path.insert(0, str(HERE.parent))
    from report import write_section  # bench/report.py

    images = render(runs, DOCS_IMAGES, ("png",), each=False)
    write_section(REPO / "docs" / "benchmarks.md", DOCS_HEADING, docs_section(runs, images, command))
    print(f"docs: {', '.join(str(path.relative_to(REPO)) for path in images)}, docs/benchmarks.md")


if __name__ == "__main__":
    sys.exit(main())
