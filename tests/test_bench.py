"""The benchmark suite still runs (tiny sizes; timings are never asserted)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from bench.run import charts, check_workload, report, stored_workload
from bench.traffic import generate

from detente.core.scenario import read_scenario


def test_traffic_is_valid_and_varied() -> None:
    fc = generate(3_000, parties=5, seed=3)
    scen = read_scenario(fc)
    kinds = set(scen.activities.kind.tolist())
    assert {"drone", "aircraft", "convoy", "static-site", "helicopter"} <= kinds
    assert len(scen.zones) >= 2
    # One theatre straddles the antimeridian: some footprints are unwrapped past 180.
    b = scen.activities.bounds
    assert ((b[:, 0] < -180) | (b[:, 2] > 180)).any()


def test_bench_workloads_and_report(tmp_path) -> None:
    checks = [check_workload(400, brute_max=400), check_workload(4_000, brute_max=400)]
    assert checks[0]["brute_s"] is not None and checks[1]["brute_s"] is None
    stored = [stored_workload(2_000, 20, tmp_path)]
    assert stored[0]["queries"] == 20 and stored[0]["import_rate"] > 0
    # The import's floor copied every row the import wrote, and only those.
    with contextlib.closing(sqlite3.connect(tmp_path / "stored-2000.db")) as db:
        held = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in stored[0]["rows"]}
    assert stored[0]["rows"] == held
    assert held["volumes"] == 2_000 and held["conflicts"] > 0 and held["audit"] > 0
    assert held["activity_index_rowid"] >= 2_000
    images = charts(checks, stored, tmp_path / "img")
    text = report(checks, stored, True, images)
    assert "## Targets" in text and "4,000" in text and "img/check-growth.png" in text
    assert f"| 2,000 | {stored[0]['import_s']:.1f} |" in text  # the import's floor table
    assert "| conflicts found (the traffic's, not the time) |" in text
    assert (tmp_path / "img" / "stored-latency.png").exists()


def test_bench_command_and_traffic_command(tmp_path) -> None:
    """The two commands end to end, as a user runs them (tiny sizes)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    scen = tmp_path / "traffic.json"
    subprocess.run([sys.executable, "-m", "bench.traffic", "800", "--parties", "3", "--seed",
                    "5", "-o", str(scen)], cwd=root, check=True)
    parties = set(read_scenario(scen.read_bytes()).activities.party.tolist())
    assert len(parties) == 3
    out = tmp_path / "perf.md"
    subprocess.run([sys.executable, "-m", "bench.run", "--check-sizes", "300", "3000",
                    "--stored-sizes", "500", "--queries", "10", "--parties", "4",
                    "--http-requests", "20", "--notify-rates", "20", "--notify-seconds",
                    "1", "--sse-clients", "3", "--dss-requests", "40", "--out", str(out)],
                   cwd=root, check=True, capture_output=True)
    text = out.read_text()
    assert "4 parties" in text and "| 3,000 |" in text and "check of 3,000" in text
    assert "| 500 | 16 | overlapping |" in text
    # The overlapping run's floor: the rows it stored, copied by SQLite alone.
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| 16 | ")]
    assert len(rows) == 1 and int(rows[0][1].replace(",", "")) > 0
    assert "| 500 | webhook | 20 |" in text and "| 500 | SSE, 3 clients | 20 |" in text
    # The F3548 section, with its floor measured in the same run: every request answered.
    assert "| spread | create | 40 |" in text and "| overlapping | update |" in text
    floor = [line.split(" | ") for line in text.splitlines()
             if line.startswith(("| worker thread |", "| event loop |"))]
    assert len(floor) == 4 and all(row[6] == "0" and float(row[2]) > 0 for row in floor)
    assert (tmp_path / "img" / "check-growth.png").exists()
