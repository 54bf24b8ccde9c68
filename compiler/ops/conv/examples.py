"""The test cases of the conv ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "conv1d": (
        Example("conv1d(8, 3)", "[B, 4, 16]", "[B, 8, 14]"),
        Example("conv1d(6, 3, stride=2, padding=1, groups=2)", "[B, 4, T]", "[B, 6, (T + 1)//2]"),
        Example("conv1d(4, 3, padding=same, dilation=2, bias=false)", "[B, 2, T]", "[B, 4, T]"),
        Example("conv1d(3, [4], padding=same)", "[B, 2, T + 1]", "[B, 3, T + 1]"),
        Example("conv1d(4, 3, padding=causal)", "[B, 2, 9]", "[B, 4, 9]"),
        Example("conv1d(4, 3, padding=causal, dilation=2, groups=2)", "[B, 2, T]", "[B, 4, T]"),
        Example(
            "conv1d(3, 2, padding=causal, stride=2, bias=false)", "[B, 2, T]", "[B, 3, (T + 1)//2]"
        ),
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
        # weight_norm: torch's parametrization, g and v under its state_dict keys
        Example(
            "conv1d(6, 3, groups=2, weight_norm=true)",
            "[B, 4, T]",
            "[B, 6, T - 2]",
            torch="nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 6, 3, groups=2))",
        ),
        Example(
            "conv1d(4, 3, padding=causal, dilation=2, weight_norm=true)", "[B, 2, T]", "[B, 4, T]"
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
        Example(
            "conv2d(6, 3, padding=same, bias=false, weight_norm=true)",
            "[B, 3, H, W]",
            "[B, 6, H, W]",
            torch='nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 6, 3, padding="same", '
            "bias=False))",
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
        # torch's weight_norm normalizes axis 0, here the input channels: g is [4, 1, 1, 1]
        Example(
            "conv_transpose2d(8, 3, stride=2, weight_norm=true)",
            "[B, 4, H, W]",
            "[B, 8, 2*H + 1, 2*W + 1]",
            torch="nn.utils.parametrizations.weight_norm(nn.ConvTranspose2d(4, 8, 3, stride=2))",
        ),
    ),
    "maxpool1d": (
        Example("maxpool1d(2)", "[B, 4, T]", "[B, 4, T//2]"),
        Example("maxpool1d(3, stride=2, padding=1)", "[B, 4, 10]", "[B, 4, 5]"),
        # ceil_mode: the last, partial window counts; symbolic T stays symbolic
        Example("maxpool1d(3, stride=2, ceil_mode=true)", "[B, 4, 10]", "[B, 4, 5]"),
        Example("maxpool1d(2, ceil_mode=true)", "[B, 4, T]", "[B, 4, (T + 1)//2]"),
        # the window that would start in the right padding is dropped, as in torch
        Example(
            "maxpool1d(2, stride=3, padding=1, ceil_mode=true)", "[B, 2, T]", "[B, 2, T//3 + 1]"
        ),
        Example("maxpool1d(2, stride=3, padding=1, ceil_mode=true)", "[B, 2, 10]", "[B, 2, 4]"),
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
        # GoogLeNet's and SqueezeNet's pools
        Example("maxpool2d(3, stride=2, ceil_mode=true)", "[B, 4, 8, 8]", "[B, 4, 4, 4]"),
        Example("maxpool2d(3, stride=2, ceil_mode=true)", "[B, C, H, W]", "[B, C, H//2, W//2]"),
        Example(
            "maxpool2d([3, 2], stride=[1, 2], padding=[1, 0], ceil_mode=true)",
            "[B, 2, 5, 7]",
            "[B, 2, 5, 4]",
        ),
        # the height drops a window, the width keeps a partial one
        Example(
            "maxpool2d([2, 3], stride=[3, 2], padding=[1, 0], ceil_mode=true)",
            "[B, 2, 10, 8]",
            "[B, 2, 4, 4]",
        ),
        Example(
            "maxpool2d(3, stride=2, ceil_mode=true)",
            "[B, 3, H, W]",
            "[B, 3, H//2, W//2]",
            torch="nn.MaxPool2d(3, stride=2, ceil_mode=True)",
            parity=False,
        ),
    ),
    "avgpool1d": (
        Example("avgpool1d(2)", "[B, 3, 9]", "[B, 3, 4]"),
        Example("avgpool1d(4, stride=2, padding=2)", "[B, 3, T]", "[B, 3, T//2 + 1]"),
        Example("avgpool1d(2)", "[B, 3, T]", "[B, 3, T//2]", torch="nn.AvgPool1d(2)", parity=False),
        Example("avgpool1d(3, stride=2, ceil_mode=true)", "[B, 3, 8]", "[B, 3, 4]"),
        Example(
            "avgpool1d(4, stride=2, padding=2, count_include_pad=false)", "[B, 3, 9]", "[B, 3, 5]"
        ),
        Example(
            "avgpool1d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)",
            "[B, 3, T]",
            "[B, 3, T//2 + 1]",
        ),
    ),
    "avgpool2d": (
        Example("avgpool2d(2)", "[B, 3, H, W]", "[B, 3, H//2, W//2]"),
        Example("avgpool2d(3, stride=2, padding=1)", "[B, 2, 7, 8]", "[B, 2, 4, 4]"),
        Example("avgpool2d(3, stride=2, ceil_mode=true)", "[B, 2, 6, 7]", "[B, 2, 3, 3]"),
        Example("avgpool2d(2, ceil_mode=true)", "[B, 2, H, W]", "[B, 2, (H + 1)//2, (W + 1)//2]"),
        Example(
            "avgpool2d(3, stride=1, padding=1, count_include_pad=false)",
            "[B, 2, H, W]",
            "[B, 2, H, W]",
        ),
        Example(
            "avgpool2d([3, 2], stride=2, padding=1, ceil_mode=true, count_include_pad=false)",
            "[B, 2, 7, 6]",
            "[B, 2, 4, 4]",
        ),
        Example(
            "avgpool2d([2, 3], stride=[3, 2], padding=[1, 1], ceil_mode=true)",
            "[B, 2, 10, 8]",
            "[B, 2, 4, 5]",
        ),
        Example(
            "avgpool2d(3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)",
            "[B, 2, H, W]",
            "[B, 2, H//2 + 1, W//2 + 1]",
            torch="nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)",
            parity=False,
        ),
    ),
    # adaptive pooling: ONNX has no such op, so the lowering needs concrete input sizes
    # where an output size is above 1 (rows with a symbolic one check shapes only)
    "adaptive_avgpool1d": (
        Example("adaptive_avgpool1d(1)", "[B, 3, T]", "[B, 3, 1]"),
        Example("adaptive_avgpool1d(4)", "[B, 3, 12]", "[B, 3, 4]"),
        Example("adaptive_avgpool1d(4)", "[B, 3, 10]", "[B, 3, 4]"),
        Example("adaptive_avgpool1d([5])", "[B, 2, 3]", "[B, 2, 5]"),
        Example(
            "adaptive_avgpool1d(6)",
            "[B, 3, T]",
            "[B, 3, 6]",
            torch="nn.AdaptiveAvgPool1d(6)",
            parity=False,
        ),
    ),
    "adaptive_avgpool2d": (
        Example("adaptive_avgpool2d(1)", "[B, 8, H, W]", "[B, 8, 1, 1]"),
        Example("adaptive_avgpool2d(2)", "[B, 3, 8, 6]", "[B, 3, 2, 2]"),
        Example("adaptive_avgpool2d([3, 2])", "[B, 3, 7, 5]", "[B, 3, 3, 2]"),
        Example("adaptive_avgpool2d([1, 3])", "[B, 2, H, 9]", "[B, 2, 1, 3]"),
        Example("adaptive_avgpool2d([6, 6])", "[B, 16, H, W]", "[B, 16, 6, 6]", parity=False),
        Example(
            "adaptive_avgpool2d([6, 6])",
            "[B, 256, H, W]",
            "[B, 256, 6, 6]",
            torch="nn.AdaptiveAvgPool2d((6, 6))",
            parity=False,
        ),
    ),
    "adaptive_maxpool2d": (
        Example("adaptive_maxpool2d(1)", "[B, 8, H, W]", "[B, 8, 1, 1]"),
        Example("adaptive_maxpool2d(2)", "[B, 3, 8, 6]", "[B, 3, 2, 2]"),
        Example("adaptive_maxpool2d([4, 3])", "[B, 3, 6, 7]", "[B, 3, 4, 3]"),
        Example("adaptive_maxpool2d([2, 1])", "[B, 2, 5, W]", "[B, 2, 2, 1]"),
        Example(
            "adaptive_maxpool2d(7)",
            "[B, 3, H, W]",
            "[B, 3, 7, 7]",
            torch="nn.AdaptiveMaxPool2d(7)",
            parity=False,
        ),
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

ERRORS: dict[str, tuple[Failure, ...]] = {
    "conv1d": (
        Failure(
            "conv1d(4, 3, weight_norm=1)",
            "argument 'weight_norm': expected true or false, got number 1",
            26,
            "[B, 3, 8]",
        ),
    ),
    "conv2d": (
        Failure(
            "conv2d(4, 3, padding=causal)",
            "conv2d(padding=causal) is not supported: causal padding is for conv1d",
            1,
            "[B, 3, 8, 8]",
        ),
    ),
    "conv_transpose2d": (
        Failure(
            "conv_transpose2d(4, 3, padding=causal)",
            "conv_transpose2d(padding=causal) is not supported: causal padding is for conv1d",
            1,
            "[B, 3, 8, 8]",
        ),
    ),
    "maxpool2d": (
        Failure(
            "maxpool2d(2, ceil_mode=1)",
            "argument 'ceil_mode': expected true or false, got number 1",
            24,
            "[B, 3, 8, 8]",
        ),
        Failure(
            "maxpool2d(3, ceil_mode=true)",
            "maxpool2d's kernel 3 is larger than the input's padded height 2",
            1,
            "[B, 3, 2, 8]",
        ),
    ),
    "avgpool1d": (
        Failure(
            "avgpool1d(2, count_include_pad=0)",
            "argument 'count_include_pad': expected true or false, got number 0",
            32,
            "[B, 3, 8]",
        ),
    ),
    "adaptive_avgpool2d": (
        Failure(
            "adaptive_avgpool2d([6, 6, 6])",
            "adaptive_avgpool2d's output_size [6, 6, 6] has 3 entries, but the op has 2 spatial",
            1,
            "[B, 3, 8, 8]",
        ),
        Failure(
            "adaptive_avgpool2d(0)",
            "argument 'output_size': expected an integer >= 1 or a list of integers >= 1",
            20,
            "[B, 3, 8, 8]",
        ),
        Failure(
            "adaptive_avgpool2d(6)",
            "adaptive_avgpool2d needs [B, C, H, W] (batch, channels, height, width), got [B, 16]",
            1,
        ),
    ),
    "adaptive_maxpool2d": (
        Failure(
            "adaptive_maxpool2d(2)",
            "adaptive_maxpool2d needs [B, C, H, W] (batch, channels, height, width), got [B, 3, T]",
            1,
            "[B, 3, T]",
        ),
    ),
    "adaptive_avgpool1d": (
        Failure(
            "adaptive_avgpool1d([2, 2])",
            "adaptive_avgpool1d's output_size [2, 2] has 2 entries, but the op has 1 spatial axis",
            1,
            "[B, 3, 8]",
        ),
    ),
}
