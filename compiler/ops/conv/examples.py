"""The test cases of the conv ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "conv1d": (
        Example("conv1d(8, 3)", "[B, 4, 16]", "[B, 8, 14]"),
        Example("conv1d(6, 3, stride=2, padding=1, groups=2)", "[B, 4, T]", "[B, 6, (T + 1)//2]"),
        Example("conv1d(4, 3, padding=same, dilation=2, bias=false)", "[B, 2, T]", "[B, 4, T]"),
        Example("conv1d(3, [4], padding=same)", "[B, 2, T + 1]", "[B, 3, T + 1]"),
        Example(
            "conv1d(8, 3)", "[B, 4, T]", "[B, 8, T - 2]", torch="nn.Conv1d(4, 8, 3)", parity=False
        ),
        Example(
            "conv1d(6, 3, groups=2, bias=false)",
            "[B, 4, T]",
            "[B, 6, T - 2]",
            torch="nn.Conv1d(4, 6, 3, groups=2, bias=False)",
            parity=False,
        ),
    ),
    "conv2d": (
        Example("conv2d(16, 3)", "[B, 3, 8, 8]", "[B, 16, 6, 6]"),
        Example("conv2d(8, 3, stride=2)", "[B, 3, H, W]", "[B, 8, (H + 1)//2 - 1, (W + 1)//2 - 1]"),
        Example("conv2d(4, [3, 2], padding=same, dilation=2)", "[B, 2, H, W]", "[B, 4, H, W]"),
        Example(
            "conv2d(6, 3, padding=[1, 0], groups=3, bias=false)",
            "[B, 3, H, 2*W]",
            "[B, 6, H, 2*W - 2]",
        ),
        Example(
            "conv2d(8, 5, stride=[2, 1], dilation=[1, 2], padding=2)",
            "[B, 4, 9, 12]",
            "[B, 8, 5, 8]",
        ),
        Example(
            "conv2d(16, 3)",
            "[B, 3, H, W]",
            "[B, 16, H - 2, W - 2]",
            torch="nn.Conv2d(3, 16, 3)",
            parity=False,
        ),
        Example(
            "conv2d(8, [3, 5], dilation=2, groups=4, bias=false)",
            "[B, 4, 16, 16]",
            "[B, 8, 12, 8]",
            torch="nn.Conv2d(4, 8, (3, 5), dilation=2, groups=4, bias=False)",
            parity=False,
        ),
        Example(
            "conv2d(6, 3, padding=same)",
            "[B, 3, H, W]",
            "[B, 6, H, W]",
            torch='nn.Conv2d(3, 6, 3, padding="same")',
            parity=False,
        ),
    ),
    "conv_transpose2d": (
        Example("conv_transpose2d(8, 2, stride=2)", "[B, 4, H, W]", "[B, 8, 2*H, 2*W]"),
        Example(
            "conv_transpose2d(4, 3, stride=2, padding=1, output_padding=1)",
            "[B, 3, 5, 5]",
            "[B, 4, 10, 10]",
        ),
        Example(
            "conv_transpose2d(3, [3, 2], stride=[1, 3], dilation=2, bias=false)",
            "[B, 2, H, 4]",
            "[B, 3, H + 4, 12]",
        ),
        Example(
            "conv_transpose2d(8, 3, stride=2)",
            "[B, 4, H, W]",
            "[B, 8, 2*H + 1, 2*W + 1]",
            torch="nn.ConvTranspose2d(4, 8, 3, stride=2)",
            parity=False,
        ),
        Example(
            "conv_transpose2d(6, 2, groups=3, bias=false)",
            "[B, 3, H, W]",
            "[B, 6, H + 1, W + 1]",
            torch="nn.ConvTranspose2d(3, 6, 2, groups=3, bias=False)",
            parity=False,
        ),
        Example(
            "conv_transpose2d(2, [3, 2], groups=2, dilation=2)",
            "[B, 4, H, W]",
            "[B, 2, H + 4, W + 2]",
            torch="nn.ConvTranspose2d(4, 2, (3, 2), groups=2, dilation=2)",
            parity=False,
        ),
    ),
    "maxpool1d": (
        Example("maxpool1d(2)", "[B, 4, T]", "[B, 4, T//2]"),
        Example("maxpool1d(3, stride=2, padding=1)", "[B, 4, 10]", "[B, 4, 5]"),
    ),
    "maxpool2d": (
        Example("maxpool2d(2)", "[B, 16, 8, 8]", "[B, 16, 4, 4]"),
        Example(
            "maxpool2d(3, stride=2, padding=1)", "[B, C, H, W]", "[B, C, (H + 1)//2, (W + 1)//2]"
        ),
        Example("maxpool2d([2, 1])", "[B, 3, 2*H, W]", "[B, 3, H, W]"),
        Example(
            "maxpool2d(2)",
            "[B, 3, H, W]",
            "[B, 3, H//2, W//2]",
            torch="nn.MaxPool2d(2)",
            parity=False,
        ),
    ),
    "avgpool1d": (
        Example("avgpool1d(2)", "[B, 3, 9]", "[B, 3, 4]"),
        Example("avgpool1d(4, stride=2, padding=2)", "[B, 3, T]", "[B, 3, T//2 + 1]"),
        Example("avgpool1d(2)", "[B, 3, T]", "[B, 3, T//2]", torch="nn.AvgPool1d(2)", parity=False),
    ),
    "avgpool2d": (
        Example("avgpool2d(2)", "[B, 3, H, W]", "[B, 3, H//2, W//2]"),
        Example("avgpool2d(3, stride=2, padding=1)", "[B, 2, 7, 8]", "[B, 2, 4, 4]"),
    ),
    "global_avgpool": (
        Example("global_avgpool", "[B, 16, H, W]", "[B, 16]"),
        Example("global_avgpool", "[B, C, T]", "[B, C]"),
        Example(
            "global_avgpool",
            "[B, 3, H, W]",
            "[B, 3]",
            torch="nn.AdaptiveAvgPool2d(1)",
            parity=False,
        ),
    ),
    "global_maxpool": (
        Example("global_maxpool", "[B, 8, 4, 4]", "[B, 8]"),
        Example("global_maxpool", "[B, 3, 2, H, W]", "[B, 3]"),
    ),
    "upsample": (
        Example("upsample(2)", "[B, 3, H, W]", "[B, 3, 2*H, 2*W]"),
        Example("upsample([2, 3], mode=bilinear)", "[B, 2, 4, 5]", "[B, 2, 8, 15]"),
        Example("upsample(2, mode=bilinear)", "[B, 2, H, W]", "[B, 2, 2*H, 2*W]"),
        Example("upsample(3)", "[B, 2, T]", "[B, 2, 3*T]"),
        Example(
            "upsample(2, mode=bilinear)",
            "[B, 3, H, W]",
            "[B, 3, 2*H, 2*W]",
            torch="nn.Upsample(scale_factor=2)",
            parity=False,
        ),
    ),
}
