"""netinv: Network Inversion and Its Applications (Suhail, Tang, Sethi), the reference package.

Modules, one concept each:
``config`` loss weights, model/training settings, profiles; ``data`` datasets; ``classifier`` the
paper's classifier; ``generator`` the conditioned generator (Section 3.2); ``losses`` the inversion
losses (Section 3.3); ``inversion`` feature taps and generator training; ``metrics`` accuracy and
diversity; ``cache`` checkpoints; ``pipeline`` cached classifier/generator for a profile;
``interpret`` / ``figure3`` Section 5.1; ``ood`` Section 5.2 (garbage class, baselines, OOD
metrics); ``reconstruct`` Section 5.3 (L_Recon, SSIM against a held-out control); ``ablation``
the design-claim sweeps; ``plotting`` figures; ``bench`` command-line benchmarks.
"""
__version__ = "0.1.0"

from .config import (CONDITIONINGS, DATASETS, ClassifierConfig, GeneratorConfig,  # noqa: E402,F401
                     LossWeights, get_profile)
from .errors import (CheckpointError, ConfigError, DataUnavailableError, NetinvError,  # noqa: E402,F401
                     ShapeError)
