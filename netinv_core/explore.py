"""Interactive exploration of the inversion loss (not a paper figure).

    L_Inv = alpha * L_KL + beta * L_CE + gamma * L_Cosine + delta * L_Ortho      (Section 3.3)

``invert_once`` trains one generator against a trained classifier for the given weights and
settings and returns a ``Run`` (its grid figure, ``metrics.inversion_report`` numbers, history and
the generator). ``explorer`` wraps it in ipywidgets: log-scale sliders named after the loss terms,
conditioning, dropout, steps, batch and seed; a retrain button that trains in a background thread
(so the Stop button and the rest of the notebook stay usable), a live preview while it trains,
the previous grid kept until the new one is ready, a history to compare runs side by side, and a
button that saves the figure. Steps, batch and width default to the profile's values. This module
holds the runs, their training and saving; the widgets' layout is ``explore_widgets``.

Progress is shown as text inside the widget, never as tqdm widgets (finished tqdm widgets close
and leave "Error displaying widget: model not found" after a page reload).
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import LOSS_TERMS, GeneratorConfig, LossWeights, get_profile
from .data import ImageData
from .device import resolve_device
from .errors import ConfigError, NetinvError
from .explore_widgets import ExplorerView
from .generator import Generator, generate
from .inversion import train_generator
from .metrics import inversion_report


@dataclass
class Run:
    """One trained generator of the explorer: its settings, numbers, figure and the generator."""

    index: int
    settings: dict
    metrics: dict
    history: dict
    generator: Generator
    figure: object            # matplotlib Figure: rows = classes, columns = samples
    png: bytes = b""
    seconds: float = 0.0

    def label(self) -> str:
        s, w = self.settings, self.settings["weights"]
        return (f"#{self.index}: KL {w['alpha']:g}, CE {w['beta']:g}, cos {w['gamma']:g}, "
                f"orth {w['delta']:g}, {s['conditioning']}, {s['steps']} steps: "
                f"{self.metrics['inversion_accuracy']:.1%}")


def profile_settings(profile=None, **overrides) -> dict:
    """The explorer's settings for ``profile``: its generator steps, batch and width, the default
    loss weights, conditioning and dropout, seed 0. An override of 0 or None keeps the profile's
    value for steps, batch_size and width."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    w = LossWeights()
    out = {"alpha": w.alpha, "beta": w.beta, "gamma": w.gamma, "delta": w.delta,
           "conditioning": "vector_matrix", "dropout": 0.5, "steps": prof.generator_steps,
           "batch_size": prof.generator_batch, "width": prof.generator_width, "seed": 0}
    for k, v in overrides.items():
        if k not in out:
            raise ConfigError(f"unknown explorer setting {k!r}; the settings are {sorted(out)}")
        if k in ("steps", "batch_size", "width") and not v:
            continue
        out[k] = v
    # validated here, before any widget or training
    GeneratorConfig(conditioning=out["conditioning"], dropout=out["dropout"], steps=out["steps"],
                    batch_size=out["batch_size"], width=out["width"], seed=out["seed"],
                    weights={k: out[k] for k in LOSS_TERMS})
    return out


def load_classifier(dataset: str = "", profile=None, device=None, progress=True):
    """The profile's cached classifier for ``dataset`` (default: the profile's first) and the
    test split; says first when it has to be trained (once: it is cached afterwards)."""
    from .cache import checkpoint_path
    from .config import to_dict
    from .data import load_dataset
    from .pipeline import classifier_config, get_classifier

    prof = get_profile(profile) if isinstance(profile, str) else profile
    dataset = dataset or prof.datasets[0]
    cfg = classifier_config(dataset, prof)
    path = checkpoint_path("classifier", to_dict(cfg), dataset)
    if path.exists():
        print(f"{dataset} classifier ({prof.name} profile) loaded from the cache: {path}")
    else:
        print(f"No cached {dataset} classifier for the {prof.name} profile yet: training it once "
              f"now ({cfg.epochs} epochs; seconds for smoke, a few minutes on a CPU for quick). "
              f"It is cached in {path.parent} and loaded from there next time.", flush=True)
    clf = get_classifier(cfg, device=device, progress=progress)
    print(f"classifier test accuracy {clf.metrics['test_accuracy']:.4f}")
    return clf, load_dataset(dataset, "test")


def grid_figure(images: torch.Tensor, labels: torch.Tensor, class_names, per_class: int,
                title: str = "", cell: float = 0.42):
    """A compact grid (rows = classes, ``per_class`` columns) drawn as one mosaic image on one
    pyplot-free Figure: fast (one Axes instead of one per image), and a background thread can
    draw it without it popping up in whichever cell runs next."""
    from matplotlib.figure import Figure

    n = len(class_names)
    c, h, w = images.shape[1:]
    pad = max(1, h // 14)
    mosaic = torch.full((c, n * (h + pad) + pad, per_class * (w + pad) + pad), 1.0)
    for k in range(n):
        idx = torch.nonzero(labels == k).flatten()[:per_class]
        for j, i in enumerate(idx.tolist()):
            y, x = pad + k * (h + pad), pad + j * (w + pad)
            mosaic[:, y:y + h, x:x + w] = images[i].detach().cpu().clamp(0, 1)
    label_w = 0.15 + 0.055 * max(len(str(name)) for name in class_names)  # inches for row labels
    top = 0.15 + 0.13 * (title.count("\n") + 1) if title else 0.1  # inches for the title lines
    width, height = cell * per_class + label_w + 0.05, cell * n + top + 0.05
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_axes([label_w / width, 0.05 / height, cell * per_class / width, cell * n / height])
    img = mosaic[0] if c == 1 else mosaic.permute(1, 2, 0)
    ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.set_xticks([])
    ax.set_yticks([pad + k * (h + pad) + h / 2 for k in range(n)], [str(x) for x in class_names],
                  fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=7, y=1 - 0.05 / height, va="top")
    return fig


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _preview_png(gen: Generator, per_class: int = 2, scale: int = 2) -> bytes:
    """A small grid of the generator's current samples (rows = classes), PNG bytes.
    ``generator.generate`` leaves the random state and the training mode as they were, so
    training is unchanged."""
    from PIL import Image
    from torchvision.utils import make_grid

    n = gen.num_classes
    labels = torch.arange(n).repeat_interleave(per_class)
    x, _ = generate(gen, len(labels), labels=labels, seed=0)
    grid = make_grid(x.cpu().clamp(0, 1), nrow=per_class, padding=1, pad_value=0.3)
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    img = Image.fromarray(arr if arr.shape[2] == 3 else arr[:, :, 0])
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class Stopped(Exception):
    """Raised from the training callback when the Stop button (or ``Explorer.stop``) is pressed."""


def invert_once(classifier, test: ImageData, *, weights: LossWeights, conditioning="vector_matrix",
                dropout: float = 0.5, steps: int, batch_size: int = 128, width: int = 64,
                seed: int = 0, eval_samples: int = 1000, per_class: int = 6, device=None,
                feature_layer=None, progress=False, callback=None, index: int = 1,
                speed: dict | None = None) -> Run:
    """Train one generator for ``steps`` steps against ``classifier`` and evaluate it on
    ``eval_samples`` fresh samples; returns a ``Run`` whose figure shows ``per_class`` samples per
    class. ``callback(record, generator)`` runs after every step (it may raise to stop).
    ``speed`` holds ``GeneratorConfig`` speed settings (``Profile.generator_speed``: precision,
    lr, stop_at_accuracy); an early stop ends training before ``steps``."""
    device = resolve_device(device)
    weights = weights if isinstance(weights, LossWeights) else LossWeights(**weights)
    cfg = GeneratorConfig(conditioning=conditioning, dropout=dropout, weights=weights,
                          steps=steps, batch_size=batch_size, width=width, seed=seed,
                          **(speed or {}))
    holder = {}

    def on_step(rec):
        if callback is not None:
            callback(rec, holder.get("gen"))

    t0 = time.perf_counter()
    gen, history = train_generator(classifier, cfg, test.image_shape, device=device,
                                   feature_layer=feature_layer, progress=progress,
                                   callback=on_step,
                                   on_start=lambda g: holder.__setitem__("gen", g))
    metrics = inversion_report(classifier, gen, test, n=eval_samples, device=device,
                               feature_layer=feature_layer)
    metrics["generator_seconds"] = history["seconds"]
    n = gen.num_classes
    labels = torch.arange(n).repeat(per_class)
    imgs, _ = generate(gen, len(labels), labels=labels, seed=seed)
    w = weights
    fig = grid_figure(imgs, labels, test.classes, per_class, title=(
        f"#{index} KL {w.alpha:g}, CE {w.beta:g}, cosine {w.gamma:g}, orth. {w.delta:g}\n"
        f"{conditioning}, dropout {dropout:g}, seed {seed}\n{len(history['step'])} steps x {batch_size}: "
        f"inversion accuracy {metrics['inversion_accuracy']:.1%}"))
    settings = {"weights": {k: getattr(w, k) for k in LOSS_TERMS}, "conditioning": conditioning,
                "dropout": dropout, "steps": steps, "batch_size": batch_size, "width": width,
                "seed": seed, "eval_samples": eval_samples, "steps_trained": len(history["step"]),
                **(speed or {})}
    return Run(index, settings, metrics, history, gen, fig, figure_png(fig),
               time.perf_counter() - t0)


@dataclass
class Explorer(ExplorerView):
    """The explorer's state and widgets. ``runs`` holds every finished run; ``figure``,
    ``metrics`` and ``generator`` are those of the last one. ``retrain()`` trains with the
    current widget values (in a thread; ``wait=True`` blocks), ``stop()`` stops a running one,
    ``save(folder)`` writes the last figure (PNG, PDF) and its numbers (JSON)."""

    classifier: object
    test: ImageData
    device: object
    feature_layer: str | None = None
    runs: list = field(default_factory=list)
    error: BaseException | None = None
    widget: object = None
    save_dir: str = "explore_figures"
    speed: dict = field(default_factory=dict)   # the profile's generator_speed
    _thread = None  # the running training, if any (not a dataclass field)

    def __post_init__(self):
        self._stop = threading.Event()  # set by the stop button / ``stop()``
        self._last_preview = 0.0

    @property
    def last(self) -> Run | None:
        return self.runs[-1] if self.runs else None

    @property
    def figure(self):
        return self.last.figure if self.last else None

    @property
    def metrics(self) -> dict | None:
        return self.last.metrics if self.last else None

    @property
    def generator(self):
        return self.last.generator if self.last else None

    @property
    def training(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __repr__(self):
        last = self.last.label() if self.last else "no run yet"
        return f"<Explorer: {len(self.runs)} run(s); last {last}>"

    # --- training -----------------------------------------------------------------------------
    def _on_step(self, rec, gen):
        if self._stop.is_set():
            raise Stopped()
        now = time.perf_counter()
        total = self._settings["steps"]
        if now - self._last_status > 0.25 or rec["step"] == total:
            self._last_status = now
            self._set_status(f"training #{len(self.runs) + 1}: step {rec['step']}/{total}, loss "
                             f"{rec['loss']:.3f}, batch accuracy {rec['batch_accuracy']:.0%}, "
                             f"{now - self._t0:.0f} s")
        if gen is not None and now - self._last_preview > 1.0:
            self._last_preview = now
            self.preview.value = _preview_png(gen)
            self.preview.layout.display = None

    def _train(self, settings: dict):
        self._settings, self.error = settings, None
        self._t0 = self._last_status = time.perf_counter()
        self._last_preview = 0.0
        index = (self.runs[-1].index if self.runs else 0) + 1
        try:
            run = invert_once(self.classifier, self.test, weights=settings["weights"],
                              conditioning=settings["conditioning"], dropout=settings["dropout"],
                              steps=settings["steps"], batch_size=settings["batch_size"],
                              width=settings["width"], seed=settings["seed"], device=self.device,
                              feature_layer=self.feature_layer, callback=self._on_step,
                              index=index, speed=self.speed)
        except Stopped:
            self._set_status(f"stopped #{index}; the previous grid is kept", "#a60")
        except KeyboardInterrupt:
            self._set_status(f"interrupted #{index}; the previous grid is kept", "#a60")
        except NetinvError as e:
            self.error = e
            self._set_status(f"{type(e).__name__}: {e}", "#b00")
        except Exception as e:  # shown in the widget; the traceback is in Explorer.error
            self.error = e
            self._set_status(f"{type(e).__name__}: {e} (traceback: Explorer.error)", "#b00")
        else:
            self.runs.append(run)
            options = [("none", 0)] + [(r.label(), r.index) for r in self.runs[:-1]]
            keep = self.compare.value if self.compare.value in [v for _, v in options] else 0
            self.compare.options = options
            self.compare.value = keep
            self._show()
            self._set_status(f"done: {run.label()} ({run.seconds:.0f} s)", "#060")
        finally:
            self.preview.layout.display = "none"
            self._stop.clear()
            self._busy(False)

    def retrain(self, wait: bool = False):
        """Train a generator with the current widget values in a background thread (one at a
        time: the button is disabled meanwhile); ``wait=True`` blocks until it is done."""
        if self.training:
            return self
        settings = self.settings()
        self._busy(True)
        self._set_status(f"training #{len(self.runs) + 1} ({settings['steps']} steps)...")
        self._thread = threading.Thread(target=self._train, args=(settings,), daemon=True)
        self._thread.start()
        if wait:
            self.wait()
        return self

    def wait(self, timeout: float | None = None):
        """Block until the running training (if any) has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    def stop(self):
        """Stop the running training after its current step; the previous grid stays."""
        if self.training:
            self._stop.set()
        return self

    def run_here(self):
        """Train once in the calling thread (the notebook's first run: papermill waits for it;
        a kernel interrupt stops it cleanly)."""
        self._busy(True)
        self._set_status("training the first generator...")
        self._train(self.settings())
        if self.error is not None:
            raise self.error
        return self

    def save(self, folder=None) -> list[str]:
        """Write the last figure as PNG and PDF and its settings and numbers as JSON (atomically)
        into ``folder`` (default: the 'save to' field); returns the paths."""
        from .plotting import save_figure, save_json

        if self.last is None:
            raise ConfigError("nothing to save yet: train a generator first")
        folder = Path(folder or self.save_path.value or self.save_dir).expanduser()
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder} is a file; give a folder to save the figure in")
        stem = folder / f"explore_{self.test.name}_{time.strftime('%Y%m%d-%H%M%S')}_{self.last.index}"
        paths = save_figure(self.last.figure, stem)
        paths.append(save_json({"settings": self.last.settings, "metrics": self.last.metrics,
                                "dataset": self.test.name}, f"{stem}.json"))
        return paths

    def _save_clicked(self):
        try:
            paths = self.save()
            self._set_status("saved " + ", ".join(paths), "#060")
        except (NetinvError, OSError) as e:
            self._set_status(f"could not save: {e}", "#b00")


def explorer(classifier, test: ImageData, *, profile=None, device=None, feature_layer=None,
             run: bool = True, display: bool = True, **settings) -> Explorer:
    """Build (and display) the explorer for ``classifier`` (a module or a cached ``Trained``)
    and ``test`` data; ``settings`` override ``profile_settings(profile)`` (alpha, beta, gamma,
    delta, conditioning, dropout, steps, batch_size, width, seed). With ``run`` it trains the
    first generator right away, in the calling cell, so the widget shows a grid before any click.
    Returns the ``Explorer`` (``.figure``, ``.metrics``, ``.generator``, ``.runs``)."""
    model = getattr(classifier, "model", classifier)
    values = profile_settings(profile, **settings)
    ex = Explorer(model, test, resolve_device(device), feature_layer,
                  speed=dict(get_profile(profile).generator_speed))
    ex.build(values)
    if display:
        from IPython.display import display as show
        show(ex.widget)
    if run:
        try:
            ex.run_here()
        except KeyboardInterrupt:  # raised between steps, outside _train's handler
            ex._busy(False)
            ex._set_status("interrupted; press retrain generator", "#a60")
    else:
        ex._busy(False)
    return ex
