"""The console script, end to end: the check contract, the stored workflow, --help."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .conftest import collection, feature, square

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write(tmp_path: Path, name: str, doc: object) -> str:
    (tmp_path / name).write_text(json.dumps(doc))
    return name


def test_check_json_contract(run_cli, tmp_path) -> None:
    name = write(tmp_path, "s.json", collection(
        feature(1, "A", square(0.0, 0.0, 0.01)),
        feature("b", "B", square(0.01, 0.0, 0.01), alt_lower_m=150, alt_upper_m=200),
        feature("c", "C", square(0.05, 0.0, 0.01)),
        feature("z", "Z", square(0.0, 0.0, 0.002), zone=True, restriction="notify"),
    ))
    r = run_cli("check", name, "--horizontal", "100", "--vertical", "60", "--time", "0",
                "--json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out == {"conflicts": [{"a": 1, "b": "b", "horizontal_m": 0, "vertical_m": 50,
                                  "time_s": 0}],
                   "violations": [{"volume": 1, "zone": "z"}]}
    # A gap equal to the minimum is not a conflict.
    r = run_cli("check", name, "--horizontal", "100", "--vertical", "50", "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["conflicts"] == []


def test_check_nothing_found_exits_0(run_cli, tmp_path) -> None:
    name = write(tmp_path, "s.json", collection(feature("a", "A", square(0.0, 0.0, 0.01)),
                                                feature("b", "B", square(1.0, 0.0, 0.01))))
    r = run_cli("check", name, "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"conflicts": [], "violations": []}
    r = run_cli("check", name)
    assert r.returncode == 0 and "No conflicts" in r.stdout


def test_check_reads_stdin_and_prints_a_table(run_cli) -> None:
    doc = json.dumps(collection(feature("a", "A", square(0.0, 0.0, 0.01)),
                                feature("b", "B", square(0.005, 0.0, 0.01))))
    r = run_cli("check", "-", stdin=doc)
    assert r.returncode == 1
    assert "1 conflict" in r.stdout and "│ a" in r.stdout


def test_example_scenario(run_cli) -> None:
    r = run_cli("check", str(EXAMPLES / "maiduguri.geojson"), "--minima",
                str(EXAMPLES / "minima.json"), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    pairs = {(c["a"], c["b"]) for c in out["conflicts"]}
    # The convoy's third leg passes within the 3 km convoy x fires minimum of the fires box.
    assert ("ra-convoy-leg3", "naw-fires") in pairs
    assert out["violations"] == [{"volume": "sp-survey-2", "zone": "ra-hospital-zone"}]


def test_stored_workflow(run_cli, tmp_path) -> None:
    assert run_cli("init", "--horizontal", "500").returncode == 0
    a = write(tmp_path, "a.json", collection(feature("convoy-1", None, square(10.0, 50.0, 0.01),
                                                     kind="convoy")))
    b = write(tmp_path, "b.json", collection(feature("sortie-9", None,
                                                     square(10.012, 50.0, 0.01))))
    r = run_cli("submit", a, "--party", "Alpha")
    assert r.returncode == 0, r.stderr
    r = run_cli("submit", b, "--party", "Bravo", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["created"] == ["sortie-9"]
    assert [(c["activity_a"], c["activity_b"]) for c in out["conflicts"]] == [
        ("convoy-1", "sortie-9")]
    listed = json.loads(run_cli("conflicts", "--party", "Bravo", "--json").stdout)
    assert len(listed) == 1 and listed[0]["status"] == "open"
    assert 100 < listed[0]["pairs"][0]["horizontal_m"] < 200
    assert json.loads(run_cli("conflicts", "--party", "Charlie", "--json").stdout) == []
    table = run_cli("conflicts")
    assert "convoy-1" in table.stdout and "sortie-9" in table.stdout
    acts = json.loads(run_cli("activities", "--json").stdout)
    assert {(x["party"], x["ext_id"]) for x in acts} == {("Alpha", "convoy-1"),
                                                         ("Bravo", "sortie-9")}
    exported = run_cli("export", "--party", "Alpha")
    assert json.loads(exported.stdout)["features"][0]["properties"]["kind"] == "convoy"
    r = run_cli("cancel", "sortie-9", "--party", "Bravo")
    assert r.returncode == 0 and "1 conflict(s) resolved" in r.stderr
    assert json.loads(run_cli("conflicts", "--status", "open", "--json").stdout) == []
    r = run_cli("cancel", "sortie-9", "--party", "Alpha")
    assert r.returncode == 3


def test_submit_as_another_party_is_refused(run_cli, tmp_path) -> None:
    assert run_cli("init").returncode == 0
    name = write(tmp_path, "a.json", collection(feature("x", "Bravo", square(0, 0, 0.01))))
    r = run_cli("submit", name, "--party", "Alpha")
    assert r.returncode == 2 and "feature 'x'" in r.stderr and r.stdout == ""


def test_missing_database_is_explained(run_cli) -> None:
    r = run_cli("conflicts", "--db", "nowhere.db")
    assert r.returncode == 3 and "detente init" in r.stderr


def test_help_teaches(run_cli) -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    for command in ("check", "init", "submit", "conflicts", "export", "activities"):
        assert command in r.stdout
    r = run_cli("check", "--help")
    assert "strictly less than the minimum" in " ".join(r.stdout.split())
    assert "Example" in r.stdout


def test_every_command_sums_itself_up_in_one_line() -> None:
    """A command list shows each command's first paragraph as written: a line break in
    it broke the list of 'detente --help' mid-sentence."""
    import typer.main

    from detente.cli.main import app

    def walk(group: object, path: str) -> list[tuple[str, str]]:
        found = []
        for name, sub in getattr(group, "commands", {}).items():
            found.append((path + name, (sub.help or "").strip().split("\n\n")[0]))
            found += walk(sub, path + name + " ")
        return found

    commands = walk(typer.main.get_command(app), "")
    assert len(commands) > 20
    assert [(name, first) for name, first in commands if not first or "\n" in first] == []


def test_same_activity_name_for_two_parties(run_cli, tmp_path) -> None:
    """Activity ids are each party's own: two parties may both call theirs 'patrol'."""
    name = write(tmp_path, "s.json", collection(
        feature("a", "A", square(0.0, 0.0, 0.01), activity="patrol"),
        feature("b", "B", square(0.005, 0.0, 0.01), activity="patrol")))
    r = run_cli("check", name, "--json")
    assert r.returncode == 1
    assert [(c["a"], c["b"]) for c in json.loads(r.stdout)["conflicts"]] == [("a", "b")]
    assert run_cli("init").returncode == 0
    assert run_cli("submit", name).returncode == 1
    acts = json.loads(run_cli("activities", "--json").stdout)
    assert {(x["party"], x["ext_id"]) for x in acts} == {("A", "patrol"), ("B", "patrol")}


@pytest.mark.parametrize("command", [["conflicts"], ["sweep"], ["audit", "verify"],
                                     ["party", "list"], ["export"]])
def test_a_file_that_is_not_a_detente_database_is_refused(tmp_path, run_cli,
                                                          command) -> None:
    """An SQLite file of something else: the fix is named, no traceback, exit 4."""
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    r = run_cli(*command, "--db", str(other))
    assert r.returncode == 4, r.stderr
    assert "is not a detente database" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
