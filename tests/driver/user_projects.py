"""Three projects written as a new user would write them: their own data, model, tokenizer, recipe,
performance test (its metric not called ``accuracy``) and attack test, in their own conftest.

Nothing here is shipped by safecompress: a tabular MLP on scikit-learn's breast-cancer data, an
embedding + MLP text classifier on WordNet verb glosses with a whitespace tokenizer, and a
torchvision ShuffleNetV2 (not ResNet-18) on Fashion-MNIST. Each is compressed at the defaults (the
ShuffleNet project asks for one attempt).
(MobileNetV3 was tried first: its BatchNorm momentum of 0.01 leaves the running statistics at their
initial values after a short run, so it scored chance in eval mode; a user would not ship that.)
"""

from __future__ import annotations

USER_TESTS = '''
import safecompress
from safecompress.attacks import make_attack_inputs, rmia_attack
from safecompress.inference import predict_logits


def top1(model, split, device):
    logits = predict_logits(model, split, device)
    return float((logits.argmax(1) == split.labels).float().mean())


@safecompress.mark.cost("cheap")
@safecompress.mark.requirement
@safecompress.mark.performance(metric="acc")
def test_task(model, dense_model, data, device, record):
    """The user's performance test: accuracy on held-out rows, within 5 points of the parent."""
    floor = top1(dense_model, data.non_members, device) - 0.05 if dense_model is not None else 0.5
    record.metric("mean_logit", float(predict_logits(model, data.non_members, device).mean()))
    record.at_least("acc", top1(model, data.non_members, device), floor, policy="point")


@safecompress.mark.cost("cheap")
@safecompress.mark.requirement
@safecompress.mark.remedy("adversarial_regularization", "relaxloss")
def test_membership(model, dense_model, data, device, seed, record):
    """The user's attack: RMIA with one reference model, no worse than the parent's."""
    auc = rmia_attack(make_attack_inputs(model, data, device=device, seed=seed, refs=1)).auc.value
    limit = rmia_attack(make_attack_inputs(dense_model, data, device=device, seed=seed, refs=1)).auc.value if dense_model is not None else 0.6
    record.at_most("rmia1_auc", auc, limit, policy="point")
'''

TABULAR_CONFTEST = """
import safecompress
from sklearn.datasets import load_breast_cancer
from torch import nn

from safecompress.data import DataSplits
from safecompress.training import TrainRecipe


class TabularMLP(nn.Module):
    def __init__(self, features=30, hidden=64, classes=2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.net(x)


@safecompress.fixture(scope="session")
def data(seed):
    x, y = load_breast_cancer(return_X_y=True)
    data = DataSplits.from_arrays(x, y, members=140, population=140, test=149, seed=seed, source="breast-cancer")
    mean, std = data.members.inputs.mean(0), data.members.inputs.std(0) + 1e-8  # the members' statistics
    return data.map_inputs(lambda inputs: (inputs - mean) / std)


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: TabularMLP()


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=30, batch_size=32, lr=1e-3, optimizer="adam")
"""

TEXT_CONFTEST = """
import re
from collections import Counter

import numpy as np
import safecompress
import torch
from torch import nn

from safecompress.data.splits import DataSplits, Split
from safecompress.training import TrainRecipe

LENGTH = 24


def read_verb_glosses(path="/usr/share/wordnet/data.verb"):
    texts, labels, offsets = [], [], []
    for line in open(path, encoding="utf-8"):
        if line.startswith("  ") or " | " not in line:
            continue
        head, gloss = line.split(" | ", 1)
        fields = head.split()
        texts.append(gloss.strip().lower())
        labels.append(int(fields[1]) - 29)  # verb lexicographer files are 29..43
        offsets.append(int(fields[0]))
    return texts, np.array(labels), np.array(offsets)


class WhitespaceTokenizer:
    def __init__(self, texts, size=3000):
        counts = Counter(word for text in texts for word in re.findall(r"[a-z]+", text))
        self.vocab = {word: i + 2 for i, (word, _) in enumerate(counts.most_common(size - 2))}  # 0 pad, 1 unknown

    def __call__(self, texts):
        ids = torch.zeros(len(texts), LENGTH, dtype=torch.long)
        for row, text in enumerate(texts):
            words = [self.vocab.get(w, 1) for w in re.findall(r"[a-z]+", text)][:LENGTH]
            ids[row, : len(words)] = torch.tensor(words, dtype=torch.long)
        return ids


class GlossClassifier(nn.Module):
    def __init__(self, vocab=3000, width=64, classes=15):
        super().__init__()
        self.embed = nn.Embedding(vocab, width, padding_idx=0)
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, classes))

    def forward(self, ids):
        mask = (ids > 0).float().unsqueeze(-1)
        pooled = (self.embed(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled)


@safecompress.fixture(scope="session")
def data(seed):
    texts, labels, offsets = read_verb_glosses()
    order = np.random.default_rng(seed).permutation(len(labels))[:2000]
    tokenizer = WhitespaceTokenizer([texts[i] for i in order[:800]])
    def part(rows, name):
        return Split(tokenizer([texts[i] for i in rows]), torch.tensor(labels[rows]), offsets[rows], name)
    return DataSplits(part(order[:800], "members"), part(order[800:1200], "non_members"), part(order[1200:1600], "population"), part(order[1600:], "test"), num_classes=15, source="wordnet-verbs")


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: GlossClassifier()


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=15, batch_size=32, lr=3e-3, optimizer="adam")
"""

SHUFFLENET_CONFTEST = '''
import safecompress
import torch
import torchvision

from safecompress.data import fashion_mnist_embedded
from safecompress.data.splits import DataSplits, Split
from safecompress.training import TrainRecipe


def as_rgb32(split):
    """ShuffleNet wants three channels; 32×32 keeps it small."""
    images = torch.nn.functional.interpolate(split.inputs, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    return Split(images, split.labels, split.indices, split.name)


@safecompress.fixture(scope="session")
def data(seed):
    base = fashion_mnist_embedded(members=256, non_members=256, population=256, test=256, seed=seed)
    return DataSplits(*(as_rgb32(s) for s in (base.members, base.non_members, base.population, base.test)), num_classes=10, source=base.source, seed=seed)


@safecompress.fixture(scope="session")
def model_factory():
    return lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=10)


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=8, batch_size=32, lr=2e-3, optimizer="adam")
'''
