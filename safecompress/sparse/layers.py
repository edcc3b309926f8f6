"""Which parameters get a mask, and the per-layer table users read to check a sparse model.

Maskable by default: the weight of every Conv1d/2d/3d, Linear (and its subclasses, such as the output
projection of ``nn.MultiheadAttention``) and transformers' GPT-2 style ``Conv1D``, and the input
projections ``nn.MultiheadAttention`` keeps as bare parameters (``in_proj_weight``, or ``q/k/v_proj_weight``);
embeddings on request. Biases and norm layers are 1-D and never masked (METHOD.md §1). ``include``
patterns widen the choice to any ≥2-D parameter of a user's own module; ``exclude`` patterns narrow it.
:func:`model_densities` gives the two densities every output reports: over the maskable weights and
over the whole model.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from torch import nn

_CONV_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_ATTENTION_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")


@dataclass(frozen=True)
class MaskableParam:
    """A parameter the engine masks, addressed by its name in ``model.named_parameters()``."""

    name: str
    param: nn.Parameter
    module_type: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.param.shape)

    @property
    def numel(self) -> int:
        return self.param.numel()


@dataclass(frozen=True)
class LayerInfo:
    """One row of the per-layer table: the facts a user checks before trusting a sparse model."""

    name: str
    module_type: str
    shape: tuple[int, ...]
    numel: int
    nnz: int
    explored: int

    @property
    def density(self) -> float:
        return self.nnz / self.numel if self.numel else 0.0

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.module_type,
            "shape": list(self.shape),
            "numel": self.numel,
            "nnz": self.nnz,
            "density": self.density,
            "explored": self.explored,
        }


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module behind ``torch.compile`` so parameter names carry no ``_orig_mod.`` prefix."""
    return getattr(model, "_orig_mod", model)


def _is_default_maskable(module: nn.Module, embeddings: bool) -> bool:
    if isinstance(module, _CONV_LINEAR):
        return True
    if embeddings and isinstance(module, nn.Embedding):
        return True
    # transformers' GPT-2 style Conv1D is a Linear with a transposed weight; matched by name so that
    # models without transformers never import it.
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers")


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def find_maskable(
    model: nn.Module,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    embeddings: bool = False,
) -> list[MaskableParam]:
    """Maskable parameters in ``named_parameters`` order, each under its canonical (first) name.

    With ``include=None`` the default layer types are used; with a list of glob patterns (matched
    against canonical parameter names, e.g. ``"encoder.*.weight"``) every ≥2-D parameter that matches is
    taken, whatever its module, so users' own layers can be sparsified. 1-D parameters (biases, norms)
    are never taken. ``exclude`` patterns are applied last.
    """
    model = unwrap_model(model)
    canonical = {id(p): name for name, p in model.named_parameters()}
    # A weight tied to an embedding (a language-model head) is an embedding weight.
    embedding_weights = set() if embeddings else {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    found: list[MaskableParam] = []
    taken: set[int] = set()
    for module in model.modules():
        for pname, param in module.named_parameters(recurse=False):
            name = canonical[id(param)]
            if param.dim() < 2 or id(param) in taken:
                continue
            if include is None:
                attention = isinstance(module, nn.MultiheadAttention) and pname in _ATTENTION_WEIGHTS
                chosen = attention or (pname == "weight" and id(param) not in embedding_weights and _is_default_maskable(module, embeddings))
            else:
                chosen = _matches(name, include)
            if chosen and not _matches(name, exclude):
                taken.add(id(param))
                found.append(MaskableParam(name, param, type(module).__name__))
    order = {name: i for i, name in enumerate(canonical.values())}
    found.sort(key=lambda m: order[m.name])
    return found


MASKED_SHARE_WARNING = 0.5


def model_densities(model: nn.Module, maskable: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Nonzero fractions over the maskable weights (``maskable`` names; default scope when None) and
    over every parameter, with the sizes behind them: what "density" means must never be ambiguous."""
    model = unwrap_model(model)
    names = list(maskable) if maskable is not None else [m.name for m in find_maskable(model)]
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    nonzero = sum(int(p.count_nonzero()) for p in params.values())
    masked = sum(params[n].numel() for n in names if n in params)
    masked_nonzero = sum(int(params[n].count_nonzero()) for n in names if n in params)
    return {
        "maskable_density": masked_nonzero / masked if masked else None,
        "whole_model_density": nonzero / total if total else 1.0,
        "maskable_parameters": masked,
        "parameters": total,
        "maskable_share": masked / total if total else 0.0,
    }


def scope_warning(densities: dict[str, Any]) -> Optional[str]:
    """A warning when the maskable weights are under half of the model: density then says little."""
    share = densities["maskable_share"]
    if share >= MASKED_SHARE_WARNING:
        return None
    return (
        f"only {100 * share:.0f} % of the parameters ({densities['maskable_parameters']:,} of {densities['parameters']:,}) are maskable: "
        "the rest (embeddings, custom parameters) stays dense whatever --density says; widen the scope with --embeddings or --include"
    )


def format_layer_table(rows: Sequence[LayerInfo]) -> str:
    """Plain-text table (name, type, shape, density, nonzeros) for logs and the CLI."""
    header = ("layer", "type", "shape", "density", "nnz", "numel", "explored")
    body = [(r.name, r.module_type, "×".join(map(str, r.shape)), f"{r.density:.4f}", str(r.nnz), str(r.numel), f"{r.explored / max(r.numel, 1):.3f}") for r in rows]
    nnz, numel = sum(r.nnz for r in rows), sum(r.numel for r in rows)
    explored = sum(r.explored for r in rows)
    body.append(("total", "", "", f"{nnz / max(numel, 1):.4f}", str(nnz), str(numel), f"{explored / max(numel, 1):.3f}"))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)) for b in body]
    return "\n".join(lines)
