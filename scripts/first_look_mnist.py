"""First look (issue 13) on MNIST, quick profile, with the ONE cached Figure-2 generator (seed 0):
calibrated clusters for that generator and for real test images, real-vs-inverted mixing, and the
Figure 2 probes. Prints JSON lines; writes only the independent classifier to the cache. The notebooks record the full versions (every
generator, both datasets) in clusters_fair / pixel_diversity / independent / student.

    NETINV_DATA=../shared/data python scripts/first_look_mnist.py
"""
import json, time
import numpy as np
import torch
torch.set_num_threads(1)
from netinv_core.config import get_profile
from netinv_core.pipeline import profile_generators
from netinv_core.generator import generate
from netinv_core.data import load_dataset
from netinv_core.interpret import calibrated_clusters, features_of, mixed_cluster_share
from netinv_core.probes import (independent_classifier, nearest_distance, pixel_class_distances,
                                predict, student_accuracy, SMALLNET)
t0 = time.time()
def log(k, v):
    print(json.dumps({k: v, "t": round(time.time() - t0)}), flush=True)
prof = get_profile("quick")
clf, (gen,) = profile_generators("mnist", prof, seeds=[0], train_missing=False, progress=False)
log("generator", gen.metrics)
test, train = load_dataset("mnist", "test"), load_dataset("mnist", "train")
im, lb = generate(gen.model, 2000, seed=0, keep_dropout=True)
pr, ft = features_of(clf.model, im)
g = torch.Generator().manual_seed(0)
idx = torch.cat([torch.nonzero(test.y == c).flatten()[torch.randperm(int((test.y == c).sum()), generator=g)[:200]] for c in range(10)])
rx, ry = test.images(idx), test.y[idx]
_, rf = features_of(clf.model, rx)
for name, f, y in (("single_generator", ft, lb.numpy()), ("real_test", rf, ry.numpy())):
    cc = calibrated_clusters(f, y, n_null=10)
    cc.pop("per_class")
    log(name, cc)
log("real_vs_inverted", mixed_cluster_share(np.concatenate([rf, ft]), np.r_[np.zeros(len(rf)), np.ones(len(ft))], k=20))
# pre-activation features of the same (post-activation-trained) generator
_, ft0 = features_of(clf.model, im, feature_layer="penultimate.0")
_, rf0 = features_of(clf.model, rx, feature_layer="penultimate.0")
cc = calibrated_clusters(ft0, lb.numpy(), n_null=10); cc.pop("per_class"); log("single_generator_preact_features", cc)
# probes
x, y = generate(gen.model, 1000, seed=11, keep_dropout=True)
rx1, ry1 = rx[::2], ry[::2]
log("pixels", {"real": pixel_class_distances(rx1, ry1), "generator0": pixel_class_distances(x, y)})
ind, acc = independent_classifier("mnist", train, test, epochs=2)
p = predict(ind, x)
log("independent", {"arch": SMALLNET, "test_accuracy": acc, "agreement": float((p.argmax(1) == y).float().mean()),
                    "confidence": float(p.max(1).values.mean()),
                    "teacher_conf_real": float(predict(clf.model, test.images()).max(1).values.mean())})
pool = train.images()
log("nearest", {"inverted": nearest_distance(x[::2], pool), "real_test": nearest_distance(rx[::4], pool)})
xs, _ = generate(gen.model, 20000, seed=12, keep_dropout=True)
log("student_inverted", student_accuracy(clf.model, xs, test, epochs=3, seed=11))
log("student_noise", student_accuracy(clf.model, torch.rand((20000, 1, 28, 28), generator=g), test, epochs=3, seed=11))
log("student_real", student_accuracy(clf.model, train.images(torch.randperm(len(train), generator=g)[:20000]), test, epochs=3, seed=11))
log("done", True)
