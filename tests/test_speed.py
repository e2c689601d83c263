"""Issue 14: device checks, the speed settings of generator training and the cost model's plan."""
import math

import pytest
import torch

from netinv_core.config import GeneratorConfig
from netinv_core.device import resolve_device
from netinv_core.errors import ConfigError
from netinv_core.generator import Dropout
from netinv_core.inversion import seconds_to_accuracy, steps_to_accuracy, train_generator

SHAPE = (1, 28, 28)


def test_resolve_device():
    assert str(resolve_device("cpu")) == "cpu"
    assert str(resolve_device(None)) in ("cpu", "cuda")
    for bad in ("tpu7", "banana", "cuda:x"):
        with pytest.raises(ConfigError, match="device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no GPU"):
            resolve_device("cuda")


def test_bench_device_errors_are_messages_not_tracebacks(capsys):
    from netinv_core.bench import main
    assert main(["inversion", "--dataset", "digits", "--profile", "smoke", "--device", "tpu7"]) == 2
    assert "unknown device" in capsys.readouterr().err


def test_speed_settings_are_checked():
    with pytest.raises(ConfigError, match="precision"):
        GeneratorConfig(precision="fp8")
    with pytest.raises(ConfigError, match="stop_at_accuracy"):
        GeneratorConfig(stop_at_accuracy=1.5)


def test_dropout_keeps_the_rate_and_the_mean():
    torch.manual_seed(0)
    d = Dropout(0.3).train()
    y = d(torch.ones(200_000))
    assert abs((y == 0).float().mean().item() - 0.3) < 0.01
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.equal(d.eval()(torch.ones(5)), torch.ones(5))
    assert torch.equal(Dropout(1.0).train()(torch.ones(5)), torch.zeros(5))


def test_half_masks_are_fair_independent_bits_in_the_input_layout():
    torch.manual_seed(0)
    x = torch.ones(64, 16, 9, 9).contiguous(memory_format=torch.channels_last)
    y = Dropout(0.5).train()(x)
    assert y.stride() == x.stride()                      # layout kept, no copy back
    assert set(y.unique().tolist()) == {0.0, 2.0}
    zero = (y == 0).float()
    assert abs(zero.mean().item() - 0.5) < 0.01          # 83k bits: sd 0.0017
    flat = zero.flatten()
    # neighbouring bits of one 31-bit word, and across words, are uncorrelated
    for lag in (1, 30, 31, 32):
        r = torch.corrcoef(torch.stack([flat[:-lag], flat[lag:]]))[0, 1].item()
        assert abs(r) < 0.02, (lag, r)
    odd = torch.ones(7, 5)                               # not a multiple of 31 elements
    assert Dropout(0.5).train()(odd).shape == (7, 5)
    # sampling (no autograd) keeps the uniform masks: cached generators sample as before
    torch.manual_seed(1)
    with torch.no_grad():
        sampled = Dropout(0.5).train()(x)
    torch.manual_seed(1)
    assert torch.equal(sampled, x * ((torch.rand_like(x) >= 0.5).float() * 2.0))


def test_latent_conv_transpose_is_the_convolution_as_a_matmul():
    from netinv_core.generator import LatentConvTranspose2d
    torch.manual_seed(0)
    ref = torch.nn.ConvTranspose2d(12, 6, 5)
    fast = LatentConvTranspose2d(12, 6, 5)
    fast.load_state_dict(ref.state_dict())               # same parameters, same state dict
    z = torch.randn(4, 12, 1, 1)
    assert torch.allclose(fast(z), ref(z), atol=1e-6)
    cl = fast.to(memory_format=torch.channels_last)
    out = cl(z)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, ref(z), atol=1e-6)
    big = torch.randn(2, 12, 3, 3)                       # not 1x1: the convolution itself
    assert torch.allclose(fast(big), ref(big), atol=1e-6)


def test_classifier_runs_channels_last_inside_the_context_and_is_restored():
    from netinv_core.classifier import Classifier
    from netinv_core.frozen import inversion_ready
    from netinv_core.inversion import FeatureTap
    torch.manual_seed(0)
    clf = Classifier((1, 28, 28), 10)
    for bn in (m for m in clf.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)              # statistics that folding must honour
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    clf.train()                                          # inversion_ready puts it in eval mode
    tap = FeatureTap(clf)
    before = {k: (v.data_ptr(), v.stride()) for k, v in clf.state_dict().items()}
    x = torch.rand(8, 1, 28, 28)
    clf.eval()
    ref, ref_feats = tap(x)
    clf.train()
    seen = {}

    def look(module, inputs, out):
        seen["cl"] = out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()

    hook = clf.body[2].register_forward_hook(look)          # after conv 1 + its BatchNorm
    with inversion_ready(clf):
        out, feats = tap(x)
        assert not clf.training
        assert all(not p.requires_grad for p in clf.parameters())
        assert all("forward" in vars(clf.body[i]) for i in (1, 5, 10))  # every BN folded
    hook.remove()
    tap.remove()
    assert seen["cl"]                                    # the 1-channel first convolution too
    assert torch.allclose(out, ref, atol=1e-4) and torch.allclose(feats, ref_feats, atol=1e-4)
    assert clf.training                                  # restored: mode, weights, layout, BN
    assert {k: (v.data_ptr(), v.stride()) for k, v in clf.state_dict().items()} == before
    assert all(p.requires_grad for p in clf.parameters())
    assert "forward" not in vars(clf.body[1])


def test_nested_contexts_fold_once_and_restore(digits_classifier):
    """An evaluation inside generator training (``features_of`` within ``fit_generator``) nests
    ``inversion_ready``: BatchNorm must be folded once, not twice."""
    from netinv_core.frozen import inversion_ready
    x = torch.rand(16, *digits_classifier.in_shape)
    with torch.no_grad():
        ref = digits_classifier(x)
        with inversion_ready(digits_classifier):
            with inversion_ready(digits_classifier):
                inner = digits_classifier(x)
            outer = digits_classifier(x)
        after = digits_classifier(x)
    assert torch.allclose(inner, ref, atol=1e-4) and torch.allclose(outer, ref, atol=1e-4)
    assert torch.equal(after, ref)


def test_classifier_trains_channels_last_and_is_handed_out_contiguous(digits):
    """``channels_last_`` for training: the same values, explicit channels-last strides on every
    convolution weight, state dicts that load either way; ``train_classifier`` returns the
    contiguous layout a cached copy loads with, and its optimiser state keeps working."""
    from netinv_core.classifier import Classifier, train_classifier
    from netinv_core.config import ClassifierConfig
    from netinv_core.frozen import channels_last_
    torch.manual_seed(0)
    a = Classifier((1, 8, 8), 10).eval()
    b = Classifier((1, 8, 8), 10).eval()
    b.load_state_dict(a.state_dict())
    channels_last_(b)
    w = b.body[0].weight
    assert w.stride() == (9, 1, 3, 1) and torch.equal(w, a.body[0].weight)
    assert b.body[4].weight.is_contiguous(memory_format=torch.channels_last)
    assert not b.body[4].weight.is_contiguous()
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)
    a.load_state_dict(b.state_dict())                       # either way round
    train, _ = digits
    model, hist = train_classifier(ClassifierConfig(dataset="digits", epochs=2, batch_size=64),
                                   train, progress=False)
    assert all(p.is_contiguous() for p in model.parameters())
    assert hist["train_accuracy"][-1] > hist["train_accuracy"][0]


def test_moving_average_milestones():
    acc = [0.0] * 10 + [1.0] * 30
    assert steps_to_accuracy(acc, 0.95, 20) == 29  # 19 of the last 20 steps at 1.0 = 0.95
    hist = {"batch_accuracy": acc, "wall": [0.5 * (i + 1) for i in range(40)]}
    assert seconds_to_accuracy(hist, 0.95, 20) == pytest.approx(14.5)
    assert seconds_to_accuracy({"batch_accuracy": [0.1] * 40, "wall": [1.0] * 40}) is None


def small_cfg(**kw):
    base = dict(steps=8, batch_size=32, width=32, seed=0)
    base.update(kw)
    return GeneratorConfig(**base)


def test_reading_back_in_chunks_gives_the_same_run(digits_classifier):
    g1, h1 = train_generator(digits_classifier, small_cfg(), SHAPE, progress=False, sync_every=1)
    g2, h2 = train_generator(digits_classifier, small_cfg(), SHAPE, progress=False, sync_every=3)
    assert h1["loss"] == h2["loss"] and h1["batch_accuracy"] == h2["batch_accuracy"]
    assert len(h2["wall"]) == 8 and h2["wall"] == sorted(h2["wall"])
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))


def test_early_stop_at_a_target_accuracy(digits_classifier, tmp_path):
    cfg = small_cfg(steps=40, stop_at_accuracy=0.01, lr=2e-3)
    _, hist = train_generator(digits_classifier, cfg, SHAPE, progress=False)
    assert len(hist["loss"]) == 20  # the first step where a 20-step mean exists
    # a rerun from the checkpoint written at the stop does not train further
    ckpt = tmp_path / "g.partial.pt"
    train_generator(digits_classifier, cfg, SHAPE, progress=False, checkpoint=ckpt)
    _, again = train_generator(digits_classifier, cfg, SHAPE, progress=False, checkpoint=ckpt)
    assert len(again["loss"]) == 20


def test_bf16_training_runs_and_lowers_the_loss(digits_classifier):
    _, hist = train_generator(digits_classifier, small_cfg(steps=30, precision="bf16", lr=2e-3),
                              SHAPE, progress=False)
    assert all(math.isfinite(v) for v in hist["loss"])
    assert sum(hist["loss"][-5:]) < sum(hist["loss"][:5])


def test_cost_plan_covers_every_notebook():
    from netinv_core.cost import plan
    from netinv_core.notebooks import NOTEBOOKS
    p = plan("smoke")
    names = {n.split("/")[-1].removesuffix(".ipynb") for n in NOTEBOOKS}
    assert set(p) == names
    for nb, (stages, skipped) in p.items():
        assert stages and all(c > 0 for _, _, c in stages), nb


def test_speed_settings_key_the_cache_only_when_set():
    from netinv_core.config import to_dict
    d = to_dict(GeneratorConfig())
    assert "precision" not in d and "stop_at_accuracy" not in d   # old keys unchanged
    assert GeneratorConfig(**{k: v for k, v in d.items() if k != "weights"}) == GeneratorConfig()
    d = to_dict(GeneratorConfig(precision="bf16", stop_at_accuracy=0.95))
    assert d["precision"] == "bf16" and d["stop_at_accuracy"] == 0.95


def test_cost_predict_adds_up_the_plan():
    from netinv_core.cost import plan, predict
    units = {u: (1.0, None if "/" not in u else 2.0) for st, _ in plan("smoke").values()
             for _, u, _ in st}
    units["sizes"] = {"embed": 1500, "samples": 2000, "pool": 1257, "test": 540,
                      "reconstructions": 100}
    out = predict("smoke", "cpu", dict(units))
    assert out["predicted_total_seconds"] == round(sum(out["notebooks"][nb]["seconds"]
                                                       for nb in out["notebooks"]))
    assert out["gpu_extrapolation"]["total_seconds"] > 0


def test_cost_units_cover_every_stage_of_the_plan(monkeypatch):
    """Every unit a quick-profile stage names is one the unit functions measure (the probes'
    SmallNet step, Figure 3's calibrated clusters and t-SNE maps were missing from the plan once:
    the cold run took 1555 s and 985 s for Figures 2 and 3 against 1281 s and 471 s predicted).
    The measurements themselves are stubbed: this checks names, not seconds."""
    import pytest

    from netinv_core import cost_units, interpret, ood, probes, recon_metrics
    from netinv_core.cost import available, plan
    if not available("mnist"):
        pytest.skip("needs MNIST in NETINV_DATA (Figure 5's judge unit reads its real pools)")
    monkeypatch.setattr(cost_units, "_time", lambda fn, *a, **k: (fn(), 0.0)[1])
    monkeypatch.setattr(cost_units, "_flops", lambda fn: 0.0)
    for mod, names in ((interpret, ("embed_tsne", "embed_umap", "calibrated_clusters",
                                    "clusters_per_class", "mixed_cluster_share", "train_sae")),
                       (probes, ("nearest_distance",)), (recon_metrics, ("image_metrics",)),
                       (ood, ("Mahalanobis",))):
        for name in names:
            monkeypatch.setattr(mod, name, lambda *a, **k: (lambda *a, **k: None))
    units = {**cost_units.training_units("quick", repeats=1), **cost_units.analysis_units("quick")}
    named = {u for stages, _ in plan("quick").values() for _, u, _ in stages}
    assert {"smallnet_step/1x28x28", "calibrated", "calibrated_pooled", "tsne_pooled/30",
            "tsne_pooled/50", "tsne_both", "nearest_500", "ood_inversion_step/1x28x28",
            "verifier_step/1x28x28", "judge_metrics/10000"} <= named
    assert named - set(units) == set()


def test_lr_warmup_is_opt_in_linear_and_resumes():
    """The warm-up lever: off by default and absent from the cache key at 0; Adam step k uses
    lr * min(1, k / warmup), counted from Adam's own state (so a resumed run continues it);
    a negative count is refused."""
    import pytest
    import torch

    from netinv_core.cache import config_key
    from netinv_core.config import GeneratorConfig, to_dict
    from netinv_core.errors import ConfigError
    from netinv_core.inversion import warm_lr

    base = GeneratorConfig()
    assert base.lr_warmup_steps == 0 and "lr_warmup_steps" not in to_dict(base)
    assert config_key("generator", to_dict(base)) != config_key(
        "generator", to_dict(GeneratorConfig(lr_warmup_steps=50)))
    with pytest.raises(ConfigError, match="lr_warmup_steps"):
        GeneratorConfig(lr_warmup_steps=-1)
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([w], lr=1.0)
    seen = []
    for _ in range(6):
        warm_lr(opt, 0.01, 4)
        seen.append(opt.param_groups[0]["lr"])
        w.grad = torch.ones(3)
        opt.step()
    assert seen == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])


def test_gradient_norm_term_sees_the_same_network_in_the_reconstruction_context():
    """L_Grad differentiates the classifier's own parameters with functional_call: folding
    BatchNorm would silently turn it into conv -> (no BN); reconstruction runs with fold=False."""
    from netinv_core.classifier import Classifier
    from netinv_core.frozen import inversion_ready
    from netinv_core.losses import PerSampleGradNorm
    torch.manual_seed(0)
    clf = Classifier((1, 28, 28), 10).eval()
    for bn in (m for m in clf.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    gn = PerSampleGradNorm(clf)
    x, y = torch.rand(4, 1, 28, 28), torch.arange(4)
    ref = gn(x, y)
    with inversion_ready(clf, fold=False):
        assert torch.allclose(gn(x, y), ref, rtol=1e-4)
    with inversion_ready(clf):                         # what fold=False prevents
        assert not torch.allclose(gn(x, y), ref, rtol=1e-2)


def test_profile_speed_settings_reach_the_inversion_generators_not_the_ood_rounds():
    from dataclasses import replace
    from netinv_core.config import PROFILES, to_dict
    from netinv_core.ood_experiment import ood_config
    plain = replace(PROFILES["quick"], generator_speed=())
    fast = replace(plain, generator_speed=(("precision", "bf16"), ("lr", 2e-3),
                                           ("stop_at_accuracy", 0.97)))
    assert PROFILES["quick"] == fast        # the quick profile's settings since 2026-12-01
    g = fast.generator_config(seed=2)
    assert (g.precision, g.lr, g.stop_at_accuracy, g.seed) == ("bf16", 2e-3, 0.97, 2)
    assert to_dict(plain.generator_config(seed=2)) == to_dict(
        replace(g, precision="fp32", lr=1e-3, stop_at_accuracy=None))
    # the Section 5.2 rounds keep their fixed-step fp32 training, and so their cache keys
    assert to_dict(ood_config("mnist", fast, 1)) == to_dict(ood_config("mnist", plain, 1))


def test_cost_plan_counts_the_expected_steps_of_an_early_stop(monkeypatch):
    from dataclasses import replace
    from netinv_core import cost_plan as cost
    from netinv_core.config import PROFILES
    fast = replace(PROFILES["smoke"], generator_speed=(("stop_at_accuracy", 0.97),))
    monkeypatch.setitem(PROFILES, "smoke_stop", replace(fast, name="smoke_stop"))
    monkeypatch.setattr(cost, "STOP_SHARE", {("digits", "default"): 0.5, ("digits", "ablation"): 0.8})

    def steps(profile, nb, unit="inversion_step/1x28x28"):
        return sum(c for _, u, c in cost.plan(profile)[nb][0] if u == unit)
    full = PROFILES["smoke"].generator_steps
    assert steps("smoke", "fig2_inversion") > 0 and steps("smoke", "ablation") > 0
    assert steps("smoke_stop", "fig2_inversion") * 2 == steps("smoke", "fig2_inversion")
    assert steps("smoke_stop", "ablation") == round(0.8 * full) * steps("smoke", "ablation") // full
    monkeypatch.setattr(cost, "STOP_SHARE", {})         # nothing measured: the whole budget
    assert steps("smoke_stop", "ablation") == steps("smoke", "ablation")


def test_features_of_a_convolution_are_its_own_not_the_folded_batchnorm(digits_classifier):
    """``features_of`` folds BatchNorm for speed; a tapped convolution must still give its own
    output, not conv + BatchNorm (the tap is placed before the fold, which skips hooked layers)."""
    from netinv_core.interpret import features_of
    x = torch.rand(8, *digits_classifier.in_shape)
    seen = {}
    hook = digits_classifier.body[0].register_forward_hook(lambda m, i, o: seen.update(ref=o))
    with torch.no_grad():
        digits_classifier.eval()(x)
    hook.remove()
    _, feats = features_of(digits_classifier, x, feature_layer="body.0")
    assert torch.allclose(torch.from_numpy(feats), seen["ref"].flatten(1), atol=1e-4)


def test_early_stop_waits_a_tenth_of_the_budget(digits_classifier):
    from netinv_core.inversion import stop_min_steps
    assert [stop_min_steps(s) for s in (30, 500, 5000)] == [20, 50, 500]
    _, hist = train_generator(digits_classifier, small_cfg(steps=300, stop_at_accuracy=0.01),
                              SHAPE, progress=False)
    assert len(hist["loss"]) == 30
