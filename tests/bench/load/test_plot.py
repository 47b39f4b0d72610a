"""bench/load/plot.py renders a load run's figures and sums it up, from CSV files made here."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

LOAD = Path(__file__).resolve().parents[3] / "bench" / "load"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PERCENTILES = ("50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%")
STATS_COLUMNS = (
    "Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
    "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s", *PERCENTILES,
)  # fmt: skip
HISTORY_COLUMNS = (
    "Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *PERCENTILES, "Total Request Count",
    "Total Failure Count", "Total Median Response Time", "Total Average Response Time", "Total Min Response Time",
    "Total Max Response Time", "Total Average Content Size",
)  # fmt: skip
STARTED = 1_800_000_000.0


@pytest.fixture(scope="module")
def plot():
    spec = importlib.util.spec_from_file_location("load_plot", LOAD / "plot.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def write_csv(path: Path, columns, rows) -> None:
    with path.open("w", newline="") as output:
        writer = csv.DictWriter(output, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def a_load_run(
    run_dir: Path, topology: str, *, requests: int, shop_cpu: float, seconds: int = 10, servers_cpu: float = 0.0
) -> Path:
    """What bench/load/run.py leaves for one topology: locust's CSV, settle times, CPU samples, summary."""
    directory = run_dir / topology
    directory.mkdir(parents=True)
    per_second = requests // seconds
    percentiles = dict(zip(PERCENTILES, (12, 14, 15, 16, 20, 30, 40, 55, 90, 95, 100), strict=True))
    write_csv(
        directory / "locust_stats.csv",
        STATS_COLUMNS,
        [
            {"Type": "GET", "Name": "/api/catalog/books/ [search]", "Request Count": requests, "Failure Count": 1},
            {"Type": "", "Name": "Aggregated", "Request Count": requests, "Failure Count": 1, **percentiles},
        ],
    )
    history = [
        # locust's first row, before any request: no percentiles yet.
        {"Timestamp": int(STARTED), "Name": "Aggregated", "Total Request Count": 0, "Total Failure Count": 0}
        | dict.fromkeys(PERCENTILES, "N/A")
    ]
    history += [
        {
            "Timestamp": int(STARTED) + second,
            "User Count": 5,
            "Name": "Aggregated",
            "Total Request Count": per_second * second,
            "Total Failure Count": int(second >= seconds),
            **percentiles,
        }
        for second in range(1, seconds + 1)
    ]
    write_csv(directory / "locust_stats_history.csv", HISTORY_COLUMNS, history)
    write_csv(
        directory / "settle.csv",
        ("timestamp", "order_id", "state", "settle_seconds", "post_seconds", "polls"),
        [
            {"timestamp": STARTED + n, "order_id": f"order-{n}", "state": state, "settle_seconds": settle}
            | {"post_seconds": 0.05, "polls": 2}
            for n, (state, settle) in enumerate(
                [("confirmed", 0.08), ("confirmed", 0.12), ("rejected", 0.3), ("confirmed", 1.5), ("timeout", 30.0)]
            )
        ],
    )
    groups = ("machine", "shop", "gateway", "postgres", "kafka")
    write_csv(
        directory / "cpu.csv",
        ("timestamp", *groups),
        [
            {"timestamp": STARTED + second, "machine": 1.5 * second, "shop": shop_cpu * second / seconds}
            | dict.fromkeys(groups[2:], servers_cpu * second / seconds / 3)
            for second in range(seconds + 1)
        ],
    )
    cpu = {"shop": shop_cpu, "machine": 1.5 * seconds, "load_generator": 0.4}
    cpu |= dict.fromkeys(("gateway", "postgres", "kafka"), servers_cpu / 3)
    summary = {
        "topology": topology,
        "users": 5,
        "run_time": f"{seconds}s",
        "think": [0.5, 1.5],
        "data_description": "the demo shop",
        "started_at": STARTED,
        "wall_seconds": float(seconds),
        "cpu_seconds": cpu,
        "cpu_by_role": {f"{topology}:web": shop_cpu * 0.8, f"{topology}:consumer": shop_cpu * 0.2},
        "load_average": {"start": [1.0, 1.0, 1.0], "end": [2.0, 1.0, 1.0]},
        "cores": 2,
        "python": "3.11",
    }
    (directory / "summary.json").write_text(json.dumps(summary))
    return directory


def test_it_draws_each_topology_and_their_comparison_and_prints_the_ratio(plot, tmp_path, capsys):
    a_load_run(tmp_path, "one-process", requests=1000, shop_cpu=10.0)
    a_load_run(tmp_path, "services", requests=900, shop_cpu=12.5, servers_cpu=6.0)

    assert plot.main([str(tmp_path), "--formats", "png"]) == 0

    for name in ("load-one-process", "load-services", "load-comparison"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    printed = capsys.readouterr().out
    # 1000 requests / 10 CPU-s = 100; 900 / 12.5 = 72; with the servers' 6 s: 900 / 18.5 = 48.6.
    assert "| **requests per Quire CPU-second** | **100.0** | **72.0** |" in printed
    assert "| requests per server CPU-second (all four) | 100.0 | 48.6 |" in printed
    assert "| checkouts: confirmed / rejected / unsettled | 3 / 1 / 1 | 3 / 1 / 1 |" in printed
    assert "requests per Quire CPU-second, services / one-process: 0.72" in printed


def test_the_docs_section_embeds_the_comparison_and_states_the_command(plot, tmp_path):
    a_load_run(tmp_path, "one-process", requests=600, shop_cpu=5.0)
    a_load_run(tmp_path, "grouped", requests=600, shop_cpu=6.0)
    runs = plot.load_runs(tmp_path)
    images = plot.render(runs, tmp_path / "docs", ("png", "svg"), each=False)

    section = plot.docs_section(runs, images[:1], "bench/load/run.sh one-process grouped --docs")

    assert [path.name for path in images] == ["load-comparison.png", "load-comparison.svg"]
    assert b"<svg" in images[1].read_bytes()[:1000]
    assert section.startswith(plot.DOCS_HEADING + "\n")
    assert "![load-comparison](load/load-comparison.png)" in section
    assert "bench/load/run.sh one-process grouped --docs" in section
    assert "| **ratio to one process** | **1.00** | **0.83** |" in section
    assert "THROTTLE_ENABLED=false" in section


def test_a_directory_without_a_run_says_so(plot, tmp_path):
    (tmp_path / "services").mkdir()

    with pytest.raises(SystemExit, match="no load run in"):
        plot.main([str(tmp_path)])
