"""netinv: Network Inversion and Its Applications (Suhail, Tang, Sethi), the reference package.

Modules, one concept each:
``config`` loss weights, model/training settings, profiles; ``data`` datasets; ``classifier`` the
paper's classifier; ``generator`` the conditioned generator (Section 3.2); ``losses`` the inversion
losses (Section 3.3); ``inversion`` feature taps and generator training; ``metrics`` accuracy and
diversity; ``cache`` checkpoints; ``pipeline`` cached classifier/generator for a profile;
``interpret`` / ``figure3`` Section 5.1; ``ood`` Section 5.2's method (garbage-class training,
scores, OOD metrics) and ``ood_experiment`` its driver (datasets, baselines, tables);
``reconstruct`` Section 5.3's method (L_Recon, SSIM matching; its extra loss terms in ``losses``,
its weights in ``config``) and ``figure5`` its driver (held-out control, tables); ``ablation``
the design-claim sweeps; ``plotting`` figures; ``bench`` command-line benchmarks.
"""
__version__ = "0.1.0"

from .config import (CONDITIONINGS, DATASETS, ClassifierConfig, GeneratorConfig,  # noqa: E402,F401
                     LossWeights, get_profile)
from .errors import (CheckpointError, ConfigError, DataUnavailableError, NetinvError,  # noqa: E402,F401
                     ShapeError, TrainingDivergedError)
