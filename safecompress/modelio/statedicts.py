"""Architectures and state dicts: building the model a bare state dict needs (``--arch``, a
``model_factory``) and copying weights into it, or saying in one line why they do not fit."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from safecompress.errors import UsageError
from safecompress.importing import import_callable
from safecompress.textsafe import one_line

if TYPE_CHECKING:
    import torch
    from torch import nn

STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model")
# Prefixes that wrappers add to every key: DataParallel/DistributedDataParallel, torch.compile.
KEY_PREFIXES = ("module.", "_orig_mod.")
ARCH_SYNTAX = "--arch torchvision:resnet18 --num-classes 10, or --arch package.module:factory"


def _call_factory(factory: Callable[..., Any], kwargs: Mapping[str, Any], label: str) -> "nn.Module":
    """``factory(**kwargs)``, passing only the arguments it takes; it must give a module.

    A conftest ``model_factory()`` without parameters and a ``small_cnn(num_classes=...)`` both work.
    """
    from torch import nn

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: pass everything
        accepted = dict(kwargs)
    else:
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        accepted = {k: v for k, v in kwargs.items() if takes_any or k in parameters}
    try:
        model = factory(**accepted)
    except (Exception, SystemExit) as exc:  # user code: report it in one line, as a usage problem
        raise UsageError(f"building the architecture {label} failed: {type(exc).__name__}: {one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"the architecture {label} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def resolve_architecture(arch: Optional[str]) -> tuple[Callable[..., Any], str]:
    """The factory ``arch`` names and its label: ``torchvision:NAME`` (every pretrained-weight
    argument off: nothing is downloaded) or ``package.module:function`` (the user's own code)."""
    from safecompress.architectures import torchvision_builder

    if not arch:
        raise UsageError(f"no architecture given: pass {ARCH_SYNTAX}")
    module_name, colon, attribute = arch.partition(":")
    if not (colon and module_name and attribute):
        raise UsageError(f"--arch {arch!r} is not an architecture reference: use {ARCH_SYNTAX}")
    if module_name == "torchvision":
        build = torchvision_builder(attribute)
        if build is None:
            import torchvision.models

            known = sorted(torchvision.models.list_models())
            raise UsageError(f"unknown torchvision architecture {attribute!r} (--arch {arch}); e.g. {', '.join(known[:5])}")
        return build, arch
    return import_callable(arch, f"--arch {arch}"), arch


def build_architecture(arch: Optional[str] = None, num_classes: Optional[int] = None, factory: Any = None, **arch_kwargs: Any) -> "nn.Module":
    """An untrained model to load weights into, from a ``factory`` (callable or module) or ``arch``
    (see :func:`resolve_architecture`). The factory gets ``num_classes`` (when given) and
    ``arch_kwargs`` (what a sparse artifact recorded), as far as its signature takes them.
    """
    from torch import nn

    kwargs = dict(arch_kwargs)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if factory is not None:
        if isinstance(factory, nn.Module):
            return factory
        return _call_factory(factory, kwargs, getattr(factory, "__name__", "model_factory"))
    build, label = resolve_architecture(arch)
    return _call_factory(build, kwargs, label)


def find_state_dict(obj: Any) -> Optional[dict[str, "torch.Tensor"]]:
    """The tensors of a state dict, plain or inside a checkpoint wrapper; None when there are none."""
    import torch

    def tensors_only(value: Any) -> bool:
        return isinstance(value, Mapping) and bool(value) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())

    if tensors_only(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_WRAPPERS:
            if tensors_only(obj.get(key)):
                return dict(obj[key])
    return None


def _strip_wrapper_prefix(state_dict: dict[str, "torch.Tensor"], expected: Mapping[str, Any]) -> dict[str, "torch.Tensor"]:
    """Keys saved through DataParallel or torch.compile carry a prefix the bare model lacks."""
    for prefix in KEY_PREFIXES:
        if all(k.startswith(prefix) for k in state_dict) and not any(k.startswith(prefix) for k in expected):
            return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def load_state_dict_into(model: "nn.Module", state_dict: dict[str, "torch.Tensor"], source: str, label: str) -> "nn.Module":
    """Copy ``state_dict`` into ``model``, or say in one line why they do not fit.

    Keys missing from the file are accepted when they alias a present tensor (tied weights, which
    safetensors stores once).
    """
    expected = model.state_dict()
    state_dict = _strip_wrapper_prefix(state_dict, expected)

    def storage_key(t: "torch.Tensor") -> tuple[Any, ...]:
        return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())

    present = {storage_key(expected[k]) for k in state_dict if k in expected}
    missing = [k for k in expected if k not in state_dict and storage_key(expected[k]) not in present]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [k for k in state_dict if k in expected and tuple(state_dict[k].shape) != tuple(expected[k].shape)]
    # A half-precision file loads into a float model; an integer or bool tensor would be cast silently.
    miskinded = [k for k in state_dict if k in expected and state_dict[k].is_floating_point() != expected[k].is_floating_point()]
    problems = []
    if miskinded:
        k = miskinded[0]
        problems.append(f"{k!r} is {state_dict[k].dtype} in the file but {expected[k].dtype} in the model{_more(miskinded)}")
    if mismatched:
        k = mismatched[0]
        problems.append(f"{k!r} has shape {tuple(state_dict[k].shape)} in the file but {tuple(expected[k].shape)} in the model{_more(mismatched)}")
    if missing:
        problems.append(f"missing key {missing[0]!r}{_more(missing)}")
    if unexpected:
        problems.append(f"unexpected key {unexpected[0]!r}{_more(unexpected)}")
    if problems:
        raise UsageError(f"the weights in {source} do not fit {label}: " + "; ".join(problems) + " (check --arch and --num-classes)")
    try:
        model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # a copy torch cannot make (a dtype it has no kernel for)
        raise UsageError(f"the weights in {source} do not fit {label}: {one_line(exc)}") from None
    return model
