"""Leaderboard tables and their renderings, on a hand-made results table."""

import io
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from ntkbench.report import (
    FORMATS,
    NUMERIC_COLUMNS,
    format_mean_ci,
    format_mean_std,
    format_number,
    leaderboard,
    render,
)

NAN = float("nan")
ODD = "odd_<&>_50%"  # a label with HTML and LaTeX specials


def _trial(task, label, seed, status="ok", value=NAN, *, steps=NAN, align=NAN, drift=NAN,
           wall=1.0, backend="torch", sweep=""):
    classify = task == "classify"
    return {
        "trial_hash": f"{task}-{label}-{backend}-{sweep}-{seed}", "suite": "test",
        "task": task, "initializer": label.split("(")[0], "init_label": label,
        "backend": backend, "device": "cpu", "seed": seed, "sweep_label": sweep,
        "status": status, "error": None if status == "ok" else f"{status} at step 3",
        "metric": "test_accuracy" if classify else "test_mse",
        "metric_goal": "max" if classify else "min",
        "final_test_metric": value if status == "ok" else NAN,
        "steps_to_10pct": steps, "ntk_init.centered_alignment": align, "ntk_drift": drift,
        "wall_time_s": wall,
    }


def _results() -> pd.DataFrame:
    """Two tasks × three initializers × two seeds; one group all diverged, one seed failed."""
    rows = [
        # regress: test_mse, lower is better → normal(std=0.05), he_normal, then bad_init.
        _trial("regress", "he_normal", 0, value=0.02, steps=100, align=0.30, drift=0.10, wall=2),
        _trial("regress", "he_normal", 1, value=0.04, steps=NAN, align=0.50, drift=0.30, wall=4),
        _trial("regress", "bad_init", 0, "diverged", align=0.05),
        _trial("regress", "bad_init", 1, "diverged", align=0.07),
        _trial("regress", "normal(std=0.05)", 0, value=0.010, steps=50, align=0.2, drift=0.01),
        _trial("regress", "normal(std=0.05)", 1, value=0.015, steps=70, align=0.4, drift=0.03),
        # classify: test_accuracy, higher is better → normal(std=0.05), he_normal, ODD.
        _trial("classify", ODD, 0, value=0.6, steps=NAN, align=0.1, drift=0.5),
        _trial("classify", ODD, 1, value=0.7, steps=NAN, align=0.2, drift=0.7),
        _trial("classify", "he_normal", 0, value=0.9, steps=10, align=0.6, drift=0.2),
        _trial("classify", "he_normal", 1, value=0.8, steps=20, align=0.7, drift=0.4),
        _trial("classify", "normal(std=0.05)", 0, value=0.95, steps=5, align=0.8, drift=0.1),
        _trial("classify", "normal(std=0.05)", 1, "failed"),
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tables():
    return {t.task: t for t in leaderboard(_results())}


def _column(table, name):
    i = table.columns.index(name)
    return [row[i] for row in table.rows]


def test_tasks_in_order_of_first_appearance_with_metric_and_goal():
    regress, classify = leaderboard(_results())
    assert (regress.task, regress.metric, regress.goal) == ("regress", "test_mse", "min")
    assert (classify.task, classify.metric, classify.goal) == ("classify", "test_accuracy", "max")


def test_ranking_follows_the_goal_direction(tables):
    assert _column(tables["regress"], "initializer") == ["normal(std=0.05)", "he_normal",
                                                         "bad_init"]
    # normal(std=0.05) has the best accuracy on its one ok seed, but its other seed failed:
    # it ranks after every complete group.
    assert _column(tables["classify"], "initializer") == ["he_normal", ODD, "normal(std=0.05)"]
    assert list(tables["classify"].numeric["rank"]) == [1, 2, 3]
    # Two seeds cannot make any difference significant: every ranked group shares the top.
    assert _column(tables["classify"], "rank") == ["=1", "=1", "=1"]
    assert any("No significance can be claimed" in n for n in tables["classify"].notes)


def test_all_diverged_group_is_last_unranked_with_status(tables):
    t = tables["regress"]
    last = dict(zip(t.columns, t.rows[-1], strict=True))
    assert last["rank"] == "—" and last["test_mse"] == "diverged 2/2"
    assert last["seeds"] == "0/2" and last["steps to 10%"] == "—"
    assert pd.isna(t.numeric["rank"].iloc[-1]) and list(t.numeric["rank"][:2]) == [1, 2]
    assert any("bad_init: diverged 2/2" in note for note in t.notes)


def test_ok_over_total_seeds(tables):
    assert _column(tables["regress"], "seeds") == ["2/2", "2/2", "0/2"]
    assert _column(tables["classify"], "seeds") == ["2/2", "2/2", "1/2"]
    assert any("failed 1/2" in note for note in tables["classify"].notes)


def test_mean_and_sample_std_match_numpy(tables):
    num = tables["regress"].numeric.set_index("initializer")
    for label, values in {"he_normal": [0.02, 0.04], "normal(std=0.05)": [0.010, 0.015]}.items():
        assert num.loc[label, "metric_mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert num.loc[label, "metric_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert num.loc["he_normal", "drift_mean"] == pytest.approx(0.2)
    assert num.loc["he_normal", "drift_std"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    # Alignment at init describes the initializer, so diverged trials count too.
    assert num.loc["bad_init", "alignment_init_mean"] == pytest.approx(0.06)
    assert num.loc["he_normal", "wall_time_s"] == pytest.approx(3.0)
    row = _column(tables["regress"], "test_mse")
    # Two seeds are too few for a bootstrap interval: mean ± sample std instead.
    assert row[1] == format_mean_std(0.03, np.std([0.02, 0.04], ddof=1), 2) == "0.0300 ± 0.014"
    assert num.loc["he_normal", "ci_method"] == "none"
    assert np.isnan(num.loc["he_normal", "metric_ci_low"])
    assert num.loc["he_normal", "metric_median"] == pytest.approx(0.03)


def test_three_ok_seeds_show_the_bootstrap_ci():
    from ntkbench.report import stats

    values = [0.02, 0.05, 0.03]
    df = pd.DataFrame([_trial("regress", "he_normal", s, value=v) for s, v in enumerate(values)])
    (table,) = leaderboard(df)
    low, high, method = stats.bootstrap_ci(values)
    assert method == "percentile" and low < np.mean(values) < high
    assert _column(table, "test_mse") == [format_mean_ci(np.mean(values), low, high)]
    assert table.numeric.loc[0, "metric_ci_low"] == low


def test_single_ok_seed_shows_mean_only(tables):
    assert _column(tables["classify"], "test_accuracy")[-1] == "0.950"


def test_steps_median_partial_and_never(tables):
    assert _column(tables["regress"], "steps to 10%") == ["60", "100 (1/2)", "—"]
    assert _column(tables["classify"], "steps to 10%")[1] == "never"


def test_number_formatting():
    assert format_number(0.0123456) == "0.0123"
    assert format_number(1.5) == "1.50"
    assert format_number(1234.4) == "1234"
    assert format_number(0.000123) == "1.23e-4"
    assert format_number(2.5e6) == "2.50e6"
    assert format_number(0.00099996) == "0.00100"
    assert format_number(NAN) == "—" and format_number(0.0) == "0"


def test_sweep_and_backend_columns_only_when_needed(tables):
    for t in tables.values():
        assert "sweep" not in t.columns and "backend" not in t.columns
    df = pd.concat([_results(), pd.DataFrame([
        _trial("regress", "he_normal", 0, value=0.03, backend="jax"),
        _trial("classify", "he_normal", 0, value=0.5, sweep="model.width=256")])])
    regress, classify = leaderboard(df)
    assert "backend" in regress.columns and "sweep" not in regress.columns
    assert "sweep" in classify.columns and "backend" not in classify.columns
    assert "model.width=256" in _column(classify, "sweep")
    assert _column(regress, "backend").count("jax") == 1


def test_missing_optional_columns_are_omitted():
    df = _results().drop(columns=["ntk_drift", "steps_to_10pct", "sweep_label", "metric_goal"])
    regress, classify = leaderboard(df)
    assert "NTK drift" not in regress.columns and "steps to 10%" not in regress.columns
    assert classify.goal == "max"  # looked up from the metric name


def test_markdown_tables_are_well_formed():
    text = render(_results(), "md")
    assert "### regress — test_mse (lower is better)" in text
    assert "### classify — test_accuracy (higher is better)" in text
    assert "**Legend**" in text and text.count("**Legend**") == 1
    assert "bootstrap confidence interval" in text
    blocks = re.findall(r"(?:^\|.*\|$\n?)+", text, flags=re.M)
    assert len(blocks) == 2
    for block in blocks:
        lines = block.strip().splitlines()
        assert re.fullmatch(r"\|(?::?-{3,}:?\|)+", lines[1])  # header separator row
        cells = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
        assert len(cells) == 1 and len(lines) == 2 + 3


class _TagBalance(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_is_balanced_and_escaped():
    text = render(_results(), "html")
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
    parser = _TagBalance()
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert text.count("<table>") == 2 and text.count("<h2>") == 3  # two tasks and the legend
    assert "odd_&lt;&amp;&gt;_50%" in text and ODD not in text


def test_latex_escapes_and_uses_booktabs():
    text = render(_results(), "latex")
    assert text.count(r"\toprule") == 2 and r"\midrule" in text and r"\bottomrule" in text
    assert r"odd\_\textless{}\&\textgreater{}\_50\%" in text
    assert r"\caption{regress --- test\_mse (lower is better)}" in text
    assert r"0.0300 $\pm$ 0.014" in text and r"0.300 $\pm$ 0.14" in text
    assert "±" not in text
    for line in text.splitlines():  # no bare specials left in table rows
        if line.endswith(r"\\") and not line.startswith("%"):
            assert not re.search(r"(?<!\\)[_%#]", line)


def test_csv_round_trips_with_numeric_columns(tables):
    back = pd.read_csv(io.StringIO(render(_results(), "csv")))
    listed = ["task", "rank", "initializer", "backend", "sweep", "n_ok", "n_total", "metric",
              "metric_mean", "metric_std", "metric_ci_low", "metric_ci_high", "metric_median",
              "metric_iqm", "ci_method", "top_group", "p_vs_best", "steps_to_target",
              "steps_to_10pct",
              "alignment_init_mean", "alignment_init_std", "drift_mean", "drift_std", "wall_time_s"]
    provenance = ["suite", "ntkbench_version", "ntkbench_commit", "device", "libraries"]
    assert list(back.columns[:len(listed)]) == listed
    assert list(back.columns) == [*NUMERIC_COLUMNS, *provenance]
    assert set(back["suite"]) == {"test"} and set(back["device"]) == {"cpu"}
    assert len(back) == 6 and not back["metric_mean"].astype(str).str.contains("±").any()
    assert back["metric_mean"].dtype.kind == "f" and back["n_ok"].dtype.kind == "i"
    for task, t in tables.items():
        got = back[back["task"] == task]
        assert list(got["initializer"]) == list(t.numeric["initializer"])
        np.testing.assert_allclose(got["metric_mean"], t.numeric["metric_mean"], rtol=1e-12)
    classify = back[back["task"] == "classify"].set_index("initializer")
    assert classify.loc["he_normal", "metric_mean"] == pytest.approx(0.85, rel=1e-12)
    assert back["rank"].isna().sum() == 1


def test_every_format_carries_provenance():
    df = _results().assign(ntkbench_version="9.9", ntkbench_commit="abc123def456")
    for fmt in FORMATS:
        text = render(df, fmt)
        assert "9.9" in text and "abc123def456" in text, fmt


def test_latex_tables_have_labels_and_fit_the_line():
    text = render(_results(), "latex")
    assert r"\label{tab:ntkbench-regress}" in text and r"\label{tab:ntkbench-classify}" in text
    assert text.count(r"\begin{adjustbox}{max width=\linewidth}") == 2


def test_text_is_aligned_plain_columns():
    text = render(_results(), "text")
    assert "\x1b" not in text
    assert "regress — test_mse (lower is better)" in text
    lines = text.splitlines()
    assert lines[0] == "regress — test_mse (lower is better)"
    header, sep, rows = lines[1], lines[2], lines[3:6]
    assert set(sep.replace(" ", "")) == {"-"}
    for m in re.finditer(r"-+", sep):  # one run of dashes per column
        name = header[m.start():m.end()].strip()
        for line in [header, *rows]:
            cell = line[m.start():m.end()]
            if name == "initializer":  # labels left-aligned, everything else right-aligned
                assert cell[0] != " "
            else:
                assert cell[-1] != " "
    assert rows[0].split()[:2] == ["=1", "normal(std=0.05)"]


def test_unknown_format_lists_valid_ones():
    with pytest.raises(ValueError, match="valid formats: md, html, latex, csv, text"):
        render(_results(), "pdf")
    assert FORMATS == ("md", "html", "latex", "csv", "text")


@pytest.mark.parametrize("fmt", [None, *FORMATS])
def test_empty_results_raise_no_trials(fmt):
    empty = pd.DataFrame(columns=["task", "status", "final_test_metric"])
    with pytest.raises(ValueError, match="no trials"):
        leaderboard(empty) if fmt is None else render(empty, fmt)


def test_ties_share_a_rank():
    df = pd.DataFrame([_trial("classify", name, 0, value=1.0) for name in ("a", "b")]
                      + [_trial("classify", "c", 0, value=0.5)])
    (t,) = leaderboard(df)
    assert list(t.numeric["rank"]) == [1, 1, 3]


def test_markdown_escapes_pipes_in_labels():
    df = pd.DataFrame([_trial("regress", "mix(a|b)", 0, value=0.1)])
    table_lines = [line for line in render(df, "md").splitlines() if line.startswith("|")]
    assert r"mix(a\|b)" in table_lines[-1]
    assert len({len(re.split(r"(?<!\\)\|", line)) for line in table_lines}) == 1


def test_superseded_records_of_the_same_trial_count_once():
    old = pd.DataFrame([dict(_trial("regress", "he_normal", s, value=9.0), trial_hash=f"old{s}",
                             finished_at="2026-01-01T00:00:00+00:00") for s in (0, 1)])
    new = pd.DataFrame([dict(_trial("regress", "he_normal", s, value=0.5), trial_hash=f"new{s}",
                             finished_at="2026-02-01T00:00:00+00:00") for s in (0, 1)])
    (table,) = leaderboard(pd.concat([new, old], ignore_index=True))
    assert _column(table, "seeds") == ["2/2"]
    assert table.rows[0][table.columns.index("test_mse")].startswith("0.5")
    assert any("2 older record(s)" in note for note in table.notes)


@pytest.mark.skipif(__import__("shutil").which("pdflatex") is None,
                    reason="needs pdflatex with booktabs and adjustbox (Debian: "
                    "texlive-latex-extra) to compile the LaTeX tables")
def test_latex_compiles_in_an_article_without_overfull_boxes(tmp_path):
    import subprocess

    wide = pd.concat([_results(), pd.DataFrame([_trial(
        "regress", "a_very_long_initializer_label(std=0.0123456, gain=1.41421356)", s,
        value=0.02, steps=10, align=0.3, drift=0.1, sweep="model.width=4096") for s in (0, 1)])])
    (tmp_path / "board.tex").write_text(render(wide, "latex"))
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs,adjustbox}"
        "\\begin{document}See Table~\\ref{tab:ntkbench-regress}.\\input{board.tex}"
        "\\end{document}\n")
    for _ in range(2):  # twice, so that the reference resolves
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                                 "doc.tex"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stdout[-3000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log and "undefined" not in log.lower()


def test_wall_time_leaves_out_each_workers_first_trial():
    rows = [dict(_trial("regress", "a", s, value=0.1, wall=w), worker_trial_index=i)
            for s, (w, i) in enumerate([(10.0, 0), (2.0, 3), (4.0, 7)])]
    rows += [dict(_trial("regress", "b", 0, value=0.2, wall=9.0), worker_trial_index=0)]
    num = leaderboard(pd.DataFrame(rows))[0].numeric.set_index("initializer")
    assert num.loc["a", "wall_time_s"] == pytest.approx(3.0)
    assert num.loc["b", "wall_time_s"] == pytest.approx(9.0)  # only a first trial: kept


def test_discrimination_checks_gap_against_twice_the_largest_seed_std():
    from ntkbench.report import discrimination, leaderboard
    from ntkbench.report.discrimination import render_discrimination

    def rows(task, metric, goal, values, reached=True):
        return [{"task": task, "initializer": init, "backend": "torch", "seed": seed,
                 "status": "ok", "metric": metric, "metric_goal": goal,
                 "final_test_metric": v, "steps_to_10pct": 5.0 if reached else float("nan"),
                 "steps_to_target": float("nan")}
                for init, seeds in values.items() for seed, v in enumerate(seeds)]
    df = pd.DataFrame(
        rows("wide", "test_mse", "min", {"a": [1.0, 1.2, 1.1], "b": [2.0, 2.1, 1.9]})
        + rows("narrow", "test_accuracy", "max", {"a": [0.9, 0.8, 0.85], "b": [0.8, 0.9, 0.8]})
        + rows("stuck", "test_mse", "min", {"a": [1.0, 1.0, 1.0], "b": [3.0, 3.0, 3.0]},
               reached=False))
    check = discrimination(leaderboard(df)).set_index("task")
    # wide: gap 0.9, largest std 0.1 -> ratio 4.5; narrow: gap 0.85 - 0.8333 = 0.0167 vs
    # 2 * 0.0577 -> 0.144; stuck: zero std (ratio inf) but no seed reached 10%.
    assert check.loc["wide", "ratio"] == pytest.approx(0.9 / 0.2)
    assert check.loc["wide", ["best", "worst"]].tolist() == ["a", "b"]
    assert check.loc["narrow", "ratio"] == pytest.approx((0.85 - 2.5 / 3) /
                                                         (2 * np.std([0.8, 0.9, 0.8], ddof=1)))
    assert check.loc["narrow", "best"] == "a"
    assert check["discriminates"].to_dict() == {"wide": True, "narrow": False, "stuck": False}
    # A group whose seeds all diverged is unranked but still counts against the task; one seed
    # per group has no spread, so no ratio (not an infinite one).
    failed = pd.DataFrame(rows("wide", "test_mse", "min", {"c": [1.0, 1.0, 1.0]})).assign(
        status="diverged", final_test_metric=float("nan"))
    again = discrimination(leaderboard(pd.concat([df, failed]))).set_index("task")
    assert again.loc["wide", "n_incomplete"] == 1 and not again.loc["wide", "discriminates"]
    single = discrimination(leaderboard(pd.DataFrame(
        rows("one", "test_mse", "min", {"a": [1.0], "b": [1.1]})))).iloc[0]
    assert np.isnan(single["ratio"]) and not single["discriminates"]
    text = render_discrimination(check.reset_index(), "md")
    assert "| wide" in text and "NO" in text
    assert render_discrimination(check.reset_index(), "csv").startswith("task,")
