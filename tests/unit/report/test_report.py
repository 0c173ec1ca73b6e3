"""The study report: each figure's collected data on a real search, and the page in Chromium."""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys

import optuna
import pytest
from helpers import ROOT, tensorboard_scalars
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nas.report.info import (
    DRAWN_AT_MOST,
    block_shortcut_info,
    depth_info,
    depth_sweep_info,
    history_info,
    intermediate_info,
    lesion_curve_info,
    lesion_info,
    params_info,
)
from nas.report.page import SECTIONS, collect, write_report
from nas.study.queries import REPORT_KEYS, REPORT_MARKS, LeanStudy

# A depth sweep in miniature: 1 or 2 blocks per stage (8 or 14 layers) x plain or
# residual, each trained 3 epochs, and one trial that cannot learn (lr 1e-5), which
# the threshold pruner stops at epoch 2 (epoch 1 is its warm-up).
SWEEP_SPACE = """\
name: sweep
dataset: digits
epochs: 3
trials: 5
space:
  blocks_per_stage: {type: int, low: 1, high: 2}
  shortcut: {type: categorical, choices: [none, identity]}
  width: 8
  schedule: constant
  batch_size: 16
  lr: {type: float, low: 1.0e-5, high: 0.1, log: true}
sampler: {name: random, seed: 0}
pruner: {name: threshold, lower: 0.15, n_warmup_steps: 2}
"""
ENQUEUED = [
    {"blocks_per_stage": 1, "shortcut": "none", "lr": 0.1},
    {"blocks_per_stage": 2, "shortcut": "none", "lr": 0.1},
    {"blocks_per_stage": 1, "shortcut": "identity", "lr": 0.1},
    {"blocks_per_stage": 2, "shortcut": "identity", "lr": 0.1},
    {"blocks_per_stage": 1, "shortcut": "identity", "lr": 1e-5},
]
PRUNED_AT = 2


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One real `nas search` (local Ray, SQLite) whose report the tests read back."""
    work = tmp_path_factory.mktemp("sweep")
    space = work / "sweep.yaml"
    space.write_text(SWEEP_SPACE)
    storage = f"sqlite:///{work / 'nas.db'}"
    study = optuna.create_study(study_name="sweep", storage=storage, direction="maximize")
    for params in ENQUEUED:
        study.enqueue_trial(params)
    # --progress json: the same real search also checks the events a script reads.
    proc = subprocess.run(
        [sys.executable, "-m", "nas.cli", "search", "--space", str(space), "--storage", storage,
         "--results", str(work / "results"), "--max-concurrent", "2", "--progress", "json"],
        cwd=ROOT, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="sweep", storage=storage)
    return {"work": work, "storage": storage, "proc": proc, "study": study,
            "report": work / "results" / "sweep" / "report.html"}


def _trials(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.number: t for t in study.get_trials()}


def test_the_sweep_ran_as_designed(sweep) -> None:
    states = {n: t.state for n, t in _trials(sweep["study"]).items()}
    assert states == {0: TrialState.COMPLETE, 1: TrialState.COMPLETE, 2: TrialState.COMPLETE,
                      3: TrialState.COMPLETE, 4: TrialState.PRUNED}, sweep["proc"].stderr


def test_search_writes_the_report_and_prints_its_path(sweep) -> None:
    assert sweep["report"].is_file()
    assert f"report: {sweep['report']}" in sweep["proc"].stderr  # stdout holds the JSON
    page = sweep["report"].read_text()
    for section in SECTIONS:  # (the front: two-objective studies, tests/scenarios)
        assert (f'id="{section.id}"' in page) == (section.id != "front"), section.id
    # plotly.js is inside (gzipped), once, and nothing is fetched: the file opens offline.
    [packed] = re.findall(r'<script type="application/octet-stream" id="plotly-js">(.*?)</script>',
                          page)
    assert gzip.decompress(base64.b64decode(packed)).decode().startswith("/**\n* plotly.js v")
    assert "<script src=" not in page
    assert len(page) < 3_000_000  # a 4.8 MB plotly.js inside: 5 MB before it was packed


def test_the_report_reads_the_study_lean_and_collects_the_same(sweep) -> None:
    """The report reads every trial once through SQL, with the attributes its figures use;
    it collects exactly what a whole read of the study gives."""
    lean = LeanStudy(sweep["study"])
    assert lean.lean
    assert collect(lean) == {s.id: s.collect(sweep["study"]) for s in SECTIONS}
    whole = {t.number: t for t in sweep["study"].get_trials()}
    for trial in lean.get_trials():
        full = whole[trial.number]
        assert (trial.state, trial.values, trial.intermediate_values, trial.datetime_start,
                trial.datetime_complete) == (full.state, full.values, full.intermediate_values,
                                             full.datetime_start, full.datetime_complete)
        assert trial.user_attrs == {k: (True if k in REPORT_MARKS else v)
                                    for k, v in full.user_attrs.items()
                                    if k in REPORT_KEYS + REPORT_MARKS}
        assert lean.full_trial(trial).user_attrs == full.user_attrs


def test_intermediate_values_mark_pruned_trials_where_they_stopped(sweep) -> None:
    trials = _trials(sweep["study"])
    series = {s["trial"]: s for s in intermediate_info(sweep["study"])}
    assert sorted(series) == sorted(trials)
    for number, s in series.items():
        trial = trials[number]
        assert s["epochs"] == sorted(trial.intermediate_values)
        assert s["accuracy"] == [trial.intermediate_values[e] for e in s["epochs"]]
        if trial.state == TrialState.PRUNED:
            assert s["stopped_at"] == PRUNED_AT == s["epochs"][-1]
            assert s["accuracy"][-1] < 0.15
        else:
            assert s["stopped_at"] is None and s["epochs"] == [1, 2, 3]


def test_history_is_the_running_best_of_complete_trials(sweep) -> None:
    info = collect(sweep["study"])["history"]
    complete = [t for t in sweep["study"].get_trials() if t.state == TrialState.COMPLETE]
    assert info["trial"] == [t.number for t in complete]
    assert info["best"] == [max(t.value for t in complete[:i + 1]) for i in range(len(complete))]


def test_depth_sweep_has_every_depth_of_every_shortcut(sweep) -> None:
    info = depth_sweep_info(sweep["study"])
    trials = _trials(sweep["study"])
    assert sorted(info) == ["identity", "none"]
    for shortcut, series in info.items():
        assert series["layers"] == [8, 14]
        for layers, accuracy, number in zip(series["layers"], series["accuracy"],
                                            series["trial"], strict=True):
            trial = trials[number]
            assert trial.user_attrs["layers"] == layers
            assert trial.params["shortcut"] == shortcut and accuracy == trial.value


def test_block_shortcut_holds_the_best_of_each_pair(sweep) -> None:
    info = block_shortcut_info(sweep["study"])
    assert info["blocks"] == ["basic"] and info["shortcuts"] == ["identity", "none"]
    complete = [t for t in sweep["study"].get_trials() if t.state == TrialState.COMPLETE]
    for column, shortcut in enumerate(info["shortcuts"]):
        best = max(t.value for t in complete if t.params["shortcut"] == shortcut)
        assert info["accuracy"][0][column] == best


def test_pareto_front_is_exactly_the_undominated_trials(sweep) -> None:
    info = params_info(sweep["study"])
    points = dict(zip(info["trial"], zip(info["params"], info["accuracy"], strict=True),
                      strict=True))
    assert len(points) == 4  # the complete trials; the pruned one has no final value

    def dominated(n: int) -> bool:
        p, a = points[n]
        return any(q <= p and b >= a and (q < p or b > a)
                   for m, (q, b) in points.items() if m != n)

    assert sorted(info["front"]) == sorted(n for n in points if not dominated(n))
    assert [points[n][0] for n in info["front"]] == sorted(points[n][0] for n in info["front"])


def test_json_progress_is_one_event_per_line_matching_the_study(sweep) -> None:
    events = [json.loads(line) for line in sweep["proc"].stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "search_finished" and "search_started" in kinds
    assert {"trial_started", "epoch", "complete", "pruned"} <= set(kinds)
    trials = _trials(sweep["study"])
    for number, trial in trials.items():
        epochs = {e["epoch"]: e["val_accuracy"] for e in events
                  if e["event"] == "epoch" and e.get("trial") == number}
        assert epochs == trial.intermediate_values, number
        started = next(e for e in events if e["event"] == "trial_started" and e["trial"] == number)
        assert started["candidate"] == trial.user_attrs["candidate"]
        ended = next(e for e in events if e.get("trial") == number and e["event"] in
                     ("complete", "pruned", "failed"))
        assert ended["event"] == trial.state.name.lower()
        order = [events.index(e) for e in events if e.get("trial") == number]
        assert order[0] == events.index(started) and order[-1] == events.index(ended)
        if ended["event"] == "complete":
            assert ended["val_accuracy"] == trial.values[0]
            assert ended["useful_layers"] == trial.user_attrs["useful_layers"]
    finished = events[-1]
    assert (finished["complete"], finished["pruned"]) == (4, 1) and finished["ran"] == 5


def test_tensorboard_event_files_hold_each_trials_epochs(sweep) -> None:
    """`tensorboard --logdir results/<study>/tune` (docs/report.md): one folder per trial, named by
    its study number, whose events hold the validation accuracy of every epoch."""
    tune = sweep["work"] / "results" / "sweep" / "tune"
    for number, trial in _trials(sweep["study"]).items():
        folders = list(tune.glob(f"run-*/trial-{number}_*"))
        assert len(folders) == 1, (number, sorted(p.name for p in tune.glob("run-*/*")))
        (events,) = folders[0].glob("events.out.tfevents.*")
        values = tensorboard_scalars(events)["ray/tune/val_accuracy"]
        assert values == pytest.approx(trial.intermediate_values, abs=1e-6), number


def test_lesion_profile_is_the_best_trials(sweep) -> None:
    info = lesion_info(sweep["study"])
    best = sweep["study"].best_trial
    assert info["trial"] == best.number
    assert info["blocks"] == best.user_attrs["block_names"]
    assert len(info["importance"]) == best.user_attrs["total_blocks"]
    for key in ("loss_rise", "influence", "ratio", "cka"):
        assert len(info[key]) == len(info["blocks"]), key
    assert info["cka"][-1] is None  # the last block of the last stage has no next block


def test_lesion_curve_and_random_deletions_of_residual_and_plain(sweep) -> None:
    info = lesion_curve_info(sweep["study"])
    attrs = sweep["study"].best_trial.user_attrs
    assert info["trial"] == sweep["study"].best_trial.number
    steps = len(attrs["lesion_curve"])
    assert info["removed"] == list(range(steps + 1))
    assert info["selection"][0] == attrs["selection_accuracy"]
    assert info["held_out"] == [attrs["held_out_accuracy"], *attrs["held_out_curve"]]
    assert info["useful_removed"] == len(attrs["removable"])
    # The sweep has residual and plain networks: one deletion series of each.
    assert [s["plain"] for s in info["deletions"]] == [False, True]
    for series in info["deletions"]:
        trial = next(t for t in sweep["study"].trials if t.number == series["trial"])
        assert (trial.user_attrs["candidate"]["shortcut"] == "none") == series["plain"]
        assert series["k"] == [k for k, _ in trial.user_attrs["random_deletions"]]
        assert all(min(d) <= m <= max(d) for m, d in zip(series["mean"], series["draws"],
                                                         strict=True))


def test_nas_report_command_writes_a_report(sweep, tmp_path) -> None:
    out = tmp_path / "r" / "report.html"
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "report", "--storage",
                           sweep["storage"], "--out", str(out)],
                          cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and "8 figures" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "nas.cli", "report", "--storage",
                          sweep["storage"], "--study", "nope"],
                         cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nope" in bad.stderr


# --- small hand-made studies for the edge cases ----------------------------------------------


def _study(directions: list[str] | None = None) -> optuna.Study:
    return optuna.create_study(directions=directions or ["maximize"])


def _complete(study: optuna.Study, values, layers: int, params: int, shortcut: str = "identity",
              block: str = "basic", **attrs) -> None:
    study.add_trial(create_trial(
        values=values, params={"lr": 0.1}, distributions={"lr": FloatDistribution(0.01, 1)},
        user_attrs={"layers": layers, "params": params,
                    "candidate": {"block": block, "shortcut": shortcut}, **attrs}))


def test_pareto_front_keeps_ties_out_and_orders_by_size() -> None:
    study = _study()
    _complete(study, [0.90], 20, 100)
    _complete(study, [0.90], 20, 100)  # a tie with the first: not a second front point
    _complete(study, [0.95], 32, 300)
    _complete(study, [0.93], 44, 400)  # bigger and worse than the one before: dominated
    _complete(study, [0.97], 56, 500)
    assert params_info(study)["front"] == [0, 2, 4]


def test_depth_sweep_needs_two_depths_in_a_series() -> None:
    study = _study()
    _complete(study, [0.9], 20, 100, shortcut="none")
    _complete(study, [0.8], 20, 100, shortcut="identity")
    assert depth_sweep_info(study) == {}
    _complete(study, [0.7], 56, 300, shortcut="none", block="preact")
    assert depth_sweep_info(study) == {}  # two block types: one series per block/shortcut
    _complete(study, [0.6], 20, 100, shortcut="none", block="preact")
    series = depth_sweep_info(study)
    assert series["preact/none"] == {"layers": [20, 56], "accuracy": [0.6, 0.7],
                                     "trial": [3, 2]}
    assert sorted(series) == ["basic/identity", "basic/none", "preact/none"]


def test_a_study_with_nothing_to_draw_still_gives_a_page(tmp_path) -> None:
    study = _study(["maximize", "minimize"])
    study.add_trial(create_trial(state=TrialState.FAIL))
    drawn = write_report(study, tmp_path / "empty.html")
    assert drawn == []
    page = (tmp_path / "empty.html").read_text()
    assert "no complete trial yet" in page and "<script" not in page
    assert page.count('class="missing"') == len(SECTIONS)


def test_a_figure_of_thousands_of_trials_draws_a_sample_and_says_so(tmp_path) -> None:
    """Past 2,000 points a figure draws 2,000, every record and Pareto trial among them."""
    study = _study()
    rng = random.Random(1)
    for number in range(DRAWN_AT_MOST + 700):
        accuracy = 0.5 + 0.4 * rng.random()
        _complete(study, [accuracy], 20, 100 + number % 997, useful_layers=10,
                  total_layers=20, useful_blocks=3, total_blocks=6)
    trials = study.get_trials()
    records, best = [], -1.0
    for trial in trials:
        if trial.values[0] > best:
            records.append(trial.number)
            best = trial.values[0]
    history = history_info(study)
    sampled = {"total": len(trials), "drawn": DRAWN_AT_MOST}
    assert history["sampled"] == sampled and len(history["trial"]) == DRAWN_AT_MOST
    assert set(records) <= set(history["trial"])  # the best-so-far line is exact
    assert history["best"][-1] == best == max(history["accuracy"])
    depth, params = depth_info(study), params_info(study)
    assert depth["sampled"] == params["sampled"] == sampled
    assert study.best_trial.number in depth["trial"]
    assert set(params["front"]) <= set(params["trial"])
    assert len(intermediate_info(study)) == 0  # none reported per-epoch values
    write_report(study, tmp_path / "big.html")
    page = (tmp_path / "big.html").read_text()
    assert page.count(f"{len(trials):,} trials, {DRAWN_AT_MOST:,} drawn at random") == 3
    assert history_info(study) == history  # the same sample each time


# --- the page, in a real browser -------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def test_report_renders_every_figure_in_chromium_without_errors(sweep) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed and scripts/install-test-packages.sh could not "
                    "install it here (it needs apt-get and root or password-less sudo)")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS,
                                    env={**os.environ, "HOME": str(sweep["work"])})
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: problems.append(f"network request: {r.url}")
                    if not r.url.startswith(("file:", "data:", "blob:")) else None)
            page.goto(sweep["report"].as_uri(), wait_until="load")
            # the page unpacks plotly.js, then draws, then says so (or what went wrong)
            page.wait_for_function("document.body.dataset.figures !== undefined")
            assert page.evaluate("document.body.dataset.figures") == "drawn"
            assert page.locator("#report-status").count() == 0
            rendered = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
                .map(div => ({id: div.id, traces: (div.data || []).length,
                              svg: div.querySelectorAll('svg.main-svg').length,
                              width: div.getBoundingClientRect().width,
                              height: div.getBoundingClientRect().height}))""")
        finally:
            browser.close()
    assert problems == []
    assert sorted(r["id"] for r in rendered) == sorted(s.id for s in SECTIONS if s.id != "front")
    for figure in rendered:
        assert figure["traces"] >= 1 and figure["svg"] >= 1, figure
        assert figure["width"] > 300 and figure["height"] > 200, figure
