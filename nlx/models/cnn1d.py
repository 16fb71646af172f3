"""The small 1-D CNN of the MNIST-1D paper (Greydanus 2020) for signals (C, L), e.g. MNIST-1D's
1x40: three Conv1d + ReLU layers of 25 channels (kernels 5, 3, 3; stride 2, padding 1), then a
linear layer over the flattened feature map (25 x 5 = 125 inputs for L = 40). A view of shape
(L,) is read as one channel."""

from __future__ import annotations

from torch import nn

from nlx.models.common import Encoder, OneView, ShapeError, only_view

CHANNELS = 25
KERNELS = (5, 3, 3)
STRIDE, PADDING = 2, 1


def signal_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(C, L) of a 1-D signal view."""
    if len(shape) == 1:
        return 1, shape[0]
    if len(shape) == 2:
        return shape  # type: ignore[return-value]
    raise ShapeError(f"cnn1d needs 1-D signals (C, L) or (L,), got {shape}")


def output_length(length: int) -> int:
    for kernel in KERNELS:
        length = (length + 2 * PADDING - kernel) // STRIDE + 1
    return length


def cnn1d_encoder(spec, shape: tuple[int, ...]) -> Encoder:
    channels, length = signal_shape(shape)
    if output_length(length) < 1:
        raise ShapeError(f"cnn1d needs signals of length at least 3, got {shape}")
    layers: list[nn.Module] = [nn.Unflatten(1, (1, length))] if len(shape) == 1 else []
    for kernel in KERNELS:
        layers += [nn.Conv1d(channels, CHANNELS, kernel, stride=STRIDE, padding=PADDING), nn.ReLU()]
        channels = CHANNELS
    layers.append(nn.Flatten())
    return Encoder(nn.Sequential(*layers), CHANNELS * output_length(length))


def cnn1d(spec, view_shapes: list[tuple[int, ...]], num_classes: int) -> nn.Module:
    return OneView(cnn1d_encoder(spec, only_view("cnn1d", view_shapes)), num_classes, spec.dropout)
