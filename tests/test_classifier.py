"""The paper's classifier: it learns the real digits, and an interrupted training resumes exactly."""
import pytest
import torch

from netinv_core.classifier import evaluate, train_classifier
from netinv_core.config import ClassifierConfig


def test_classifier_learns_the_digits(digits, digits_classifier):
    assert evaluate(digits_classifier, digits[1]) > 0.85


@pytest.mark.parametrize("augment,optimizer", [("none", "adam"), ("crop", "adam"), ("crop", "sgd")])
def test_interrupted_classifier_training_resumes(digits, tmp_path, augment, optimizer):
    """A resumed epoch draws the same crops; the one-cycle schedule resumes at its batch."""
    train, _ = digits
    cfg = ClassifierConfig(dataset="digits", epochs=2, batch_size=128, augment=augment,
                           optimizer=optimizer, label_smoothing=0.1 * (optimizer == "sgd"),
                           lr=0.05 if optimizer == "sgd" else 1e-3)
    ref, ref_hist = train_classifier(cfg, train, progress=False)
    ckpt = tmp_path / "clf.partial.pt"

    def stop_after_first_epoch(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_classifier(cfg, train, progress=False, checkpoint=ckpt, callback=stop_after_first_epoch)
    epochs = []
    model, hist = train_classifier(cfg, train, progress=False, checkpoint=ckpt,
                                   callback=lambda r: epochs.append(r["epoch"]))
    assert epochs == [2] and hist["loss"] == ref_hist["loss"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))


def test_augmentation_crops_and_flips_from_its_own_generator():
    """"crop" shifts each image by at most 4 pixels with zero fill; "flip_crop" also mirrors about
    half of them; "none" returns the batch itself; the same generator seed draws the same batch."""
    from netinv_core.classifier import augment_batch

    x = torch.rand(64, 3, 8, 8) + 1.0            # > 0 everywhere: the zero fill is visible
    assert augment_batch(x, "none", torch.Generator()) is x
    crop = augment_batch(x, "crop", torch.Generator().manual_seed(0))
    assert crop.shape == x.shape
    again = augment_batch(x, "crop", torch.Generator().manual_seed(0))
    assert torch.equal(crop, again)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(len(x)):   # each crop is one of the 81 windows of its own padded image
        assert any(torch.equal(crop[i], padded[i, :, dy:dy + 8, dx:dx + 8])
                   for dy in range(9) for dx in range(9))
    assert (crop == 0).any() and not torch.equal(crop, x)
    flips = augment_batch(x, "flip_crop", torch.Generator().manual_seed(0))

    def window(i, img):
        return [(dy, dx) for dy in range(9) for dx in range(9)
                if torch.equal(img, padded[i, :, dy:dy + 8, dx:dx + 8])]
    mirrored = [i for i in range(len(x)) if not window(i, flips[i])]
    assert 16 <= len(mirrored) <= 48
    assert all(window(i, flips[i].flip(-1)) for i in mirrored)   # left-right, nothing else


def test_augment_setting_is_checked_and_keeps_old_cache_keys():
    from netinv_core.config import ConfigError, to_dict

    with pytest.raises(ConfigError, match="choose one of"):
        ClassifierConfig(dataset="cifar10", augment="mixup")
    with pytest.raises(ConfigError, match="augment='crop'"):
        ClassifierConfig(dataset="mnist", augment="flip_crop")
    assert "augment" not in to_dict(ClassifierConfig(dataset="cifar10"))
    assert to_dict(ClassifierConfig(dataset="cifar10", augment="crop"))["augment"] == "crop"



def test_sgd_recipe_is_checked_learns_and_keeps_old_cache_keys(digits):
    """optimizer / label_smoothing: refused when unknown or out of range, left out of the cache
    key at their defaults, and the SGD + one-cycle recipe learns the digits."""
    from netinv_core.config import to_dict
    from netinv_core.errors import ConfigError
    with pytest.raises(ConfigError, match="optimizer='rmsprop'"):
        ClassifierConfig(dataset="digits", optimizer="rmsprop")
    with pytest.raises(ConfigError, match="label_smoothing"):
        ClassifierConfig(dataset="digits", label_smoothing=1.0)
    d = to_dict(ClassifierConfig(dataset="digits"))
    assert "optimizer" not in d and "label_smoothing" not in d
    cfg = ClassifierConfig(dataset="digits", epochs=3, optimizer="sgd", lr=0.05,
                           weight_decay=5e-4, label_smoothing=0.1, dropout=0.0)
    assert to_dict(cfg)["optimizer"] == "sgd" and to_dict(cfg)["label_smoothing"] == 0.1
    train, test = digits
    model, hist = train_classifier(cfg, train, progress=False)
    assert evaluate(model, test) > 0.9
