"""Recorded results: JSON names no machine path, mean ± std as the tables use it."""
import json
import math
import re
import time
from pathlib import Path

import pytest

from netinv_core.results import format_pm, mean_std, save_json

REPO = Path(__file__).resolve().parents[1]
ABSOLUTE = re.compile(r'"/(?:home|work|tmp|root|Users|mnt|data)/|[A-Z]:\\\\')


def test_save_json_writes_machine_paths_portably(tmp_path, monkeypatch):
    monkeypatch.setenv("NETINV_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NETINV_CACHE", str(tmp_path / "cache"))
    out = save_json({"why": f"svhn is not under the data root {tmp_path / 'data'}",
                     "ckpt": str(tmp_path / "cache" / "x.pt"), "nan": math.nan},
                    tmp_path / "r.json")
    rec = json.loads(Path(out).read_text())
    assert rec == {"why": "svhn is not under the data root $NETINV_DATA",
                   "ckpt": "$NETINV_CACHE/x.pt", "nan": None}


@pytest.mark.parametrize("path", sorted((REPO / "figures").glob("*.json")), ids=lambda p: p.name)
def test_committed_records_name_no_machine_path(path):
    hits = ABSOLUTE.findall(path.read_text())
    assert not hits, f"{path.name} records machine paths {hits[:3]}; write it with results.save_json"


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0}          # ddof = 1
    assert mean_std([4.0, None]) == {"mean": 4.0, "std": 0.0}
    assert mean_std([4.0], std_of_one=None) == {"mean": 4.0, "std": None}
    assert mean_std([None]) == {"mean": None, "std": None}
    assert format_pm({"mean": 0.5, "std": 0.25}, "{:.2f}") == "0.50 ± 0.25"
    assert format_pm({"mean": None, "std": None}) == "n/a"


def test_plotting_reads_typed_fields_not_experiment_internals():
    """Plotting takes the experiments' typed tensor objects (figure5.ReconTensors,
    ood_experiment.OODConfidences), not underscore keys or raw-confidence keys of their dicts."""
    import inspect

    from netinv_core import plotting

    src = inspect.getsource(plotting)
    for key in ('"_images"', '"_matches"', '"_train_x"', '"_test_x"', '"_ncc"', '"_inv_ncc"',
                '"_train_images_per_class"', '"confidence_in"', '"confidence_out', '"examples"'):
        assert key not in src, key


def test_experiment_records_are_json_without_their_tensors():
    import json

    import numpy as np

    from netinv_core.figure5 import ReconTensors, strip_record
    from netinv_core.ood_experiment import OODConfidences, OODTensors, record

    t = ReconTensors(images=[], inversion_images=(None, None), matches={}, train_x=None,
                     test_x=None, ncc={}, inv_ncc=None, train_images_per_class=[])
    assert strip_record({"train_size": 3, "tensors": t}) == {"train_size": 3}
    o = OODTensors(confidences=[OODConfidences(in_kept=np.zeros(2))], examples={})
    assert json.dumps(record({"train": "mnist", "per_seed": [{"ood": {}}], "tensors": o}))


def test_saved_figures_are_byte_identical_when_redrawn(tmp_path):
    """No creation date in the PDF: redrawing a figure does not churn the committed files."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from netinv_core.results import save_figure

    def draw(stem):
        fig, ax = plt.subplots()
        ax.imshow([[0.0, 1.0], [1.0, 0.0]])
        paths = save_figure(fig, tmp_path / stem)
        plt.close(fig)
        return [open(p, "rb").read() for p in paths]
    first = draw("a")
    time.sleep(1.1)            # PDF dates have one-second resolution
    assert draw("b") == first


def test_a_notebook_rerun_keeps_what_command_line_runs_added(tmp_path):
    """The ablation notebook does not make the student probe, nor Figure 5's notebook its
    attempts: rerunning them must not drop those recorded results (same profile only)."""
    from netinv_core.results import keep_previous
    path = tmp_path / "ablation.json"
    save_json({"profile": "quick", "attempts": [1], "datasets": {
        "mnist": {"summary": "old", "student": {"acc": 0.3}}, "svhn": {"student": 1}}}, path)
    new = {"profile": "quick", "datasets": {"mnist": {"summary": "new"}}}
    kept = keep_previous(new, path, ["attempts", "search", "datasets/mnist/student",
                                     "datasets/svhn/student"])
    assert kept["datasets"]["mnist"] == {"summary": "new", "student": {"acc": 0.3}}
    assert kept["attempts"] == [1] and "search" not in kept and "svhn" not in kept["datasets"]
    assert kept["kept_from_previous"] == ["attempts", "datasets/mnist/student"]
    assert keep_previous({"profile": "quick", "attempts": [2]}, path, ["attempts"])["attempts"] == [2]
    other = {"profile": "paper", "datasets": {"mnist": {}}}
    assert keep_previous(other, path, ["datasets/mnist/student"]) == other
    assert keep_previous(new, tmp_path / "missing.json", ["attempts"]) == new
    assert "student" not in new["datasets"]["mnist"]          # the input is not changed
