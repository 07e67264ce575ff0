"""A static HTML report of a study: ``index.html`` plus its images, opened from disk.

No server and no network: the plots' JavaScript (plotly) is written once beside the page and
every image is copied into ``images/``. Study names, parameter values and paths are escaped.
The leaderboard sorts by any column on a click; a click on a row shows the trial's images.
No TensorFlow here.
"""

from __future__ import annotations

import html
import shutil
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import yaml

from vissearch.study import store
from vissearch.study.leaderboards import (
    importance_target,
    importances,
    leaderboard,
    quiet_importances,
)

TOP = 4  # trials compared side by side, and loss curves drawn
DETAILED = 12  # trials (best first) whose every target image is copied; the rest keep a grid
KEY_SCORES = ("activation", "transfer", "transfer_whole", "transfer_crops", "readability",
              "robustness", "dead")


def build(study: optuna.Study, out: str | Path, config_path: str = "CONFIG") -> Path:
    """Write the report of ``study`` into ``out``; return the path of ``index.html``."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    df = leaderboard(study)
    complete = df[df["state"] == "COMPLETE"]
    body = [f"<h1>Study {_e(study.study_name)}</h1>", _counts(df)]
    if df.empty:
        body.append("<p class=note>This study has no trials yet.</p>")
    elif complete.empty:
        body.append("<p class=note>No trial of this study has completed; the failed and pruned "
                    "ones are listed below with their errors.</p>")
    images = _copy_images(study, df, out / "images")
    if not complete.empty:
        best = int(complete.iloc[0]["number"])
        cmd = (f"python -m vissearch reproduce {config_path} --trial {best} "
               f"--out out/trial-{best}")
        trial = next(t for t in study.get_trials(deepcopy=False) if t.number == best)
        body += [_best(trial, df.attrs["objectives"], images, cmd)]
        if len(complete) > 1:
            body += ["<h2>The next best, side by side</h2>", _side_by_side(complete, images)]
        plots = _plots(study, complete)
        if plots:
            (out / "plotly.min.js").write_text(_plotly_js())
            body.append("<h2>What mattered</h2>")
            body += [f"<h3>{_e(title)}</h3>{div}" for title, div in plots]
    if not df.empty:
        body += ["<h2>Every trial</h2>", "<p>Click a column to sort, a row to see its images. "
                 "A stopped (pruned) trial's objective, in parentheses, is its score where it "
                 "stopped.</p>",
                 _table(df, images)]
    config = dict(study.user_attrs.get("config", {}))
    if isinstance(config.get("study"), dict) and config["study"].get("storage"):
        # a study stored before passwords were hidden still shows none
        config["study"] = {**config["study"], "storage": store.shown(config["study"]["storage"])}
    body += ["<h2>Config</h2>", f"<pre>{_e(yaml.safe_dump(config, sort_keys=False))}</pre>"]
    head = ('<meta charset="utf-8"><title>vissearch: ' + _e(study.study_name) + "</title>"
            f"<style>{CSS}</style>")
    if (out / "plotly.min.js").exists():
        head += '<script src="plotly.min.js"></script>'
    page = f"<!doctype html><html><head>{head}</head><body>{''.join(body)}<script>{JS}</script>"
    page += "</body></html>"
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _counts(df: pd.DataFrame) -> str:
    counts = df["state"].value_counts().to_dict() if not df.empty else {}
    text = ", ".join(f"{n} {s.lower()}" for s, n in counts.items()) or "no trials"
    return f"<p>{len(df)} trials: {_e(text)}</p>"


def _copy_images(study: optuna.Study, df: pd.DataFrame, folder: Path) -> dict[int, dict]:
    """Copy each trial's grid and target images; map trial number -> relative paths."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    out: dict[int, dict] = {}
    for rank, number in enumerate(df["number"]):
        ids = trials[int(number)].user_attrs.get("images", {})
        entry: dict = {"grid": None, "targets": []}
        grid = store.trial_file(study, ids, "grid")
        if grid:
            shutil.copyfile(grid, folder / f"trial_{number}_grid.png")
            entry["grid"] = f"images/trial_{number}_grid.png"
        for index in ids.get("targets", {}) if rank < DETAILED else ():
            src = store.trial_file(study, ids, index)
            if src:
                name = f"trial_{number}_target_{_safe(index)}.png"
                shutil.copyfile(src, folder / name)
                caption = ids.get("captions", {}).get(index) or f"target {index}"
                entry["targets"].append((caption, f"images/{name}"))
        out[int(number)] = entry
    return out


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in str(text))


def _cell(value) -> tuple[str, str]:
    """(display text, sort key) of one value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "", ""
    if isinstance(value, _Interim):
        return f"({float(value):.3g})", repr(float(value))
    if isinstance(value, float | np.floating):
        return f"{value:.3g}", repr(float(value))
    return str(value), str(value)


def _table(df: pd.DataFrame, images: dict[int, dict]) -> str:
    objectives = df.attrs["objectives"]
    scores = [c for c in df.columns if c.startswith("score_")
              and c.removeprefix("score_") not in objectives]
    readers = [c for c in store.READERS if c in df.columns]
    columns = ["number", "state", *objectives, *readers, *scores, *df.attrs["params"],
               "duration_s"]
    head = "".join(f"<th data-col={i + 2}>{_e(c.removeprefix('score_'))}</th>"
                   for i, c in enumerate(columns))
    rows = []
    for rank, (_, row) in enumerate(df.iterrows(), start=1):
        number = int(row["number"])
        grid = images.get(number, {}).get("grid")
        thumb = f'<img class=thumb src="{_e(grid)}" alt="trial {number}">' if grid else ""
        cells = "".join(f'<td data-v="{_e(k)}">{_e(t)}</td>'
                        for t, k in (_cell(_value(row, c, objectives)) for c in columns))
        rows.append(f'<tr class=trial data-trial="{number}"><td data-v="{rank}">{rank}</td>'
                    f"<td>{thumb}</td>{cells}</tr>")
        targets = "".join(f'<figure><img src="{_e(p)}" alt="{_e(c)}">'
                          f"<figcaption>{_e(c)}</figcaption></figure>"
                          for c, p in images.get(number, {}).get("targets", []))
        error = f"<p class=error>{_e(row['error'])}</p>" if isinstance(row["error"], str) else ""
        rows.append(f'<tr class=detail hidden><td colspan="{len(columns) + 2}">{error}'
                    f"{targets or '<p>No images.</p>'}</td></tr>")
    return (f"<div class=board-wrap><table id=board><thead><tr><th data-col=0>rank</th>"
            f"<th>grid</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _best(trial: optuna.trial.FrozenTrial, objectives: list[str], images: dict[int, dict],
          cmd: str) -> str:
    """The best trial first and large: its grid, its scores and settings, how to get it again."""
    number = trial.number
    grid = images.get(number, {}).get("grid")
    img = (f'<img id=best class=hero src="{_e(grid)}" alt="the grid of trial {number}">'
           if grid else "<p>No images.</p>")
    scores = trial.user_attrs.get("scores", {})
    readers = [(k, trial.user_attrs.get(k)) for k in store.READERS]  # what people said first
    shown = [(k, v) for k, v in [*readers, *zip(objectives, trial.values or [], strict=False),
                                 *((k, scores.get(k)) for k in KEY_SCORES if k not in objectives)]
             if isinstance(v, int | float) and np.isfinite(v)]
    facts = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_cell(v)[0])}</td></tr>" for k, v in shown)
    settings = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_cell(v)[0])}</td></tr>"
                       for k, v in trial.params.items())
    return (f"<h2>The best trial: {number}</h2><div class=best>{img}<div class=about>"
            f"<table class=facts><tr><th colspan=2>scores</th></tr>{facts}</table>"
            f"<table class=facts><tr><th colspan=2>searched settings</th></tr>{settings}</table>"
            f"<p>Render it again:</p><pre>{_e(cmd)}</pre></div></div>")


def _value(row: pd.Series, column: str, objectives: list[str]):
    """A cell's value; a stopped trial's objective is its score where it stopped (it has no
    final value), shown in parentheses."""
    value = row[column]
    if column in objectives and row["state"] == "PRUNED" and not _finite(value):
        interim = row.get(f"score_{column}")
        if _finite(interim):
            return _Interim(interim)
    return value


class _Interim(float):
    """A score at the step a pruned trial stopped."""


def _finite(value) -> bool:
    return isinstance(value, int | float | np.floating) and bool(np.isfinite(value))


def _side_by_side(complete: pd.DataFrame, images: dict[int, dict]) -> str:
    top = complete.iloc[1:TOP + 1]  # the best has its own section
    params = [p for p in complete.attrs.get("params", []) if p in top.columns
              and top[p].astype(str).nunique(dropna=False) > 1]
    figs = "".join(
        f'<figure><img class=big src="{_e(images[int(n)]["grid"])}" alt="trial {int(n)}">'
        f"<figcaption>trial {int(n)}</figcaption></figure>"
        for n in top["number"] if images.get(int(n), {}).get("grid"))
    header = "".join(f"<th>trial {int(n)}</th>" for n in top["number"])
    rows = "".join(f"<tr><th>{_e(p)}</th>" + "".join(f"<td>{_e(_cell(v)[0])}</td>"
                                                      for v in top[p]) + "</tr>"
                   for p in params)
    table = (f"<table class=diff><tr><th>setting</th>{header}</tr>{rows}</table>" if params
             else "<p>The top trials share every searched setting.</p>")
    return f"<div class=row>{figs}</div><p>Settings where they differ:</p>{table}"


def _plots(study: optuna.Study, complete: pd.DataFrame) -> list[tuple[str, str]]:
    """Optuna's own plots, each skipped with a note when it cannot be drawn."""
    import plotly.graph_objects as go
    from optuna import visualization as vis

    names = complete.attrs.get("objectives", ["objective"])
    first = {"target": (lambda t: t.values[0]), "target_name": names[0]}
    makers = [("Optimization history", lambda: vis.plot_optimization_history(study, **first)),
              ("Parameter importances", lambda: _importance_plot(study, names[0])),
              ("Slice plot of the settings that mattered most",
               lambda: vis.plot_slice(study, params=_most_important(study), **first))]
    if len(study.directions) == 2:
        makers.append(("Pareto front",
                       lambda: vis.plot_pareto_front(study, target_names=names)))
    out = []
    for title, make in makers:
        try:
            with warnings.catch_warnings():  # Optuna's "experimental" notes are not the reader's
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fig = make()
        except Exception as err:  # e.g. importances need two completed trials
            out.append((title, f"<p class=note>Not drawn: {_e(err)}</p>"))
            continue
        fig.update_layout(autosize=True, width=None)
        out.append((title, fig.to_html(full_html=False, include_plotlyjs=False,
                                       default_width="100%", config={"responsive": True})))
    curves = go.Figure()
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for n in complete["number"].head(TOP):
        curve = trials[int(n)].user_attrs.get("curve", {})
        values = np.array([[np.nan if v is None else v for v in row]
                           for row in curve.get("values", [])], dtype=float)
        if values.size:
            curves.add_trace(go.Scatter(x=curve["steps"], y=np.nanmean(values, axis=0),
                                        name=f"trial {int(n)}", mode="lines"))
    curves.update_layout(xaxis_title="step", yaxis_title="mean activation of the targets")
    out.append((f"Loss curves of the top {TOP} trials",
                curves.to_html(full_html=False, include_plotlyjs=False)))
    return out


def _most_important(study: optuna.Study, n: int = 4) -> list[str] | None:
    try:
        return list(importances(study))[:n]
    except Exception:  # too few trials: every setting
        return None


def _importance_plot(study: optuna.Study, name: str):
    """What matters for the best trials, in the study's direction (leaderboards.importances)."""
    from optuna import visualization as vis

    direction = study.directions[0].name.lower()
    with quiet_importances():
        return vis.plot_param_importances(study, target=importance_target(study),
                                          target_name=f"{name} ({direction}d)")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}
#board th{cursor:pointer;background:#f3f3f3;position:sticky;top:0;z-index:1}
#board tr.trial{cursor:pointer}#board td{text-align:right}
#board tr.trial:hover{background:#f8f8e8}img.thumb{width:112px;image-rendering:pixelated}
.best{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}
img.hero{width:min(640px,90vw);image-rendering:pixelated}.facts{margin-bottom:1em}
.about{flex:1;min-width:280px}.about pre{white-space:pre-wrap;word-break:break-all}
.facts th{text-align:left;font-weight:normal;color:#555}
.board-wrap{max-height:85vh;overflow:auto}
img.big{width:260px;image-rendering:pixelated}figure{display:inline-block;margin:4px}
.row{display:flex;flex-wrap:wrap}.note{color:#666}.error{color:#a00}pre{background:#f6f6f6;
padding:8px;overflow:auto}.detail img{width:128px;image-rendering:pixelated}
"""

JS = """
(function(){
  var table=document.getElementById('board'); if(!table) return;
  var body=table.tBodies[0];
  function pairs(){
    var r=[],rows=body.rows;
    for(var i=0;i<rows.length;i+=2){r.push([rows[i],rows[i+1]]);}
    return r;
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
    if(th.dataset.col===undefined) return;
    th.addEventListener('click',function(){
      var dir=th.dataset.dir==='asc'?'desc':'asc'; th.dataset.dir=dir;
      var p=pairs(); p.sort(function(a,b){
        var x=a[0].cells[col].dataset.v||'', y=b[0].cells[col].dataset.v||'';
        if(x===''&&y==='') return 0; if(x==='') return 1; if(y==='') return -1;
        var nx=parseFloat(x), ny=parseFloat(y), c;
        c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:(x<y?-1:(x>y?1:0));
        return dir==='asc'?c:-c;});
      p.forEach(function(pr){body.appendChild(pr[0]);body.appendChild(pr[1]);});
    });
  });
  Array.prototype.forEach.call(body.querySelectorAll('tr.trial'),function(tr){
    tr.addEventListener('click',function(){var d=tr.nextElementSibling; d.hidden=!d.hidden;});
  });
})();
"""
