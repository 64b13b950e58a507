"""The study's five models in PyTorch, sized for 8x8 digits, with training and loading.

Each model's FUNC file (written by the study) calls `trained(name, __file__)`, which rebuilds
the architecture and loads the weights saved beside that file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

EXAMPLE_BATCH = 32


class LeNet5(nn.Module):
    """LeNet-5's conv-pool-conv-pool-fc-fc-fc, padded for 8x8 inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
                                        nn.Linear(84, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """ResNet-18's stem, basic residual blocks and global pooling, at two stages of one block."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class SmallVGG(nn.Module):
    """VGG-16's stacked 3x3 conv blocks with max pooling and a dropout classifier, two blocks deep."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Recurrent(nn.Module):
    """An LSTM or GRU over the image's rows, classified from the last step."""

    def __init__(self, cell: str) -> None:
        super().__init__()
        layer = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = layer(8, 32, batch_first=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence, _ = self.rnn(x)
        return self.fc(sequence[:, -1])


BUILDERS = {
    "lenet5": LeNet5,
    "resnet": SmallResNet,
    "vgg": SmallVGG,
    "lstm": lambda: Recurrent("lstm"),
    "gru": lambda: Recurrent("gru"),
}


def layout_of(name: str) -> str:
    return "sequence" if name in ("lstm", "gru") else "nchw"


def train(name: str, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> nn.Module:
    """Adam, cross-entropy, mini-batches of 32, a fixed seed."""
    torch.manual_seed(seed)
    model = BUILDERS[name]()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    order = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        permutation = torch.from_numpy(order.permutation(len(x)))
        for start in range(0, len(x), 32):
            rows = permutation[start:start + 32]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs[rows]), labels[rows]).backward()
            optimizer.step()
    return model.eval()


def save(model: nn.Module, path: Path) -> None:
    torch.save(model.state_dict(), path)


def trained(name: str, func_file: str) -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The trained model saved beside `func_file`, and a batch of test digits as its example input."""
    here = Path(func_file)
    model = BUILDERS[name]()
    model.load_state_dict(torch.load(here.with_suffix(".pt"), weights_only=True))
    with np.load(here.parent.parent / "data" / f"digits_test_{layout_of(name)}.npz") as data:
        example = torch.from_numpy(data["x"][:EXAMPLE_BATCH])
    return model.eval(), (example,)
