"""The zoo (specs/zoo/*.yaml): published architectures at their published sizes.

Every zoo spec states, in its leading comment lines, the parameter count its source
publishes: `# published: 25,557,032 parameters (source: ...)`. For every spec, whoever
wrote it, this file checks the spec, compares dlc's count with that figure, and runs
`dlc compile --verify`'s comparison of the torch module with onnxruntime (the specs of
BIG parameters or more only under `-m zoo`). Under `-m zoo` it also loads the weights of
torchvision's and Hugging Face's own randomly initialised models into dlc's torch module
and compares the outputs; those tests skip when torchvision or transformers is missing
(`pip install ".[zoo]"`). The DCGAN pair is compared with the PyTorch tutorial's modules
in the default suite, and U-Net with milesial's UNet under `-m zoo`, both written out below.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from dlc.compiler.pipeline import Checked, check_file
from dlc.runtime.compile import build_onnx, choose_sizes, resolve_weights, verify

ZOO = sorted((ROOT / "specs" / "zoo").glob("*.yaml"))
PUBLISHED = re.compile(r"# published: (\d{1,3}(?:,\d{3})*) parameters \(source: (.+)\)")
# Verify builds the ONNX graph in memory and runs both models: 10 to 20 s and 3.6 GB for
# BERT-base and GPT-2, 2 to 5 s for ResNet-50 and U-Net, so the specs this large verify
# only under `-m zoo`.
BIG = 25_000_000


def published(path: Path) -> tuple[int, str] | None:
    """The `# published:` figure and source in a spec's leading comment lines (None
    unless there is exactly one)."""
    found = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if m := PUBLISHED.fullmatch(line.rstrip()):
            found.append((int(m[1].replace(",", "")), m[2]))
    return found[0] if len(found) == 1 else None


def zoo_cases(mark_big: bool = False) -> list[Any]:
    """A case per zoo spec; with `mark_big`, those of BIG parameters or more marked zoo."""
    cases = []
    for p in ZOO:
        big = mark_big and (published(p) or (0, ""))[0] >= BIG
        cases.append(pytest.param(p, id=p.stem, marks=[pytest.mark.zoo] if big else []))
    return cases


def test_the_zoo_is_there() -> None:
    names = {p.stem for p in ZOO}
    assert {"resnet50", "mobilenet_v2", "efficientnet_b0", "unet", "dcgan_generator",
            "dcgan_discriminator", "bert_base", "gpt2"} <= names  # fmt: skip


@pytest.mark.parametrize("path", zoo_cases())
def test_count_is_the_published_one(path: Path) -> None:
    """`dlc check` passes (front end only) and `dlc summary`'s count is the published one."""
    stated = published(path)
    assert stated, f"{path.name}: no single '# published: N parameters (source: ...)' line"
    count, source = stated
    checked = check_file(path)
    assert checked.graph.num_params == count, (
        f"{path.name}: dlc counts {checked.graph.num_params:,}, {source} publishes {count:,}"
    )


# `--size` for verify where its default does not test much: on 3x3 images MobileNetV2's
# depthwise 3x3 convs see one pixel of their kernel, and EfficientNet-B0's calibrated
# batchnorms, fitted on 8 images of one pixel, magnify other inputs (logits of 95 there).
VERIFY_SIZES = {"mobilenet_v2": {"H": 32, "W": 32}, "efficientnet_b0": {"H": 32, "W": 32}}


@pytest.mark.parametrize("path", zoo_cases(mark_big=True))
def test_verify(path: Path) -> None:
    """`dlc compile SPEC --verify` (compile_spec's steps without the files): torch and
    onnxruntime agree within verify's tolerance, on an output large enough to judge
    (EfficientNet-B0's needs weights redrawn and its batchnorms calibrated: 1e-17 with its
    initial weights, 5e-8 with redrawn ones)."""
    checked = check_file(path)
    sizes = choose_sizes(checked, VERIFY_SIZES.get(path.stem))
    weights = resolve_weights(checked, None)
    result = verify(checked, weights, build_onnx(checked, weights, None), sizes)
    assert result.passed, "\n".join(result.report())
    if path.stem == "efficientnet_b0":  # the one that needs its batchnorms calibrated
        assert result.report()[0].endswith("and batchnorm statistics taken from the inputs")


# --- against the published implementations --------------------------------------------


def load_zoo(name: str) -> tuple[Checked, Any]:
    """A zoo spec checked, and its torch module (eval mode, fresh weights)."""
    from dlc.compiler.lower.torch import to_torch

    checked = check_file(ROOT / "specs" / "zoo" / f"{name}.yaml")
    return checked, to_torch(checked.graph, resolve_weights(checked, None)).eval()


def by_order(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """Their state_dict under our names, matched in order: the same count, and each pair
    of the same shape and the same kind (the last part of the name: weight, bias,
    running_mean, ...)."""
    assert len(ours) == len(theirs), f"{len(ours)} tensors here, {len(theirs)} there"
    out = {}
    for (a, x), (b, y) in zip(ours.items(), theirs.items(), strict=True):
        assert tuple(x.shape) == tuple(y.shape), f"{a} {tuple(x.shape)} vs {b} {tuple(y.shape)}"
        assert a.rsplit(".", 1)[-1] == b.rsplit(".", 1)[-1], f"{a} vs {b}"
        out[a] = y
    return out


def randomise_norms(module: Any, seed: int = 0) -> None:
    """Batchnorm affine parameters and running statistics away from their initial 1 and 0,
    so that a tensor loaded into the wrong place shows in the output."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))


def assert_close(ours: Any, theirs: Any, rtol: float = 1e-4) -> float:
    """|ours - theirs| <= rtol x theirs' largest magnitude; returns the relative error."""
    a, b = ours.detach().double(), theirs.detach().double()
    assert a.shape == b.shape
    scale = float(b.abs().max())
    err = float((a - b).abs().max()) / scale
    assert scale > 1e-3 and err <= rtol, f"relative error {err:.3g} (scale {scale:.3g})"
    return err


def compare_sequential(name: str, reference: Any, inputs: dict[str, Any]) -> None:
    """Load `reference`'s weights (randomised norms) into the zoo spec's module by order,
    and compare the outputs in eval mode."""
    import torch

    randomise_norms(reference)
    checked, module = load_zoo(name)
    module.load_state_dict(by_order(module.state_dict(), reference.state_dict()))
    with torch.no_grad():
        assert_close(module(**inputs), reference.eval()(*inputs.values()))


def dcgan_modules() -> tuple[Any, Any]:
    """The generator and discriminator of PyTorch's DCGAN tutorial (nz=100, ngf=ndf=64,
    nc=3), each the tutorial's nn.Sequential `main`."""
    from torch import nn

    nz, ngf, ndf, nc = 100, 64, 64, 3

    def up(i: int, o: int, stride: int = 2, padding: int = 1) -> list[Any]:
        return [nn.ConvTranspose2d(i, o, 4, stride, padding, bias=False), nn.BatchNorm2d(o),
                nn.ReLU(True)]  # fmt: skip

    def down(i: int, o: int) -> list[Any]:
        return [nn.Conv2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.LeakyReLU(0.2, True)]

    generator = nn.Sequential(
        *up(nz, ngf * 8, 1, 0), *up(ngf * 8, ngf * 4), *up(ngf * 4, ngf * 2), *up(ngf * 2, ngf),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )  # fmt: skip
    discriminator = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        *down(ndf, ndf * 2), *down(ndf * 2, ndf * 4), *down(ndf * 4, ndf * 8),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )  # fmt: skip
    return generator, discriminator


def test_dcgan_is_the_tutorials() -> None:
    import torch

    generator, discriminator = dcgan_modules()
    torch.manual_seed(0)
    compare_sequential("dcgan_generator", generator, {"z": torch.randn(2, 100, 1, 1)})
    compare_sequential("dcgan_discriminator", discriminator, {"x": torch.randn(2, 3, 64, 64)})


def unet_module() -> Any:
    """milesial/Pytorch-UNet's UNet(n_channels=3, n_classes=2) (bilinear=False) written
    anew: its modules in its order (inc, down1..4, up1..4 as transposed conv then double
    conv, outc) and its forward, whose padding is zero on sides that are multiples of 16."""
    import torch
    from torch import nn

    def double_conv(i: int, o: int) -> Any:
        return nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True),
            nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True),
        )  # fmt: skip

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inc = double_conv(3, 64)
            self.downs = nn.ModuleList(
                nn.Sequential(nn.MaxPool2d(2), double_conv(c, 2 * c)) for c in (64, 128, 256, 512)
            )
            self.ups = nn.ModuleList(
                nn.ModuleList([nn.ConvTranspose2d(2 * c, c, 2, stride=2), double_conv(2 * c, c)])
                for c in (512, 256, 128, 64)
            )
            self.outc = nn.Conv2d(64, 2, 1)

        def forward(self, x: Any) -> Any:
            skips = [self.inc(x)]
            for down in self.downs:
                skips.append(down(skips[-1]))
            x = skips.pop()
            for up, conv in self.ups:
                x = conv(torch.cat([skips.pop(), up(x)], dim=1))
            return self.outc(x)

    return UNet()


@pytest.mark.zoo
def test_unet_is_milesials() -> None:
    import torch

    torch.manual_seed(0)
    compare_sequential("unet", unet_module(), {"x": torch.randn(2, 3, 32, 32)})


def import_or_skip(name: str) -> Any:
    """pytest.importorskip, also where the torchvision wheel is a CUDA build beside a CPU
    torch (PyPI's torchvision 0.28.0 with torch 2.13.0+cpu): its C++ ops do not load,
    and registering their meta kernels then fails with "operator torchvision::nms does
    not exist", also inside `import transformers`, which imports torchvision. The models
    use none of those ops, so that registration is skipped."""
    try:
        return pytest.importorskip(name)
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        del sys.modules[key]
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("meta_registrations")
    return importlib.import_module(name)


@pytest.mark.zoo
@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "efficientnet_b0"])
def test_torchvision_weights(name: str) -> None:
    """torchvision.models.NAME(weights=None), its random weights loaded into dlc's module
    by order and shape: the same logits."""
    import torch

    models = import_or_skip("torchvision.models")
    torch.manual_seed(0)
    reference = getattr(models, name)(weights=None)
    compare_sequential(name, reference, {"x": torch.randn(2, 3, 64, 64)})


def _layers(n: int, f: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    return {k: v for i in range(n) for k, v in f(i).items()}


def bert_weights(hf: Mapping[str, Any]) -> dict[str, Any]:
    """Hugging Face BertModel's state_dict under bert_base.yaml's names: query, key and
    value stacked into torch's in_proj_weight."""
    import torch

    def layer(i: int) -> dict[str, Any]:
        h, o = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        qkv = [f"{h}attention.self.{x}" for x in ("query", "key", "value")]
        return {
            f"{o}self_attn.in_proj_weight": torch.cat([hf[f"{q}.weight"] for q in qkv]),
            f"{o}self_attn.in_proj_bias": torch.cat([hf[f"{q}.bias"] for q in qkv]),
            **{f"{o}{ours}.{p}": hf[f"{h}{theirs}.{p}"] for p in ("weight", "bias")
               for ours, theirs in [("self_attn.out_proj", "attention.output.dense"),
                                    ("norm1", "attention.output.LayerNorm"),
                                    ("linear1", "intermediate.dense"),
                                    ("linear2", "output.dense"),
                                    ("norm2", "output.LayerNorm")]},
        }  # fmt: skip

    return {
        "word_embeddings.weight": hf["embeddings.word_embeddings.weight"],
        "token_type_embeddings.weight": hf["embeddings.token_type_embeddings.weight"],
        "embeddings.positional_encoding.weight": hf["embeddings.position_embeddings.weight"],
        "embeddings.layernorm.weight": hf["embeddings.LayerNorm.weight"],
        "embeddings.layernorm.bias": hf["embeddings.LayerNorm.bias"],
        **_layers(12, layer),
        "pooler.dense.weight": hf["pooler.dense.weight"],
        "pooler.dense.bias": hf["pooler.dense.bias"],
    }


def gpt2_weights(hf: Mapping[str, Any]) -> dict[str, Any]:
    """Hugging Face GPT2LMHeadModel's state_dict under gpt2.yaml's names: its Conv1D
    weights ([in, out]) transposed to nn.Linear's [out, in]; lm_head is wte's table."""

    def layer(i: int) -> dict[str, Any]:
        h, o = f"transformer.h.{i}.", f"h.transformer_encoder.layers.{i}."
        pairs = [("self_attn.in_proj", "attn.c_attn"), ("self_attn.out_proj", "attn.c_proj"),
                 ("linear1", "mlp.c_fc"), ("linear2", "mlp.c_proj")]  # fmt: skip
        out = {f"{o}{a}_weight" if a.endswith("in_proj") else f"{o}{a}.weight":
               hf[f"{h}{b}.weight"].T for a, b in pairs}  # fmt: skip
        out |= {f"{o}{a}_bias" if a.endswith("in_proj") else f"{o}{a}.bias": hf[f"{h}{b}.bias"]
                for a, b in pairs}  # fmt: skip
        out |= {f"{o}{a}.{p}": hf[f"{h}{b}.{p}"] for a, b in [("norm1", "ln_1"), ("norm2", "ln_2")]
                for p in ("weight", "bias")}  # fmt: skip
        return out

    return {
        "wte.weight": hf["transformer.wte.weight"],
        "h.positional_encoding.weight": hf["transformer.wpe.weight"],
        **_layers(12, layer),
        "ln_f.weight": hf["transformer.ln_f.weight"],
        "ln_f.bias": hf["transformer.ln_f.bias"],
    }


@pytest.mark.zoo
def test_bert_is_hugging_faces() -> None:
    """transformers.BertModel(BertConfig()), random weights loaded into bert_base.yaml's
    module: the same hidden states and pooled output, with one sequence padded."""
    import torch

    transformers = import_or_skip("transformers")
    torch.manual_seed(0)
    reference = transformers.BertModel(transformers.BertConfig()).eval()
    checked, module = load_zoo("bert_base")
    module.load_state_dict(bert_weights(reference.state_dict()))
    ids = torch.randint(0, 30522, (2, 16))
    types_ = torch.randint(0, 2, (2, 16))
    mask = (torch.arange(16) < torch.tensor([[16], [9]])).long()  # the second padded
    with torch.no_grad():
        ours = module(input_ids=ids, token_type_ids=types_, attention_mask=mask)
        theirs = reference(input_ids=ids, token_type_ids=types_, attention_mask=mask)
    assert_close(ours["last_hidden_state"], theirs.last_hidden_state)
    assert_close(ours["pooler_output"], theirs.pooler_output)


@pytest.mark.zoo
def test_gpt2_is_hugging_faces() -> None:
    """transformers.GPT2LMHeadModel(GPT2Config()), random weights loaded into gpt2.yaml's
    module: the same logits, the head tied to wte in both."""
    import torch

    transformers = import_or_skip("transformers")
    torch.manual_seed(0)
    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    checked, module = load_zoo("gpt2")
    module.load_state_dict(gpt2_weights(reference.state_dict()))
    ids = torch.randint(0, 50257, (2, 16))
    with torch.no_grad():
        ours, theirs = module(input_ids=ids), reference(input_ids=ids).logits
    assert_close(ours, theirs)
