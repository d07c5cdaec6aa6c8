import math

import keras
import numpy as np
import pytest

from course_lib import privacy
from course_lib.data.text import CharVocabulary
from course_lib.models.char_rnn import CharRNN


def test_attack_report_reads_the_roc_curve():
    perfect = privacy.attack_report([3.0, 4.0, 5.0], [0.0, 1.0, 2.0])
    assert perfect["auc"] == 1.0 and perfect["tpr_at_low_fpr"] == 1.0
    assert perfect["accuracy"] == 1.0
    assert privacy.attack_report([1.0, 1.0], [1.0, 1.0])["auc"] == 0.5  # ties count half
    reversed_ = privacy.attack_report([0.0, 1.0], [2.0, 3.0])
    assert reversed_["auc"] == 0.0 and reversed_["tpr_at_low_fpr"] == 0.0
    # members 1..100, non-members 0.5..99.5: P(member > non-member) by counting
    members, nonmembers = np.arange(1.0, 101.0), np.arange(0.5, 100.0)
    expected = np.mean(members[:, None] > nonmembers[None, :])
    report = privacy.attack_report(members, nonmembers)
    assert math.isclose(report["auc"], expected)
    assert report["tpr_at_low_fpr"] == 0.02  # t = 99: members 99 and 100 above, 1 non-member
    assert report["fpr"][0] == 0 and report["tpr"][-1] == 1


def test_attack_report_finds_a_leak_of_half_a_standard_deviation():
    rng = np.random.default_rng(0)
    report = privacy.attack_report(rng.normal(0.5, 1, 5000), rng.normal(0, 1, 5000))
    # AUC of two unit normals 0.5 apart: Phi(0.5 / sqrt 2) = 0.638
    assert abs(report["auc"] - 0.638) < 0.015
    assert 0.5 < report["accuracy"] < 0.62


def test_attack_report_refuses_bad_scores():
    with pytest.raises(ValueError, match="member_scores is empty"):
        privacy.attack_report([], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        privacy.attack_report([1.0, np.nan], [1.0])
    with pytest.raises(ValueError, match="low_fpr"):
        privacy.attack_report([1.0], [0.0], low_fpr=1.5)


def test_distance_scores_are_highest_for_copied_images():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (6, 4, 4, 1))
    samples = np.concatenate([images[:3], rng.uniform(-1, 1, (20, 4, 4, 1))])
    scores = privacy.distance_scores(samples, images)
    assert scores.shape == (6,) and np.allclose(scores[:3], 0.0) and np.all(scores[3:] < 0)


def test_insert_canaries_puts_each_canary_in_its_own_paragraph_count_times():
    text = "\n\n".join(f"paragraph {i}" for i in range(50))
    out = privacy.insert_canaries(text, {"ada's pin is 12345": 3, "bob's pin is 00001": 0,
                                         "eve's pin is 99999": 1}, seed=0)
    paragraphs = out.split("\n\n")
    assert paragraphs.count("ada's pin is 12345") == 3
    assert paragraphs.count("eve's pin is 99999") == 1 and "bob" not in out
    assert [p for p in paragraphs if p.startswith("paragraph")] == text.split("\n\n")
    assert out == privacy.insert_canaries(text, {"ada's pin is 12345": 3, "bob's pin is 00001":
                                                 0, "eve's pin is 99999": 1}, seed=0)
    with pytest.raises(ValueError, match="whole number"):
        privacy.insert_canaries(text, {"x": 1.5})
    with pytest.raises(ValueError, match="separator"):
        privacy.insert_canaries(text, {"a\n\nb": 1})


def test_candidate_log2_probs_match_scoring_each_candidate_in_full():
    vocabulary = CharVocabulary.from_text("abc's pin is 0123456789")
    keras.utils.set_random_seed(0)
    model = CharRNN(vocabulary.size, embedding_dim=8, units=16)
    prefix = "abc's pin is "
    tree = privacy.candidate_log2_probs(model, vocabulary, prefix, 2)
    assert tree.shape == (100,)
    for index in (0, 7, 42, 99):
        ids = vocabulary.encode(prefix + f"{index:02d}")
        log_p = keras.ops.convert_to_numpy(keras.ops.log_softmax(model(ids[None])[0], axis=-1))
        n = len(prefix)
        direct = sum(log_p[n - 1 + k, ids[n + k]] for k in range(2)) / math.log(2)
        assert math.isclose(tree[index], direct, abs_tol=1e-4)
    assert 0 < np.sum(2.0**tree) < 1.0  # the rest of the probability: other characters
    with pytest.raises(ValueError, match="num_digits"):
        privacy.candidate_log2_probs(model, vocabulary, prefix, 0)


def test_exposure_is_log2_of_the_candidates_over_the_rank():
    log2_probs = np.log2(np.array([0.1, 0.4, 0.2, 0.2, 0.1]))
    assert privacy.exposure(log2_probs, 1) == math.log2(5)  # the most likely: rank 1
    assert math.isclose(privacy.exposure(log2_probs, 2), math.log2(5) - 1)  # tie: rank 2
    assert math.isclose(privacy.exposure(log2_probs, 0), math.log2(5) - math.log2(4))
    with pytest.raises(ValueError, match="secret_index"):
        privacy.exposure(log2_probs, 5)
    with pytest.raises(ValueError, match="secret_index"):
        privacy.exposure(log2_probs, 1.5)


def test_train_member_vae_keeps_the_best_validation_epoch(tmp_path):
    rng = np.random.default_rng(0)
    members = np.where(rng.random((32, 16, 16, 1)) < 0.3, 1.0, -1.0).astype(np.float32)
    validation = np.where(rng.random((32, 16, 16, 1)) < 0.3, 1.0, -1.0).astype(np.float32)
    result = privacy.train_member_vae(members, validation, num_epochs=4, latent_dim=2,
                                      workdir=tmp_path)
    losses = result.history["val_loss"]
    assert len(losses) == 4 and result.best_epoch == int(np.argmin(losses)) + 1
    if result.best_epoch < 4:  # the best weights are not the last ones
        assert not np.allclose(result.best.get_weights()[0], result.last.get_weights()[0])
    else:
        assert np.allclose(result.best.get_weights()[0], result.last.get_weights()[0])
    with pytest.raises(ValueError, match="binary images"):
        privacy.train_member_vae(members * 0.5, validation, num_epochs=1)


def test_split_members_draws_disjoint_sets():
    members, nonmembers, validation = privacy.split_members(1000, (100, 100, 200), seed=3)
    assert (len(members), len(nonmembers), len(validation)) == (100, 100, 200)
    assert len(set(members) | set(nonmembers) | set(validation)) == 400
    assert np.array_equal(members, privacy.split_members(1000, (100, 100, 200), seed=3)[0])
    with pytest.raises(ValueError, match="disjoint"):
        privacy.split_members(300, (100, 100, 200))


def test_make_canaries_gives_each_name_its_own_secret():
    canaries = privacy.make_canaries({"ada": 0, "bob": 4}, num_digits=5, seed=0)
    (ada, zero), (bob, four) = canaries.items()
    assert ada.startswith("ada's pin is ") and ada[-5:].isdigit() and len(ada) == 18
    assert (zero, four) == (0, 4) and bob.startswith("bob's pin is ")
