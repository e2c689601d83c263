"""The Section 3.3 losses on hand-computed cases."""
import math

import pytest
import torch
import torch.nn.functional as F

from netinv_core.config import LossWeights
from netinv_core.errors import ConfigError
from netinv_core.losses import ce_loss, cosine_loss, inversion_loss, kl_loss, ortho_loss


def test_kl_hand_computed():
    # P = (0.5, 0.5), Q = (0.25, 0.75): 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75)
    logits = torch.log(torch.tensor([[0.25, 0.75]]))
    p = torch.tensor([[0.5, 0.5]])
    assert kl_loss(logits, p).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-6)


def test_kl_one_hot_is_minus_log_q_and_zero_when_equal():
    logits = torch.log(torch.tensor([[0.25, 0.75], [0.5, 0.5]]))
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    # row 1: -ln 0.25; row 2: 0; batch mean
    assert kl_loss(logits, p).item() == pytest.approx(math.log(4) / 2, abs=1e-6)


def test_kl_takes_logits_once_no_double_softmax():
    torch.manual_seed(0)
    logits = torch.randn(8, 5) * 3
    p = torch.softmax(torch.randn(8, 5), 1)
    ref = F.kl_div(F.log_softmax(logits, 1), p, reduction="batchmean")
    assert kl_loss(logits, p).item() == pytest.approx(ref.item(), rel=1e-5)
    # the shift invariance of logits holds only if softmax is applied exactly once
    assert kl_loss(logits + 7.0, p).item() == pytest.approx(ref.item(), rel=1e-5)


def test_ce_hand_computed():
    logits = torch.log(torch.tensor([[1.0, 3.0]]))
    assert ce_loss(logits, torch.tensor([1])).item() == pytest.approx(-math.log(0.75), abs=1e-6)


def test_cosine_hand_computed_and_scale_free():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = (0 + 2 / math.sqrt(2)) * 2 / 6  # ordered pairs i != j
    assert cosine_loss(f).item() == pytest.approx(expected, abs=1e-6)
    assert cosine_loss(f * torch.tensor([[100.0], [0.01], [3.0]])).item() == pytest.approx(expected, abs=1e-6)
    assert cosine_loss(torch.tensor([[1.0, 0.0], [2.0, 0.0]])).item() == pytest.approx(1.0)
    assert cosine_loss(torch.eye(4)).item() == pytest.approx(0.0)


def test_ortho_hand_computed_and_scale_free():
    assert ortho_loss(torch.eye(3)).item() == pytest.approx(0.0)
    # G = [[1,1],[1,1]] -> (0 + 1 + 1 + 0) / 4
    assert ortho_loss(torch.tensor([[1.0, 0.0], [5.0, 0.0]])).item() == pytest.approx(0.5)
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # off-diagonal cos^2: 0, 1/2, 1/2 (each twice) over 9 entries
    assert ortho_loss(f).item() == pytest.approx(2 / 9, abs=1e-6)
    assert ortho_loss(f * 1000).item() == pytest.approx(2 / 9, abs=1e-6)


def test_inversion_loss_is_the_weighted_sum():
    torch.manual_seed(1)
    logits, feats = torch.randn(6, 4), torch.randn(6, 16)
    p = torch.softmax(torch.randn(6, 4), 1)
    labels = p.argmax(1)
    w = LossWeights(alpha=2.0, beta=3.0, gamma=0.5, delta=7.0)
    total, t = inversion_loss(logits, feats, p, labels, w)
    assert set(t) == {"kl", "ce", "cosine", "ortho"}
    assert total.item() == pytest.approx(2 * t["kl"].item() + 3 * t["ce"].item()
                                         + 0.5 * t["cosine"].item() + 7 * t["ortho"].item(), rel=1e-6)
    only_ce, _ = inversion_loss(logits, feats, p, labels, LossWeights(0, 1, 0, 0))
    assert only_ce.item() == pytest.approx(t["ce"].item(), rel=1e-6)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1.0", None, True])
def test_bad_weights_are_rejected_with_advice(bad):
    with pytest.raises(ConfigError, match="gamma"):
        LossWeights(gamma=bad)
