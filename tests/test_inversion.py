"""Generator training: frozen classifier, loss goes down, determinism, resume after interruption."""
import pytest
import torch
import torch.nn as nn

from netinv_core.config import GeneratorConfig, LossWeights
from netinv_core.errors import CheckpointError, ShapeError
from netinv_core.inversion import train_generator

from conftest import params_of

SHAPE = (1, 28, 28)


def small_cfg(**kw):
    base = dict(steps=6, batch_size=32, width=32, seed=0)
    base.update(kw)
    return GeneratorConfig(**base)


def test_classifier_stays_frozen(digits_classifier):
    before = params_of(digits_classifier)
    flags = [p.requires_grad for p in digits_classifier.parameters()]
    train_generator(digits_classifier, small_cfg(steps=3), SHAPE, progress=False)
    after = params_of(digits_classifier)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert [p.requires_grad for p in digits_classifier.parameters()] == flags
    assert not digits_classifier.training


@pytest.mark.parametrize("scheme", ["label", "vector", "matrix", "vector_matrix"])
def test_a_few_steps_lower_the_loss(digits_classifier, scheme):
    _, hist = train_generator(digits_classifier, small_cfg(steps=30, conditioning=scheme, lr=2e-3),
                              SHAPE, progress=False)
    first, last = sum(hist["loss"][:5]) / 5, sum(hist["loss"][-5:]) / 5
    assert last < first, (first, last)


def test_same_seed_same_generator(digits_classifier):
    g1, h1 = train_generator(digits_classifier, small_cfg(), SHAPE, progress=False)
    g2, h2 = train_generator(digits_classifier, small_cfg(), SHAPE, progress=False)
    assert h1["loss"] == h2["loss"]
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))
    g3, h3 = train_generator(digits_classifier, small_cfg(seed=1), SHAPE, progress=False)
    assert h3["loss"] != h1["loss"]


def test_interrupted_run_resumes_from_its_checkpoint(digits_classifier, tmp_path):
    ref, ref_hist = train_generator(digits_classifier, small_cfg(), SHAPE, progress=False)
    ckpt = tmp_path / "gen.partial.pt"
    seen = []

    def interrupt(rec):
        seen.append(rec["step"])
        if rec["step"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_generator(digits_classifier, small_cfg(), SHAPE, progress=False, checkpoint=ckpt,
                        checkpoint_every=3, callback=interrupt)
    resumed_steps = []
    gen, hist = train_generator(digits_classifier, small_cfg(), SHAPE, progress=False,
                                checkpoint=ckpt, checkpoint_every=3,
                                callback=lambda r: resumed_steps.append(r["step"]))
    assert resumed_steps == [4, 5, 6]  # steps 1-3 came from the checkpoint
    assert hist["loss"] == ref_hist["loss"]
    assert all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(), ref.state_dict().values()))
    # the same file with another config is refused, not silently reused
    with pytest.raises(CheckpointError, match="another config"):
        train_generator(digits_classifier, small_cfg(weights=LossWeights(gamma=0.0)), SHAPE,
                        progress=False, checkpoint=ckpt)


def test_wrong_image_shape_for_the_classifier(digits_classifier):
    with pytest.raises(ShapeError, match="shape"):
        train_generator(digits_classifier, small_cfg(), (3, 32, 32), progress=False)


def test_custom_classifier_with_named_feature_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.LeakyReLU(0.2),
                          nn.Linear(64, 5)).eval()
    gen, hist = train_generator(model, small_cfg(steps=3), (3, 32, 32), feature_layer="2",
                                progress=False)
    assert gen.num_classes == 5 and len(hist["loss"]) == 3
