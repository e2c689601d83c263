"""t-SNE at the paper's size (issue 14): scikit-learn's Barnes-Hut vs openTSNE's FFT gradients.

Both on the same 10000 x 128 clustered features (10 Gaussian classes), in one process, on the
same threads; prints seconds and the k-means ARI of each embedding as JSON lines. ``embed_tsne``
switches to openTSNE from ``TSNE_FFT_FROM`` points on.

    OMP_NUM_THREADS=2 python scripts/tsne_speed.py [--n 10000]
"""
import argparse
import json
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score

from netinv_core.interpret import embed_tsne

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=10000)
a = ap.parse_args()
rng = np.random.default_rng(0)
y = np.arange(a.n) % 10
x = (2 * rng.normal(size=(10, 128))[y] + 1.5 * rng.normal(size=(a.n, 128))).astype(np.float32)
runs = {"sklearn_barnes_hut": lambda: TSNE(n_components=2, perplexity=30, init="pca",
                                           random_state=0).fit_transform(x),
        "embed_tsne": lambda: embed_tsne(x, seed=0)}
for name in ("embed_tsne", "sklearn_barnes_hut", "embed_tsne"):
    t0 = time.perf_counter()
    e = runs[name]()
    ari = adjusted_rand_score(y, KMeans(10, n_init=4, random_state=0).fit_predict(e))
    print(json.dumps({"method": name, "n": a.n, "seconds": round(time.perf_counter() - t0, 1),
                      "ari": round(float(ari), 3)}), flush=True)
