"""The paper's classifier: it learns the real digits, and an interrupted training resumes exactly."""
import pytest
import torch

from netinv_core.classifier import evaluate, train_classifier
from netinv_core.config import ClassifierConfig


def test_classifier_learns_the_digits(digits, digits_classifier):
    assert evaluate(digits_classifier, digits[1]) > 0.85


def test_interrupted_classifier_training_resumes(digits, tmp_path):
    train, _ = digits
    cfg = ClassifierConfig(dataset="digits", epochs=2, batch_size=128)
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
