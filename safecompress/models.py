"""Small reference architectures for the demo, the tests and the benchmarks.

They are addressable as architecture references (``safecompress.models:small_cnn``), so a state dict
saved from them loads back with ``--arch``.
"""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Two conv blocks and two linear layers: ~0.4 M weights, ~2,000 samples/s on 2 CPU cores at 28×28."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32, image_size: int = 28) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * side * side, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def small_cnn(num_classes: int = 10, in_channels: int = 1, width: int = 32, image_size: int = 28) -> SmallCNN:
    """Factory for ``--arch safecompress.models:small_cnn``; its named parameters are what an
    artifact may record (see :mod:`safecompress.architectures`)."""
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, width=width, image_size=image_size)


def resnet18_small_input(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """torchvision ResNet-18 (``weights=None``) with its stem kept, input channels adapted."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def tiny_bert(num_classes: int, vocab_size: int = 30522, max_length: int = 32, hidden_size: int = 128, layers: int = 2) -> nn.Module:
    """A BERT sequence classifier built from a transformers config (no download): 2 layers, h=128."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden_size // 64),
        intermediate_size=4 * hidden_size,
        max_position_embeddings=max(64, max_length),
        num_labels=num_classes,
    )
    return BertForSequenceClassification(config)
