"""The explorer's ipywidgets view (``netinv_core.explore`` holds the runs and the training).

``ExplorerView.build`` lays out the controls (log-scale sliders named after the loss terms with
tooltips, a tick box per term, conditioning, dropout, steps, batch, seed, retrain / stop / save
buttons) beside the results (status line, live preview, the last grid and one to compare with,
the numbers of the shown runs and the history of earlier runs). ``Explorer`` inherits it.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .config import CONDITIONINGS, LOSS_TERM_LABELS, LOSS_TERMS

if TYPE_CHECKING:
    from .explore import Run

LOSS_TOOLTIPS = {
    "alpha": "alpha, weight of the KL term: D_KL(P || softmax(logits)), the conditioning "
             "distribution P against the classifier's output. 0 switches it off.",
    "beta": "beta, weight of the cross-entropy between the conditioning label and the "
            "classifier's output. 0 switches it off.",
    "gamma": "gamma, weight of the cosine term: mean pairwise cosine similarity of the "
             "normalised features of a batch. Larger = more diverse features.",
    "delta": "delta, weight of the orthogonality term: ||F F^T - I||^2 on the normalised "
             "features of a batch. Larger = more diverse features.",
}
BATCH_CHOICES = (8, 16, 32, 64, 128, 256, 512)
MAX_STEPS = 5000  # the paper profile's generator steps


def metrics_table(runs: list[Run], num_classes: int) -> str:
    """An HTML table of the numbers of ``runs`` (columns) with the trivial floor and the real-image
    reference beside them."""
    def pct(v):
        return f"{v:.1%}"

    def f3(v):
        return f"{v:.3f}"

    rows = [("inversion accuracy", "inversion_accuracy", pct, f"chance {1 / num_classes:.0%}"),
            ("mean confidence", "mean_confidence", pct, ""),
            ("feature cosine within class (lower = more diverse)", "feature_cosine_inverted", f3,
             "real test images {}".format(f3(runs[-1].metrics["feature_cosine_real"]))),
            ("pixel spread within class (higher = more diverse)", "pixel_spread_inverted", f3,
             "real test images {}".format(f3(runs[-1].metrics["pixel_spread_real"]))),
            ("training seconds", "generator_seconds", lambda v: f"{v:.1f}", "")]
    head = "".join(f"<th>#{r.index}</th>" for r in runs)
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{fmt(r.metrics[key])}</td>" for r in runs)
        + f"<td style='color:#666'>{html.escape(ref)}</td></tr>"
        for name, key, fmt, ref in rows)
    return (f"<table class='netinv-metrics' style='border-collapse:collapse;font-size:12px'>"
            f"<tr><th></th>{head}<th style='color:#666'>reference</th></tr>{body}</table>")


def history_table(runs: list[Run], last: int = 8) -> str:
    cols = ("#", "KL", "CE", "cos", "orth", "conditioning", "dropout", "steps", "batch", "seed",
            "accuracy", "feature cos", "s")
    rows = []
    for r in runs[-last:]:
        s, w, m = r.settings, r.settings["weights"], r.metrics
        rows.append((r.index, f"{w['alpha']:g}", f"{w['beta']:g}", f"{w['gamma']:g}",
                     f"{w['delta']:g}", s["conditioning"], f"{s['dropout']:g}", s["steps"],
                     s["batch_size"], s["seed"], f"{m['inversion_accuracy']:.1%}",
                     f"{m['feature_cosine_inverted']:.3f}", f"{m['generator_seconds']:.0f}"))
    th = "".join(f"<th>{c}</th>" for c in cols)
    tr = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                 for row in rows)
    return (f"<table class='netinv-history' style='font-size:11px'><tr>{th}</tr>{tr}</table>")


class ExplorerView:
    """The widgets of an ``Explorer``: ``build`` makes them, ``settings`` reads them, ``_show``
    puts the last run (and the one chosen to compare with) on screen."""

    def build(self, settings: dict):
        import ipywidgets as W

        wide = {"description_width": "150px"}
        self.on, self.sliders = {}, {}
        rows = []
        for k in LOSS_TERMS:
            v = float(settings[k])
            self.sliders[k] = W.FloatLogSlider(
                value=v if v > 0 else 1.0, base=10, min=-2, max=2, step=0.05,
                description=f"{LOSS_TERM_LABELS[k]} ({k})", tooltip=LOSS_TOOLTIPS[k],
                style=wide, readout_format=".3g", continuous_update=False,
                layout=W.Layout(width="330px"))
            self.on[k] = W.Checkbox(value=v > 0, indent=False, tooltip=f"use the {LOSS_TERM_LABELS[k]} term",
                                    layout=W.Layout(width="24px"))
            self.on[k].observe(lambda ch, s=self.sliders[k]: setattr(s, "disabled", not ch["new"]),
                               "value")
            self.sliders[k].disabled = v <= 0
            rows.append(W.HBox([self.on[k], self.sliders[k]]))
        self.cond = W.Dropdown(options=CONDITIONINGS, value=settings["conditioning"],
                               description="conditioning", style=wide,
                               tooltip="label, vector, matrix or vector_matrix (Section 3.2)")
        self.drop = W.FloatSlider(value=float(settings["dropout"]), min=0.0, max=0.9, step=0.05,
                                  description="dropout", style=wide, continuous_update=False,
                                  tooltip="dropout in every generator block (paper: heavy, 0.5)")
        self.steps = W.IntSlider(value=int(settings["steps"]), min=1, max=MAX_STEPS, step=1,
                                 description="steps", style=wide, continuous_update=False,
                                 tooltip=f"generator training steps (paper profile {MAX_STEPS})")
        batches = sorted(set(BATCH_CHOICES) | {int(settings["batch_size"])})
        self.batch = W.Dropdown(options=batches, value=int(settings["batch_size"]),
                                description="batch", style=wide,
                                tooltip="samples per training step (paper profile 512)")
        self.seed = W.BoundedIntText(value=int(settings["seed"]), min=0, max=2**31 - 1,
                                     description="seed", style=wide, layout=W.Layout(width="220px"))
        self.width = int(settings["width"])
        self.retrain_button = W.Button(description="retrain generator", button_style="primary",
                                       icon="refresh", tooltip="train a generator with these settings",
                                       layout=W.Layout(width="200px"))
        self.stop_button = W.Button(description="stop", button_style="warning", icon="stop",
                                    disabled=True, tooltip="stop the running training",
                                    layout=W.Layout(width="110px"))
        self.save_button = W.Button(description="save figure", icon="save", disabled=True,
                                    tooltip="write the shown grid (PNG, PDF) and its numbers (JSON)")
        self.save_path = W.Text(value=self.save_dir, description="save to", style=wide,
                                layout=W.Layout(width="300px"))
        self.retrain_button.on_click(lambda _: self.retrain())
        self.stop_button.on_click(lambda _: self.stop())
        self.save_button.on_click(lambda _: self._save_clicked())
        self.status = W.HTML(value="")
        self.preview = W.Image(format="png", layout=W.Layout(display="none", max_height="40vh"))
        img = {"max_height": "72vh", "max_width": "100%", "object_fit": "contain"}
        self.grid = W.Image(format="png", layout=W.Layout(**img))
        self.compare_grid = W.Image(format="png", layout=W.Layout(display="none", **img))
        self.compare = W.Dropdown(options=[("none", 0)], value=0, description="compare with",
                                  style=wide, tooltip="show an earlier run beside the last one")
        self.compare.observe(lambda _: self._show(), "value")
        self.table = W.HTML(value="<i>no run yet: press retrain generator</i>")
        self.history_html = W.HTML(value="")
        controls = W.VBox([W.HTML("<b>loss weights</b> (log scale; untick to switch a term off)"),
                           *rows, self.cond, self.drop, self.steps, self.batch, self.seed,
                           W.HBox([self.retrain_button, self.stop_button]),
                           self.save_path, self.save_button],
                          layout=W.Layout(min_width="370px", max_width="380px"))
        results = W.VBox([self.status, W.HBox([self.preview, self.compare_grid, self.grid]),
                          self.compare, self.table, self.history_html],
                         layout=W.Layout(flex="1 1 auto", overflow="auto"))
        self.widget = W.HBox([controls, results])
        for w, name in ((self.widget, "netinv-explorer"), (self.status, "netinv-explorer-status"),
                        (self.grid, "netinv-explorer-grid"), (self.preview, "netinv-explorer-preview"),
                        (self.compare_grid, "netinv-explorer-compare")):
            w.add_class(name)
        return self.widget

    def settings(self) -> dict:
        return {"weights": {k: (self.sliders[k].value if self.on[k].value else 0.0)
                            for k in LOSS_TERMS},
                "conditioning": self.cond.value, "dropout": self.drop.value,
                "steps": self.steps.value, "batch_size": self.batch.value, "width": self.width,
                "seed": self.seed.value}

    def _set_status(self, text: str, color: str = "#333"):
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    def _busy(self, busy: bool):
        self.retrain_button.disabled = busy
        self.retrain_button.description = "training..." if busy else "retrain generator"
        self.stop_button.disabled = not busy
        self.save_button.disabled = busy or not self.runs

    def _show(self):
        last = self.last
        if last is None:
            return
        self.grid.value = last.png
        other = next((r for r in self.runs if r.index == self.compare.value), None)
        if other is not None and other is not last:
            self.compare_grid.value = other.png
            self.compare_grid.layout.display = None
            shown = [other, last]
        else:
            self.compare_grid.layout.display = "none"
            shown = [last]
        self.table.value = metrics_table(shown, last.generator.num_classes)
        self.history_html.value = history_table(self.runs) if len(self.runs) > 1 else ""
