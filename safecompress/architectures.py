"""The registry of model factories that a name read from a file may select.

A sparse artifact records the architecture it was compressed from (``arch`` plus ``arch_kwargs``)
so it reloads without code from the user. A file is untrusted input, so that name is looked up
here and nowhere else: built-in factories, torchvision's own model registry (``torchvision:NAME``,
built with ``weights=None``) and the factories plugins register through
``safecompress_register_models``. Nothing is imported by name, no dotted attribute chain is
followed, and the recorded keyword arguments must be JSON scalars that the factory's signature
names. Anything else is refused with one line that names ``--arch`` — the user's own, explicit way
to choose code.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from safecompress.hookspecs import hookimpl

if TYPE_CHECKING:
    import pluggy
    from torch import nn

TORCHVISION_PREFIX = "torchvision:"
JSON_SCALARS = (str, int, float, bool, type(None))
# Bounds on a recorded argument: sizes are checked against the file's tensors, but a 10**30 reaches
# C code as an overflow and a megabyte string is no architecture setting.
MAX_RECORDED_INT = 2**31 - 1
MAX_RECORDED_TEXT = 256
# torchvision builders forward **kwargs to the model class; ``weights`` would download, ``progress``
# only prints. A file may set the head size, nothing else.
TORCHVISION_KWARGS = ("num_classes",)
HOOK = "safecompress_register_models"


class ArchitectureError(ValueError):
    """A recorded architecture that is not registered, or arguments its factory does not take."""


@hookimpl(specname=HOOK)
def register_builtin_models(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """The reference architectures, under the names earlier artifacts recorded."""
    from safecompress import models

    register("safecompress.models:small_cnn", models.small_cnn)
    register("safecompress.models:resnet18_small_input", models.resnet18_small_input)
    register("safecompress.models:tiny_bert", models.tiny_bert)


def builtin_architectures() -> dict[str, Callable[..., Any]]:
    """The built-in registry alone: what :func:`load_model` uses without a plugin manager."""
    found: dict[str, Callable[..., Any]] = {}
    register_builtin_models(lambda name, factory: found.__setitem__(name, factory))
    return found


def registered_architectures(pm: Optional["pluggy.PluginManager"]) -> dict[str, Callable[..., Any]]:
    """Built-ins plus every plugin's ``safecompress_register_models``; later plugins override."""
    if pm is None:
        return builtin_architectures()
    found: dict[str, Callable[..., Any]] = {}

    def register(name: str, factory: Callable[..., Any]) -> None:
        if not isinstance(name, str) or not name or not callable(factory):
            raise ArchitectureError(f"safecompress_register_models: register(name, factory) needs a name and a callable, got {name!r}")
        found[name] = factory

    pm.hook.safecompress_register_models(register=register)
    return found


def torchvision_builder(name: str) -> Optional[Callable[..., "nn.Module"]]:
    """torchvision's builder for ``name`` with every pretrained-weight argument off, or None.

    ``weights=None`` alone is not enough: detection builders also take ``weights_backbone``, whose
    default downloads ImageNet weights. Every parameter whose name starts with ``weights`` is None,
    and the only argument left to set is ``num_classes``.
    """
    import torchvision.models

    if name not in torchvision.models.list_models():
        return None
    builder = torchvision.models.get_model_builder(name)
    no_weights = {p: None for p in inspect.signature(builder).parameters if p.startswith("weights")}

    def build(num_classes: Optional[int] = None) -> "nn.Module":
        head = {} if num_classes is None else {"num_classes": num_classes}
        return builder(**no_weights, **head)

    build.__name__ = f"torchvision:{name}"
    return build


def accepted_names(factory: Callable[..., Any]) -> tuple[str, ...]:
    """Keyword arguments a file may pass: the factory's named parameters (never ``**kwargs``)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in parameters if p.kind in kinds)


def check_recorded_kwargs(kwargs: Any, accepted: tuple[str, ...], label: str) -> dict[str, Any]:
    """``kwargs`` as a plain dict of JSON scalars the factory names, or :class:`ArchitectureError`."""
    if not isinstance(kwargs, Mapping):
        raise ArchitectureError(f"the recorded arguments of {label} are {type(kwargs).__name__}, not a JSON object")
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if not isinstance(key, str) or key not in accepted:
            takes = ", ".join(accepted) or "no arguments"
            raise ArchitectureError(f"{label} takes no argument {key!r} (it takes {takes})")
        if not isinstance(value, JSON_SCALARS) or (isinstance(value, float) and not math.isfinite(value)):
            raise ArchitectureError(f"argument {key!r} of {label} must be a finite JSON scalar, not {type(value).__name__}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_RECORDED_INT:
            raise ArchitectureError(f"argument {key!r} of {label} is {value}, beyond ±{MAX_RECORDED_INT}")
        if isinstance(value, str) and len(value) > MAX_RECORDED_TEXT:
            raise ArchitectureError(f"argument {key!r} of {label} is a string of {len(value)} characters, over {MAX_RECORDED_TEXT}")
        checked[key] = value
    return checked


def resolve_recorded(reference: Any, kwargs: Any, registry: Mapping[str, Callable[..., Any]]) -> Callable[[], "nn.Module"]:
    """A zero-argument builder for the architecture a file recorded, or :class:`ArchitectureError`.

    ``reference`` must be ``torchvision:NAME`` or a registered name, spelt exactly; the arguments are
    checked against the factory's signature here, before anything is built.
    """
    label = repr(reference)
    factory: Optional[Callable[..., Any]] = None
    accepted: tuple[str, ...] = ()
    if isinstance(reference, str) and reference in registry:
        factory = registry[reference]
        accepted = accepted_names(factory)
    elif isinstance(reference, str) and reference.startswith(TORCHVISION_PREFIX):
        factory = torchvision_builder(reference.removeprefix(TORCHVISION_PREFIX))
        accepted = TORCHVISION_KWARGS
    if factory is None:
        raise ArchitectureError(f"the file names architecture {label}, which is not a registered model factory")
    checked = check_recorded_kwargs(kwargs, accepted, label)
    chosen = factory
    return lambda: chosen(**checked)
