"""Shapes of the classifier and the generator for every conditioning scheme and image shape."""
import pytest
import torch
import torch.nn as nn

from netinv_core.classifier import Classifier
from netinv_core.config import CONDITIONINGS, GeneratorConfig
from netinv_core.errors import ConfigError, ShapeError
from netinv_core.generator import Generator, hot_matrix, sample_conditioning
from netinv_core.inversion import FeatureTap, check_classifier_input

SHAPES = [(1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scheme", CONDITIONINGS)
@pytest.mark.parametrize("n", [3, 10, 12])
def test_generator_shapes(shape, scheme, n):
    torch.manual_seed(0)
    gen = Generator(n, shape, GeneratorConfig(conditioning=scheme, width=16))
    cond = sample_conditioning(scheme, 5, n)
    x = gen(torch.randn(5, gen.latent_dim), cond)
    assert x.shape == (5, *shape)
    assert 0 <= x.min() and x.max() <= 1
    assert cond.p.shape == (5, n) and torch.equal(cond.p.argmax(1), cond.labels)
    assert (cond.matrix is not None) == (scheme in ("matrix", "vector_matrix"))


@pytest.mark.parametrize("scheme", CONDITIONINGS)
def test_conditioning_encodes_the_label(scheme):
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 3, 6, 6, 2])
    c = sample_conditioning(scheme, 5, 7, labels=labels, generator=g)
    assert torch.equal(c.labels, labels) and torch.equal(c.p.argmax(1), labels)
    assert torch.allclose(c.p.sum(1), torch.ones(5))
    if scheme in ("vector", "vector_matrix"):
        assert (c.p < 1).all()  # soft-maxed Gaussian vectors, not one-hot
    else:
        assert torch.equal(c.p, torch.nn.functional.one_hot(labels, 7).float())


def test_hot_matrix_row_and_column():
    m = hot_matrix(torch.tensor([2]), 5)[0, 0]
    assert m.shape == (5, 5)
    assert m[2].sum() == 5 and m[:, 2].sum() == 5 and m.sum() == 9


@pytest.mark.parametrize("shape", SHAPES)
def test_classifier_shapes_and_features(shape):
    m = Classifier(shape, 10).eval()
    logits, feats = m.forward_features(torch.rand(4, *shape))
    assert logits.shape == (4, 10) and feats.shape == (4, 128)


def test_classifier_rejects_wrong_image_shape():
    m = Classifier((1, 28, 28), 10)
    with pytest.raises(ShapeError, match=r"\(B, 1, 28, 28\)"):
        m(torch.rand(2, 3, 32, 32))
    with pytest.raises(ShapeError):
        check_classifier_input(m, (3, 32, 32))


def test_generator_rejects_bad_shape_and_scheme():
    with pytest.raises(ShapeError, match="multiples of 4"):
        Generator(10, (1, 30, 30))
    with pytest.raises(ConfigError, match="vector_matrix"):
        GeneratorConfig(conditioning="hot")


def test_feature_tap_on_a_custom_classifier():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 4))
    logits, feats = FeatureTap(model, "2")(torch.rand(3, 1, 28, 28))
    assert logits.shape == (3, 4) and feats.shape == (3, 32)
    with pytest.raises(ConfigError, match="not found.*'1'"):
        FeatureTap(model, "penultimate")
