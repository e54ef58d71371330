"""Architecture registry: a name -> a backbone ``nn.Module`` mapping images to (N, D) features.

Names: ``democnn`` (the demo store's small CNN), torchvision ResNets ``resnet18|34|50``
with a ``-cifar`` variant (3x3 stem, no max-pool, for 28-32 px images), ``timm:<model>``
(any model in timm's registry, built without weights: the checkpoint supplies them), and
import paths ``package.module:factory``. Constructor arguments (``arch_args``) go to timm
or the factory; a factory gets only the arguments its signature accepts and must return
an ``nn.Module``. Which names store content may choose is ``ssl_eval.config.arch_policy``'s rule.

:func:`mlp_from_state_dict` rebuilds a projection head (lightly's ``ProjectionHead``,
solo-learn's ``projector``, the MoCo-v2 reference repo's ``fc`` MLP) from its weights alone.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ssl_eval.config.arch_policy import TIMM_PREFIX, is_import_path


class DemoCNN(nn.Module):
    """Three conv blocks (32/64/128 channels), global average pool -> 128-d features.

    Small enough to train with SSL on 2 CPU cores in seconds an epoch on 28x28 images.
    """

    feature_dim = 128

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The features of a batch of images.

        Args:
            x: float (N, in_channels, H, W) tensor.

        Returns:
            (N, feature_dim) features (globally average-pooled).
        """
        return self.pool(self.features(x)).flatten(1)


def _resnet(depth: int, cifar: bool) -> Callable[..., nn.Module]:
    def build(in_channels: int = 3) -> nn.Module:
        import torchvision

        model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        if cifar:
            model.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        elif in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        model.feature_dim = model.fc.in_features
        model.fc = nn.Identity()
        return model

    return build


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "democnn": DemoCNN,
    # a quarter of DemoCNN's multiply-adds (16/32/64 channels, 64-d features): the trajectory
    # set of docs/verdicts.md trains 48 runs x 30 epochs of it on two CPU cores
    "democnn-small": functools.partial(DemoCNN, widths=(16, 32, 64)),
}
for _depth in (18, 34, 50):
    ARCHITECTURES[f"resnet{_depth}"] = _resnet(_depth, cifar=False)
    ARCHITECTURES[f"resnet{_depth}-cifar"] = _resnet(_depth, cifar=True)


# Constructor arguments that would fetch or read weights: a checkpoint supplies the weights.
_WEIGHT_ARGS = frozenset({"pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir", "weights"})


def _timm(name: str, in_channels: int, arch_args: Mapping[str, Any]) -> nn.Module:
    import timm

    if not name or any(c in name for c in ":/\\") or not timm.is_model(name):
        raise ValueError(
            f"architecture {TIMM_PREFIX + name!r}: {name!r} is not a model in timm's registry (timm "
            f"{timm.__version__}); use a name from timm.list_models(), e.g. 'timm:vit_small_patch16_224'."
        )
    kwargs = {"in_chans": in_channels, "num_classes": 0, **arch_args}
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as exc:
        raise ValueError(
            f"architecture {TIMM_PREFIX + name!r}: constructor arguments {dict(arch_args)} do not fit: {exc}. Fix families.<family>.arch_args."
        ) from None


def _accepted(factory: Callable[..., Any], arch: str, in_channels: int, arch_args: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``factory`` is called with.

    ``in_channels`` only when its signature takes it; an ``arch_args`` entry it does not take is an
    error.

    Returns:
        Keyword name -> value.

    Raises:
        ValueError: an ``arch_args`` entry the factory does not take.
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature: call it as documented
        return {"in_channels": in_channels, **arch_args}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {n for n, p in params.items() if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    unknown = sorted(set(arch_args) - named) if not takes_any else []
    if unknown:
        raise ValueError(
            f"architecture {arch!r}: the factory takes no argument(s) {unknown}; it accepts {sorted(named)}. "
            "Fix families.<family>.arch_args."
        )
    kwargs = dict(arch_args)
    if takes_any or "in_channels" in named:
        kwargs.setdefault("in_channels", in_channels)
    return kwargs


def build_backbone(arch: str, *, in_channels: int, arch_args: Mapping[str, Any] | None = None) -> nn.Module:
    """Build an untrained backbone by registry name, ``timm:<model>`` or ``package.module:factory``.

    Whether ``arch`` may be imported at all is decided before (``ssl_eval.config.arch_policy``):
    this function trusts its caller.

    Args:
        arch: the architecture's name.
        in_channels: image channels the backbone takes.
        arch_args: constructor arguments for timm or the factory (never weight arguments).

    Returns:
        The untrained ``nn.Module``.

    Raises:
        ValueError: an unknown name, an import that fails, arguments that do not fit or would
            load weights, or a factory that returns no ``nn.Module``.
    """
    arch_args = dict(arch_args or {})
    refused = sorted(_WEIGHT_ARGS & set(arch_args))
    if refused:
        raise ValueError(f"architecture {arch!r}: arch_args {refused} would load weights; the checkpoint supplies them. Remove them.")
    if arch in ARCHITECTURES:
        factory: Callable[..., Any] = ARCHITECTURES[arch]
        model = factory(**_accepted(factory, arch, in_channels, arch_args))
    elif arch.startswith(TIMM_PREFIX):
        model = _timm(arch[len(TIMM_PREFIX):], in_channels, arch_args)
    elif is_import_path(arch):
        module_name, _, attr = arch.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"architecture {arch!r}: cannot import {attr!r} from {module_name!r} ({exc}).") from exc
        if not callable(factory):
            raise ValueError(f"architecture {arch!r}: {attr!r} is a {type(factory).__name__}, not a callable factory.")
        model = factory(**_accepted(factory, arch, in_channels, arch_args))
    else:
        raise ValueError(
            f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}, 'timm:<model name>', "
            "or give an import path 'package.module:factory'."
        )
    if not isinstance(model, nn.Module):
        raise ValueError(f"architecture {arch!r}: the factory returned a {type(model).__name__}, not a torch.nn.Module; return the backbone module.")
    return model


# What a weight initialisation calls: in-place writes of values (never of shapes). A meta tensor
# holds no values, so on it they do nothing, yet each runs through torch's Python reference
# decompositions, milliseconds a call: building a 2,000-block ViT on the meta device spent 20 s
# of CPU initialising weights nobody can read.
_VALUE_WRITES = frozenset({
    "uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
    "orthogonal_", "sparse_", "constant_", "zeros_", "ones_", "eye_", "dirac_", "fill_", "zero_", "clamp_", "clamp_min_",
    "clamp_max_", "erfinv_", "mul_", "div_", "add_", "sub_", "copy_", "exponential_", "random_", "bernoulli_", "geometric_",
    "log_normal_", "cauchy_", "fmod_", "abs_", "sqrt_", "neg_",
})


class _SkipValueWritesOnMeta(TorchFunctionMode):
    """Return a meta tensor unchanged from the value-only in-place calls of :data:`_VALUE_WRITES`.

    A torch function mode (thread-local, like ``torch.device``): every other call, and these on
    real tensors, runs as usual. Written here because neither torch nor timm offer a generic way to
    build a module without initialising it (``torch.nn.utils.skip_init`` takes one module class
    with a ``device`` argument; timm's ``weight_init="skip"`` is the ViTs' alone).
    """

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        if args and isinstance(args[0], torch.Tensor) and args[0].is_meta and getattr(func, "__name__", None) in _VALUE_WRITES:
            return args[0]
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def on_meta_device() -> Iterator[None]:
    """Build modules on the meta device in the block: shapes only, no memory, and no time spent initialising values.

    Yields:
        Nothing: modules built in the block have every tensor on the meta device.
    """
    with torch.device("meta"), _SkipValueWritesOnMeta():
        yield


def build_on_meta(arch: str, *, in_channels: int, arch_args: Mapping[str, Any] | None = None) -> nn.Module:
    """:func:`build_backbone` on the meta device (:func:`on_meta_device`): the architecture's shapes, no memory.

    Returns:
        The module, every tensor on the meta device.

    Raises:
        ValueError: see :func:`build_backbone`.
    """
    with on_meta_device():
        return build_backbone(arch, in_channels=in_channels, arch_args=arch_args)


def mlp_from_state_dict(state: dict[str, torch.Tensor]) -> nn.Sequential:
    """A projection MLP rebuilt from its weights: ``Linear [BatchNorm1d] (ReLU Linear [BatchNorm1d])*``.

    Modules are the key groups (``layers.0.weight`` -> module ``layers.0``) in the order of
    their last index. A 2-d ``weight`` is a ``Linear`` (bias if the key exists); a group with
    ``running_mean`` is a ``BatchNorm1d`` (affine if it has ``weight``). The weights do not
    say which non-linearity sat between the blocks: a ReLU goes before every Linear but the
    first, as in SimCLR, MoCo-v2, SimSiam, BYOL and solo-learn heads.

    Args:
        state: the head's state dict (keys relative to the head).

    Returns:
        The ``nn.Sequential`` with the weights loaded.

    Raises:
        ValueError: a module name without a trailing index, a module that is neither Linear nor
            BatchNorm1d, or no weights at all.
    """
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        module, _, param = key.rpartition(".")
        groups.setdefault(module, {})[param] = tensor

    def order(module: str) -> int:
        found = re.search(r"(\d+)$", module)
        if found is None:
            raise ValueError(f"cannot order projector module {module!r}: expected names ending in an index (layers.0, 0, ...).")
        return int(found.group(1))

    layers: list[nn.Module] = []
    for name in sorted(groups, key=order):
        params = groups[name]
        if "running_mean" in params:
            features = int(params["running_mean"].shape[0])
            layer: nn.Module = nn.BatchNorm1d(features, affine="weight" in params)
        elif "weight" in params and params["weight"].ndim == 2:
            if layers:
                layers.append(nn.ReLU(inplace=True))
            out_features, in_features = params["weight"].shape
            layer = nn.Linear(int(in_features), int(out_features), bias="bias" in params)
        else:
            raise ValueError(f"module {name!r} with {sorted(params)} is neither Linear nor BatchNorm1d.")
        layer.load_state_dict(params, strict=True)
        layers.append(layer)
    if not layers:
        raise ValueError("no projector weights.")
    return nn.Sequential(*layers)
