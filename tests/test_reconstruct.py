"""Section 5.3: the reconstruction loss terms by hand, per-sample gradient norms against a loop,
SSIM / NCC matching, the held-out control, bad inputs, and a resumable short run."""
import pytest
import torch
import torch.nn.functional as F

from netinv_core.errors import ConfigError
from netinv_core.config import ReconConfig, ReconWeights
from netinv_core.figure5 import subset_classifier_config
from netinv_core.losses import PerSampleGradNorm, pixel_loss, variation_loss
from netinv_core.reconstruct import (match_report, ncc_nearest, size_matched_pools, ssim,
                                     train_reconstructor)

from conftest import assert_same_weights, interrupt_then_resume


def test_variation_loss_by_hand():
    img = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])      # (1, 1, 2, 2)
    # vertical differences 0, 0; horizontal (1 - 0)^2 twice
    assert variation_loss(img).item() == pytest.approx(2.0)
    two = torch.cat([img, torch.zeros_like(img)])          # averaged over the batch
    assert variation_loss(two).item() == pytest.approx(1.0)


def test_pixel_loss_by_hand():
    img = torch.tensor([-0.5, 1.5, 0.5, 1.0]).view(1, 1, 2, 2)
    assert pixel_loss(img).item() == pytest.approx(1.0)
    assert pixel_loss(torch.rand(3, 1, 4, 4)).item() == 0


def test_per_sample_grad_norm_matches_a_loop_and_reaches_the_input(digits_classifier):
    model = digits_classifier.eval()
    x = torch.rand(3, 1, 28, 28, requires_grad=True)
    y = torch.tensor([0, 4, 7])
    norms = PerSampleGradNorm(model)(x, y)
    params = [p for p in model.parameters()]
    for i in range(3):
        loss = F.cross_entropy(model(x[i:i + 1].detach()), y[i:i + 1])
        g = torch.autograd.grad(loss, params)
        assert norms[i].item() == pytest.approx(torch.sqrt(sum((t ** 2).sum() for t in g)).item(),
                                                rel=1e-4)
    norms.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_ssim_and_ncc():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 1, 8, 8, generator=g)
    assert torch.allclose(ssim(a, a), torch.ones(4), atol=1e-6)
    assert (ssim(a, torch.rand(4, 1, 8, 8, generator=g)) < 0.5).all()
    pool = torch.rand(10, 1, 8, 8, generator=g)
    idx, best = ncc_nearest(0.5 * pool[[3, 7]] + 0.2, pool)   # NCC ignores gain and offset
    assert idx.tolist() == [3, 7] and torch.allclose(best, torch.ones(2), atol=1e-5)


def test_pools_are_size_matched():
    ytr = torch.tensor([0] * 5 + [1] * 2)
    yte = torch.tensor([0] * 3 + [1] * 4)
    pools = size_matched_pools(ytr, yte)
    assert {c: (len(a), len(b)) for c, (a, b) in pools.items()} == {0: (3, 3), 1: (2, 2)}


def test_match_report_tells_copies_of_training_images_from_the_control(digits):
    train, test = digits
    tx, ty = train.images(), train.y
    pools = size_matched_pools(ty, test.y, seed=0)
    picked = torch.cat([pools[c][0][:3] for c in range(10)])   # in the size-matched train pool
    rep = match_report(tx[picked], ty[picked], tx, ty, test.images(), test.y, seed=0)
    assert rep["ssim_train"]["mean"] == pytest.approx(1.0, abs=1e-5)
    assert rep["share_train_closer"] == 1.0
    assert rep["distinct_train_ssim_gt_0.5"] == 30
    assert rep["ssim_test"]["mean"] < 0.9
    # test images themselves: the control pool wins instead
    tp = torch.cat([pools[c][1][:3] for c in range(10)])
    rep = match_report(test.images(tp), test.y[tp], tx, ty, test.images(), test.y, seed=0)
    assert rep["share_train_closer"] == 0.0


def test_bad_reconstruction_inputs():
    for eps in (0, 1.5, -0.1, "0.1"):
        with pytest.raises(ConfigError, match="epsilon"):
            ReconConfig(epsilon=eps)
    with pytest.raises(ConfigError, match="grad_samples"):
        ReconConfig(batch_size=8, grad_samples=9)
    with pytest.raises(ConfigError, match="eta3"):
        ReconWeights(eta3=-1)
    with pytest.raises(ConfigError, match="larger than the digits training split"):
        subset_classifier_config("digits", 5000, "smoke")


def test_missing_feature_layer_is_a_clear_error():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    with pytest.raises(ConfigError, match="feature layer"):
        train_reconstructor(model, ReconConfig(steps=1, batch_size=4, grad_samples=1, width=8),
                            (1, 28, 28), progress=False)


def test_reconstruction_run_resumes(digits_classifier, tmp_path):
    cfg = ReconConfig(steps=4, batch_size=8, grad_samples=2, width=16)
    full, hist = train_reconstructor(digits_classifier, cfg, (1, 28, 28), progress=False)
    assert len(hist["loss"]) == 4 and all(k in hist for k in ("grad", "pix", "var", "kl_pert"))
    ckpt = tmp_path / "recon.partial.pt"
    resumed, hist2 = interrupt_then_resume(
        lambda **kw: train_reconstructor(digits_classifier, cfg, (1, 28, 28), progress=False,
                                         checkpoint=ckpt, checkpoint_every=2, **kw),
        "step", 2)
    assert hist2["step"] == [1, 2, 3, 4]
    assert_same_weights(full, resumed)


def test_grad_norm_term_stays_finite_when_the_loss_saturates():
    # logits 100 vs -100: softmax is exactly one-hot in float32, so the CE gradient is exactly 0,
    # where a bare sqrt has an infinite derivative (this made a CIFAR-10 run diverge to NaN)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[25.0] * 4, [-25.0] * 4]))
        model[1].bias.zero_()
    x = torch.ones(3, 1, 2, 2, requires_grad=True)
    norms = PerSampleGradNorm(model)(x, torch.zeros(3, dtype=torch.long))
    assert torch.isfinite(norms).all() and norms.max() < 1e-5
    norms.sum().backward()
    assert torch.isfinite(x.grad).all()
