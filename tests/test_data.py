import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from deepgen_helpers import data
from deepgen_helpers.config import DATA_ENV, data_dir


def test_every_bundled_file_matches_the_manifest():
    files = json.loads((data_dir() / "manifest.json").read_text())["files"]
    assert {"mnist/train-images-idx3-ubyte.gz", "fashion_mnist/t10k-labels-idx1-ubyte.gz",
            "quijote/quijote.txt", "tinyshakespeare/input.txt", "names/names.txt"} <= set(files)
    for rel in files:
        assert data.verify_file(rel).exists()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_image_datasets_have_the_published_shapes_and_counts(name):
    x, y = data.load_images(name, "test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    counts = torch.bincount(y, minlength=10)
    assert counts.sum() == 10000 and (counts > 850).all()
    xt, yt = data.load_images(name, "train", n=500)
    assert xt.shape == (500, 1, 28, 28) and len(torch.unique(yt)) == 10


def test_mnist_known_values():
    # SOURCES.md: MNIST test class counts, and train[0] is a 5, test[0] is a 7
    _, y = data.load_mnist("test")
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.load_mnist("test")[1][0] == 7
    x, y = data.load_mnist("train")
    assert y[0] == 5 and len(y) == 60000


def test_binarisation():
    x, _ = data.load_mnist("test", n=100, binarize="threshold")
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    a, _ = data.load_mnist("test", n=100, binarize="sample", seed=1)
    b, _ = data.load_mnist("test", n=100, binarize="sample", seed=1)
    assert torch.equal(a, b) and set(torch.unique(a).tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="binarize"):
        data.load_mnist("test", binarize="otsu")


def test_unknown_names_list_the_available_ones():
    with pytest.raises(data.DataError, match="Available.*mnist"):
        data.load_images("cifar10")
    with pytest.raises(data.DataError, match="'train' or 'test'"):
        data.load_images("mnist", "valid")
    with pytest.raises(data.DataError, match="quijote"):
        data.load_text("hamlet")
    with pytest.raises(data.DataError, match="spirals"):
        data.make_toy_2d("swissroll")


def _copy_data(tmp_path, rel):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(data_dir() / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(data_dir() / rel, tmp_path / rel)


def test_corrupted_file_gives_a_clear_error(tmp_path):
    rel = "names/names.txt"
    _copy_data(tmp_path, rel)
    with open(tmp_path / rel, "ab") as fh:
        fh.write(b"tampered\n")
    with pytest.raises(data.DataError, match="corrupted.*git checkout"):
        data.verify_file(rel, root=tmp_path)


def test_missing_file_gives_a_clear_error(tmp_path, monkeypatch):
    shutil.copy(data_dir() / "manifest.json", tmp_path / "manifest.json")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(data.DataError, match="missing.*never downloads"):
        data.load_text("names")


def test_read_idx_roundtrip_and_truncation(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 0x08, 3]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    good = tmp_path / "ok-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(header + arr.tobytes()))
    assert np.array_equal(data.read_idx(good), arr)
    bad = tmp_path / "short-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(header + arr.tobytes()[:-3]))
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(bad)
    junk = tmp_path / "junk.gz"
    junk.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(data.DataError, match="not an IDX"):
        data.read_idx(junk)


def test_text_corpora():
    q = data.load_text("quijote")
    assert len(q) == 2_110_705 and "En un lugar de la Mancha" in q
    s = data.load_text("tinyshakespeare")
    assert len(s) == 1_115_394 and s.startswith("First Citizen:")
    names = data.load_names()
    assert len(names) == 32033 and names[:3] == ["emma", "olivia", "ava"]


@pytest.mark.parametrize("name", data.TOY_DATASETS)
def test_toy_2d(name):
    x = data.make_toy_2d(name, n=2000, seed=0)
    assert x.shape == (2000, 2) and x.dtype == torch.float32
    assert x.abs().max() < 5
    assert torch.equal(x, data.make_toy_2d(name, n=2000, seed=0))
    assert not torch.equal(x, data.make_toy_2d(name, n=2000, seed=1))


def test_gaussian_mixture_has_eight_modes_on_a_circle():
    x = data.make_toy_2d("gaussian_mixture", n=4000, noise=0.05)
    radius = x.norm(dim=1)
    assert torch.allclose(radius.mean(), torch.tensor(3.0), atol=0.05)
    angles = torch.atan2(x[:, 1], x[:, 0])
    k = torch.round(angles / (2 * np.pi / 8)) % 8
    assert len(torch.unique(k)) == 8


@pytest.mark.parametrize("split,size", [("test", 10000), ("train", 60000)])
def test_asking_for_more_images_than_the_split_has_is_refused(split, size):
    with pytest.raises(ValueError, match=f"only {size:,} images"):
        data.load_images("mnist", split, n=size + 1)


def test_device_that_is_not_here_names_the_argument():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda'.*CUDA is not available"):
            data.load_mnist("test", n=4, device="cuda")
    x, _ = data.load_mnist("test", n=4, device=torch.device("cpu"))
    assert x.device.type == "cpu"


@pytest.mark.parametrize("bad,pattern", [
    (torch.rand(2, 28, 28, 1), "channels last"),
    (torch.rand(2, 1, 28, 28) * 255, "divide by 255"),
    (torch.full((2, 1, 4, 4), float("inf")), "NaN or infinite"),
    ([], "empty list"),
])
def test_as_image_batch_refuses_wrong_batches(bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        data.as_image_batch(bad)


def test_wikitext2_has_the_published_sizes():
    # Merity et al. (2016): 36,718 / 3,760 / 4,358 lines; tokens counting one <eos> per line
    sizes = {"train": (36718, 2088628), "valid": (3760, 217646), "test": (4358, 245569)}
    for split, (lines, tokens) in sizes.items():
        text = data.load_wikitext2(split)
        assert len(text) == lines
        assert sum(len(line.split()) + 1 for line in text) == tokens
    assert data.load_wikitext2("valid")[1] == "= Homarus gammarus ="
    with pytest.raises(data.DataError, match="Did you mean 'valid'"):
        data.load_wikitext2("validation")


def test_sst2_has_glue_sizes_and_labels():
    sentences, labels = data.load_sst2("dev")
    assert (len(sentences), sum(labels)) == (872, 444)          # 444 positive, 428 negative
    assert sentences[0] == "it 's a charming and often affecting journey ."
    train_x, train_y = data.load_sst2("train")
    assert len(train_x) == 67349 and set(train_y) == {0, 1}
    test_x, test_y = data.load_sst2("test")
    assert len(test_x) == 1821 and set(test_y) == {-1}          # GLUE hides the test labels
    with pytest.raises(data.DataError, match="dev"):
        data.load_sst2("valid")


def test_spa_eng_pairs_are_spanish_then_english():
    pairs = data.load_spa_eng()
    assert len(pairs) == 118121
    assert pairs[0] == ("Ve.", "Go.")
    assert all(isinstance(es, str) and es and en for es, en in pairs)


def test_data_readme_lists_every_bundled_file_with_its_checksum():
    root = Path(__file__).resolve().parents[1] / "data"
    readme = (root / "README.md").read_text(encoding="utf-8")
    files = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["files"]
    for rel, entry in files.items():
        assert f"| {rel} | {entry['bytes']:,} | {entry['sha256']} |" in readme, rel


# --------------------------------------------------------------------------------------------------
# split_spa_eng: a random split by source sentence, with no sentence on both sides
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spa_eng_split():
    pairs = data.load_spa_eng()
    return pairs, data.split_spa_eng(pairs, valid=0.05, test=0.05, seed=0)


def test_split_spa_eng_keeps_every_sentence_on_one_side(spa_eng_split):
    pairs, splits = spa_eng_split
    assert sorted(p for split in splits for p in split) == sorted(pairs)     # nothing lost or added
    for lang in (0, 1):                                                      # Spanish, then English
        seen = [{p[lang] for p in split} for split in splits]
        assert not seen[0] & seen[1] and not seen[0] & seen[2] and not seen[1] & seen[2]


def test_split_spa_eng_sizes_follow_the_fractions(spa_eng_split):
    pairs, (train, valid, test) = spa_eng_split
    for split, fraction in ((train, 0.90), (valid, 0.05), (test, 0.05)):
        assert abs(len(split) / len(pairs) - fraction) < 0.002
    # random, not file order (the file is sorted by length): test sentences are of every length
    lengths = [len(en.split()) for _, en in test]
    assert min(lengths) <= 2 and max(lengths) >= 12
    assert lengths[:100] != sorted(lengths[:100])


def test_split_spa_eng_is_reproducible_and_depends_on_the_seed(spa_eng_split):
    pairs, splits = spa_eng_split
    assert data.split_spa_eng(pairs, seed=0) == splits
    other = data.split_spa_eng(pairs, seed=1)
    assert set(other[2]) != set(splits[2])
    assert len(set(other[2]) & set(splits[2])) < 0.2 * len(splits[2])


def test_split_spa_eng_links_pairs_through_either_sentence():
    # a chain: pairs 0 and 1 share a Spanish sentence, pairs 1 and 2 an English one
    chain = [("Váyase.", "Go."), ("Váyase.", "Go away."), ("¡Lárgate!", "Go away.")]
    others = [(f"Frase {i}.", f"Sentence {i}.") for i in range(200)]
    for seed in range(20):
        splits = data.split_spa_eng(chain + others, valid=0.2, test=0.2, seed=seed)
        holding = [i for i, split in enumerate(splits) if set(chain) & set(split)]
        assert len(holding) == 1 and set(chain) <= set(splits[holding[0]])


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"valid": -0.1}, ValueError, r"valid must be a fraction .* \[0, 1\)"),
    ({"test": 1.0}, ValueError, r"test must be a fraction"),
    ({"test": float("nan")}, ValueError, r"test must be a fraction"),
    ({"valid": 0.6, "test": 0.5}, ValueError, r"leave nothing for training"),
    ({"valid": "0.05"}, TypeError, r"valid must be a fraction of the pairs such as 0.05"),
    ({"test": True}, TypeError, r"test must be a fraction"),
    ({"seed": 1.5}, TypeError, r"seed must be a whole number"),
])
def test_split_spa_eng_refuses_bad_fractions(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        data.split_spa_eng([("Hola.", "Hello.")] * 10, **kwargs)


@pytest.mark.parametrize("pairs, error, pattern", [
    ([], ValueError, r"pairs is empty"),
    ("Hola.\tHello.", TypeError, r"pairs must be a list of \(spanish, english\) tuples"),
    ([("Hola.", "Hello."), ("Adiós.",)], TypeError, r"pairs\[1\] must be a \(spanish, english\)"),
    ([("Hola.", 3)], TypeError, r"pairs\[0\] must be"),
])
def test_split_spa_eng_refuses_bad_pairs(pairs, error, pattern):
    with pytest.raises(error, match=pattern):
        data.split_spa_eng(pairs)


def test_split_spa_eng_says_when_nothing_is_left_for_training():
    with pytest.raises(ValueError, match="too few to leave any for training"):
        data.split_spa_eng([("Hola.", "Hello.")] * 10, valid=0.0, test=0.5)
    pairs = [(f"a{i}", f"b{i}") for i in range(10)]
    train, valid, test = data.split_spa_eng(pairs, valid=0.0, test=0.2)
    assert (len(train), len(valid), len(test)) == (8, 0, 2)
