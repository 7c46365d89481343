"""The verification protocol on hand-made scores, and pairs files."""

import numpy as np
import pytest

from keras_arcface.evaluation import (
    PairsFormatError,
    auc,
    best_threshold,
    kfold_accuracy,
    read_pairs,
    roc_curve,
    tar_at_far,
    verification_report,
)


def test_best_threshold_matches_brute_force(rng):
    same = rng.random(500) < 0.5
    scores = np.where(same, rng.normal(0.5, 0.2, 500), rng.normal(0.1, 0.2, 500))
    threshold, accuracy = best_threshold(scores, same)
    brute = max(np.mean((scores > t) == same) for t in np.r_[scores, scores.min() - 1])
    assert accuracy == pytest.approx(brute)
    assert np.mean((scores > threshold) == same) == pytest.approx(accuracy)


def test_kfold_uses_file_order_and_the_other_folds():
    # fold 0 is separable at 0.5; all other folds are separable at 0.25: fold 0's threshold,
    # chosen on folds 1..9, is between their scores, so fold 0 is judged with it.
    same = np.tile(np.r_[np.ones(5, bool), np.zeros(5, bool)], 10)
    scores = np.tile(np.r_[np.full(5, 0.3), np.full(5, 0.2)], 10)
    scores[:10] = np.r_[np.full(5, 0.6), np.full(5, 0.4)]
    accuracies, thresholds = kfold_accuracy(scores, same, folds=10)
    assert thresholds[0] == pytest.approx(0.25)
    assert accuracies[0] == 0.5  # 0.4 > 0.25: the different pairs of fold 0 are called same
    assert np.all(accuracies[1:] == 1.0)
    with pytest.raises(ValueError, match="equal folds"):
        kfold_accuracy(scores[:95], same[:95])


def test_roc_auc_and_tar_at_far():
    same = np.r_[np.ones(1000, bool), np.zeros(1000, bool)]
    scores = np.r_[np.linspace(0.5, 1, 1000), np.linspace(0, 0.49, 1000)]
    far, tar, _ = roc_curve(scores, same)
    assert auc(far, tar) == pytest.approx(1.0)
    assert tar_at_far(scores, same, 1e-3) == 1.0
    assert tar_at_far(scores[:1100], same[:1100], 1e-3) is None  # 100 negatives cannot measure 1e-3
    order = np.random.default_rng(0).permutation(2000)  # every fold sees both kinds
    report = verification_report(scores[order], same[order])
    assert report["accuracy_mean"] == 1.0 and report["tar_at_far"]["0.001"] == 1.0


def _lfw_tree(root, names):
    for name, count in names.items():
        (root / name).mkdir(parents=True)
        for i in range(1, count + 1):
            (root / name / f"{name}_{i:04d}.jpg").write_bytes(b"x")


def test_pairs_file_forms_errors_and_missing_images(tmp_path):
    _lfw_tree(tmp_path / "img", {"Ann": 2, "Bob": 1})
    good = tmp_path / "pairs.txt"
    good.write_text("1\t1\nAnn\t1\t2\nAnn\t1\tBob\t1\n")
    pairs = read_pairs(good, tmp_path / "img")
    assert [p.same for p in pairs] == [True, False]
    assert pairs[1].right.endswith("Bob/Bob_0001.jpg")
    bad = tmp_path / "bad.txt"
    bad.write_text("Ann\t1\t2\nAnn\tone\tBob\n")
    with pytest.raises(PairsFormatError, match=r"bad.txt, line 2: expected"):
        read_pairs(bad, tmp_path / "img")
    missing = tmp_path / "missing.txt"
    missing.write_text("Ann\t1\t3\nCid\t1\tBob\t1\n")
    with pytest.raises(PairsFormatError, match=r"(?s)2 image\(s\) named by its pairs are missing.*Ann_0003.*Cid_0001"):
        read_pairs(missing, tmp_path / "img")


def test_impostor_scores_are_every_cross_identity_pair_once(rng):
    from keras_arcface.evaluation.protocol import impostor_scores

    x = rng.normal(size=(9, 4)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    identities = np.array(list("aabbbcdde"))
    expected = sorted(float(x[i] @ x[j]) for i in range(9) for j in range(i + 1, 9) if identities[i] != identities[j])
    got = sorted(impostor_scores(x, identities, block=2).tolist())  # blocks smaller than the set
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_threshold_at_far_accepts_at_most_that_fraction():
    from keras_arcface.errors import InputError
    from keras_arcface.evaluation.protocol import threshold_at_far

    impostor = np.linspace(0.0, 0.999, 1000)
    for far in (1e-1, 1e-2, 1e-3):
        threshold = threshold_at_far(impostor, far)
        assert np.mean(impostor >= threshold) <= far
        assert np.mean(impostor >= threshold - 2e-3) > far  # the lowest such threshold (one step lower fails)
    with pytest.raises(InputError, match="at least 10000 impostor pairs"):
        threshold_at_far(impostor, 1e-4)
