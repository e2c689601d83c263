"""Interactive exploration: retrain a generator briefly for chosen loss weights and redraw.

``invert_once`` trains one generator for ``steps`` steps against a trained classifier and returns
its samples (rows = classes) and numbers; ``explorer`` wraps it in ipywidgets sliders for the
loss weights alpha, beta, gamma, delta, the conditioning scheme and the dropout.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .config import CONDITIONINGS, GeneratorConfig, LossWeights
from .data import ImageData
from .inversion import train_generator
from .generator import generate
from .metrics import inversion_report
from .plotting import inversion_grid


def invert_once(classifier, test: ImageData, *, weights: LossWeights, conditioning: str,
                dropout: float, steps: int, batch_size: int = 128, width: int = 64, seed: int = 0,
                eval_samples: int = 1000, per_class: int = 8, device="cpu", progress=True):
    """Train one generator briefly; returns ``(figure, metrics, history)``."""
    cfg = GeneratorConfig(conditioning=conditioning, dropout=dropout, weights=weights,
                          steps=steps, batch_size=batch_size, width=width, seed=seed)
    gen, history = train_generator(classifier, cfg, test.image_shape, device=device,
                                   progress=progress)
    metrics = inversion_report(classifier, gen, test, n=eval_samples, device=device)
    n = classifier.num_classes
    labels = torch.arange(n).repeat(per_class)
    imgs, _ = generate(gen, len(labels), labels=labels, seed=seed)
    cols = [imgs[j * n:(j + 1) * n] for j in range(per_class)]
    w = weights
    fig = inversion_grid(cols, test.classes, title=(
        f"{conditioning}, dropout {dropout}, alpha={w.alpha:g} beta={w.beta:g} gamma={w.gamma:g} "
        f"delta={w.delta:g}\ninversion accuracy {metrics['inversion_accuracy']:.1%}, "
        f"feature cosine {metrics['feature_cosine_inverted']:.2f} "
        f"(real {metrics['feature_cosine_real']:.2f})"))
    return fig, metrics, history


def explorer(classifier, test: ImageData, *, steps: int, defaults: dict, device="cpu"):
    """Sliders for alpha/beta/gamma/delta, the conditioning and the dropout; a button retrains."""
    import ipywidgets as W
    from IPython.display import display

    style = {"description_width": "initial"}
    sliders = {k: W.FloatSlider(value=float(defaults[k]), min=0.0, max=20.0, step=0.5,
                                description=k, style=style) for k in ("alpha", "beta", "gamma", "delta")}
    cond = W.Dropdown(options=CONDITIONINGS, value=defaults["conditioning"], description="conditioning")
    drop = W.FloatSlider(value=float(defaults["dropout"]), min=0.0, max=0.9, step=0.1,
                         description="dropout")
    n_steps = W.IntSlider(value=steps, min=10, max=max(2000, steps), step=10, description="steps")
    button = W.Button(description="retrain generator", button_style="primary")
    out = W.Output()

    def on_click(_):
        with out:
            out.clear_output(wait=True)
            fig, m, _ = invert_once(classifier, test, weights=LossWeights(
                **{k: s.value for k, s in sliders.items()}), conditioning=cond.value,
                dropout=drop.value, steps=n_steps.value, device=device)
            plt.show(fig)
            print({k: round(v, 4) for k, v in m.items() if isinstance(v, float)})

    button.on_click(on_click)
    box = W.VBox([W.HBox(list(sliders.values())[:2]), W.HBox(list(sliders.values())[2:]),
                  W.HBox([cond, drop, n_steps]), button, out])
    display(box)
    return box
