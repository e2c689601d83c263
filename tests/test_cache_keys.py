"""Checkpoint keys are pinned: the same config must give the same cache file name, or every cached
model (and the checkpoint names recorded in figures/*.json) silently goes stale.

The expected names were computed with the code of commit 1ec69ae (before the issue-15 refactor);
a deliberate change of a key bumps ``cache.SCHEMA`` and updates this table and the figures.
Deliberate change, 2026-11-30: the reconstruction default lost the dropout of the generator's last
hidden block (``ReconConfig.dropout_last = 0``), so the three ``recon`` names moved; the old ones
stay reachable with ``dropout_last=None`` (the attempt ``last_dropout``, ``LEGACY_RECON``).
Deliberate change, 2026-12-01 (issue 12): the Section 5.2 default became the attempt
``diverse_garbage``, so the ``ood`` names moved to that attempt's (its cached models are the
table's); the first table's names stay reachable with ``capped_config`` (``LEGACY_OOD``).
Deliberate change, 2026-12-01 (issue 14): the quick profile trains its inversion generators with
bf16, lr 2e-3 and an early stop at 0.97 (``Profile.generator_speed``), so the quick ``generator``
names moved; fp32, lr 1e-3 and no stop give the old ones (``LEGACY_QUICK_GENERATOR``).
"""
import json
from pathlib import Path


from netinv_core.cache import checkpoint_path
from netinv_core.config import classifier_config, get_profile, to_dict
from netinv_core import figure5
from netinv_core.figure5 import recon_config, subset_classifier_config
from netinv_core.ood import _key_dict
from netinv_core.ood_experiment import capped_config, ood_config
from netinv_core.reconstruct import _training_dict

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {
    'paper/classifier-subset/mnist': 'classifier-mnist-657ecebf0bca5bd4.pt',
    'paper/classifier/cifar10': 'classifier-cifar10-bc3f565e89ca34e2.pt',
    'paper/classifier/fashionmnist': 'classifier-fashionmnist-a8830973ce0d8afe.pt',
    'paper/classifier/mnist': 'classifier-mnist-567f82449328d27e.pt',
    'paper/classifier/svhn': 'classifier-svhn-5fca1cbc7f526287.pt',
    'paper/generator/cifar10': 'generator-cifar10-8771eae5da133699.pt',
    'paper/generator/fashionmnist': 'generator-fashionmnist-8faae13724ba81de.pt',
    'paper/generator/mnist': 'generator-mnist-3d84ad15143d936d.pt',
    'paper/generator/svhn': 'generator-svhn-31417b7875ff4f62.pt',
    'paper/ood/cifar10': 'ood-cifar10-a4620ec2e2e4456a.pt',
    'paper/ood/fashionmnist': 'ood-fashionmnist-5a41dd26d18ae4fe.pt',
    'paper/ood/mnist': 'ood-mnist-c79e35c98838c54f.pt',
    'paper/ood/svhn': 'ood-svhn-d5b38594247d0c2c.pt',
    'paper/recon/mnist': 'recon-mnist-2e5c45970640e4d0.pt',
    'quick/classifier-subset/mnist': 'classifier-mnist-7e6d8b5980ef4226.pt',
    'quick/classifier/cifar10': 'classifier-cifar10-de3eccbe09d2b274.pt',
    'quick/classifier/fashionmnist': 'classifier-fashionmnist-05a3d31c31a32f38.pt',
    'quick/classifier/mnist': 'classifier-mnist-435e1bb5dc748aab.pt',
    'quick/classifier/svhn': 'classifier-svhn-4ff6ca9eb01936d1.pt',
    'quick/generator/cifar10': 'generator-cifar10-134a06a7362fadff.pt',
    'quick/generator/fashionmnist': 'generator-fashionmnist-c318d15df5eb733e.pt',
    'quick/generator/mnist': 'generator-mnist-391b4014100ac78b.pt',
    'quick/generator/svhn': 'generator-svhn-eb62200cc6c14e51.pt',
    'quick/ood/cifar10': 'ood-cifar10-0464cf43d8f3ab72.pt',
    'quick/ood/fashionmnist': 'ood-fashionmnist-49e55d4b7a23c744.pt',
    'quick/ood/mnist': 'ood-mnist-4a73504ed98c5521.pt',
    'quick/ood/svhn': 'ood-svhn-17df8d4d8d36ebc2.pt',
    'quick/recon/mnist': 'recon-mnist-1b2474080c88600d.pt',
    'smoke/classifier-subset/digits': 'classifier-digits-b31d24870ef758e2.pt',
    'smoke/classifier/digits': 'classifier-digits-aee028754f55231c.pt',
    'smoke/generator/digits': 'generator-digits-9d913a9c12364953.pt',
    'smoke/ood/digits': 'ood-digits-44741c3a6bdf8cf4.pt',
    'smoke/recon/digits': 'recon-digits-48067c11a07f6f54.pt',
}

# the recon names before 2026-11-30, now the attempt ``last_dropout`` (dropout_last=None)
LEGACY_RECON = {'paper/recon/mnist': 'recon-mnist-64ea31cff37a3733.pt',
                'quick/recon/mnist': 'recon-mnist-84cbdf700344f09e.pt',
                'smoke/recon/digits': 'recon-digits-c3b4e6412c89da7d.pt'}

# the OOD names before 2026-12-01: the first table's configuration, now the attempt ``capped``
# (``ood_experiment.capped_config``)
LEGACY_OOD = {'paper/ood/cifar10': 'ood-cifar10-6049e11fd39d160b.pt',
              'paper/ood/fashionmnist': 'ood-fashionmnist-905cf62ae7cfcff9.pt',
              'paper/ood/mnist': 'ood-mnist-22ad3a521ff3b7cf.pt',
              'paper/ood/svhn': 'ood-svhn-a6822e5694c3e980.pt',
              'quick/ood/cifar10': 'ood-cifar10-fb7405bc2fa9e097.pt',
              'quick/ood/fashionmnist': 'ood-fashionmnist-033e781138685e40.pt',
              'quick/ood/mnist': 'ood-mnist-ea5412df7f71eb1c.pt',
              'quick/ood/svhn': 'ood-svhn-270ac38fb5e91ddf.pt',
              'smoke/ood/digits': 'ood-digits-1268877d1cca8b6a.pt'}

# the quick generator names before 2026-12-01: fp32, lr 1e-3, the whole budget
LEGACY_QUICK_GENERATOR = {'quick/generator/cifar10': 'generator-cifar10-787fbd1dad1e3ac3.pt',
                          'quick/generator/fashionmnist': 'generator-fashionmnist-5aeea82d9d8b2a5a.pt',
                          'quick/generator/mnist': 'generator-mnist-e18241e791b67644.pt',
                          'quick/generator/svhn': 'generator-svhn-34f43be0fc525b41.pt'}


def current_names(ood=ood_config, generator=None, **recon_overrides) -> dict:
    out = {}
    for prof in ("quick", "paper", "smoke"):
        p = get_profile(prof)
        for ds in (("digits",) if prof == "smoke" else ("mnist", "fashionmnist", "cifar10", "svhn")):
            c = classifier_config(ds, prof)
            out[f"{prof}/classifier/{ds}"] = checkpoint_path("classifier", to_dict(c), ds).name
            g = p.generator_config(seed=0, **(generator or {}))
            conf = {"classifier": to_dict(c), "generator": to_dict(g),
                    "eval_samples": p.eval_samples}
            out[f"{prof}/generator/{ds}"] = checkpoint_path("generator", conf, ds).name
            o = ood(ds, prof, 1)
            out[f"{prof}/ood/{ds}"] = checkpoint_path("ood", {"ood": _key_dict(o)}, ds).name
        ds, n = ("digits", 300) if prof == "smoke" else ("mnist", 1000)
        c = subset_classifier_config(ds, n, prof)
        out[f"{prof}/classifier-subset/{ds}"] = checkpoint_path("classifier", to_dict(c), ds).name
        r = recon_config(prof, 1, **recon_overrides)
        out[f"{prof}/recon/{ds}"] = checkpoint_path(
            "recon", {"classifier": to_dict(c), "recon": _training_dict(r)}, ds).name
    return out


def test_checkpoint_names_are_pinned(monkeypatch):
    # subset_classifier_config only needs the training split's size; no data files are read
    sizes = {"mnist": 60000, "digits": 1257}
    monkeypatch.setattr(figure5, "load_dataset", lambda name, split: range(sizes[name]))
    assert current_names() == EXPECTED
    legacy = current_names(dropout_last=None)
    assert {k: v for k, v in legacy.items() if "/recon/" in k} == LEGACY_RECON
    capped = current_names(ood=capped_config)
    assert {k: v for k, v in capped.items() if "/ood/" in k} == LEGACY_OOD
    fp32 = current_names(generator=dict(precision="fp32", lr=1e-3, stop_at_accuracy=None))
    assert {k: v for k, v in fp32.items() if k.startswith("quick/generator/")} == LEGACY_QUICK_GENERATOR


def test_committed_figures_name_current_classifier_keys():
    """The classifiers named in figures/fig2_inversion.json are what the quick profile makes now."""
    rec = json.loads((REPO / "figures" / "fig2_inversion.json").read_text())
    assert rec["profile"] == "quick"
    for ds, r in rec["datasets"].items():
        if "classifier" in r:
            name = checkpoint_path("classifier", to_dict(classifier_config(ds, "quick")), ds).name
            assert r["classifier"]["checkpoint"] == name, ds
