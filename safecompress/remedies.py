"""Training-time defenses that a red safety test switches on (METHOD.md §7).

A remedy adds a term to the training loss; the driver scales it by a weight that doubles while the
test that declared it stays red and decays while it is green. Plugins add remedies through
``safecompress_register_remedies(register)`` with ``register(name, factory)``, where
``factory(context: RemedyContext) -> Remedy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from safecompress.data.splits import Split
from safecompress.hookspecs import hookimpl


@dataclass
class RemedyContext:
    """What a remedy may need to set itself up."""

    num_classes: int
    device: torch.device
    reference: Optional[Split] = None  # same-distribution non-member data (population), for adversaries
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    # A remedy that trains parameters of its own (an adversary) averages their gradients with this
    # before stepping, so they stay identical on every rank under torchrun (a no-op otherwise).
    average_gradients: Callable[[Iterable[nn.Parameter]], None] = lambda parameters: None
    # How an input perturbation of ε input units maps onto the model's inputs, and their valid range
    # (:class:`~safecompress.attacks.robustness.InputBox`; None: ε in the inputs' own units, unclipped).
    input_box: Any = None


class Remedy(Protocol):
    name: str
    base_weight: float  # the weight it starts at when first switched on
    max_weight: float

    def loss(self, model: nn.Module, inputs: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The unweighted extra loss term for this batch of members (the driver multiplies by the weight)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    # Optional: ``lr_scale(weight) -> float`` multiplies the learning rate while the remedy is on.
    # Optional on the factory: ``step_cost(options) -> float``, the extra work of a training step
    # while the remedy is on, as a fraction of a plain step; ``--budget`` plans with it
    # (:mod:`safecompress.driver.budget`), and a remedy without it does not fit any budget.


def no_extra_work(options: dict[str, Any]) -> float:
    """The ``step_cost`` of a remedy that only adds a term computed from the batch's own logits."""
    return 0.0


def entropy(logits: torch.Tensor) -> torch.Tensor:
    log_p = F.log_softmax(logits.float(), dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


class ConfidencePenalty:
    """CE − β·H(p): discourages the over-confident outputs that loss-based attacks read (Pereyra et al.)."""

    name = "confidence_penalty"
    step_cost = staticmethod(no_extra_work)

    def __init__(self, context: RemedyContext) -> None:
        self.base_weight = float(context.options.get("beta", 0.1))
        self.max_weight = float(context.options.get("max_weight", 1.6))

    def loss(self, model: nn.Module, inputs: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return -entropy(logits).mean()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class LabelSmoothing:
    """Adds ε·(CE to the uniform target − CE), i.e. label smoothing with ε = the remedy weight."""

    name = "label_smoothing"
    step_cost = staticmethod(no_extra_work)

    def __init__(self, context: RemedyContext) -> None:
        self.base_weight = float(context.options.get("epsilon", 0.05))
        self.max_weight = float(context.options.get("max_weight", 0.4))

    def loss(self, model: nn.Module, inputs: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1)
        return (-log_p.mean(dim=1) - F.nll_loss(log_p, labels, reduction="none")).mean()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class Flooding:
    """Flooding (Ishida et al. 2020) as a steerable term: weight·2·relu(b − CE) on the batch's mean loss.

    Membership leaks because training drives the members' loss towards zero. With the term at weight
    w the batch loss below the flood level b is descended at rate 1 − 2w: w = 0.25 slows the descent,
    w = 0.5 stops it, w = 1 is Ishida et al.'s flooding (ascend back to b). Batch-level on purpose: a
    per-sample floor flattens confident outputs like a confidence penalty and *raises* RMIA and the
    loss attack (measured in docs/benchmark.md).
    """

    name = "flooding"
    step_cost = staticmethod(no_extra_work)

    def __init__(self, context: RemedyContext) -> None:
        self.level = float(context.options.get("level", 0.1))
        if self.level <= 0:
            raise ValueError(f"flooding needs a positive level, got {self.level}")
        self.base_weight = float(context.options.get("weight", 0.25))
        self.max_weight = float(context.options.get("max_weight", 1.0))

    def loss(self, model: nn.Module, inputs: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return 2.0 * torch.relu(self.level - F.cross_entropy(logits.float(), labels))

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class RelaxLoss:
    """RelaxLoss (Chen et al., ICLR 2022) as a steerable term: at weight 1 the loss *is* RelaxLoss,
    at w < 1 it is (1 − w)·CE + w·RelaxLoss (the term added is RelaxLoss − CE).

    RelaxLoss keeps the members' loss near a level α instead of driving it to zero: on alternate
    steps it descends |CE − α| (gradient ascent below α); on the others, while the batch loss is
    below α, it ascends the loss of correctly classified samples and pulls the posteriors of the
    misclassified ones towards a flattened target (the true class's confidence capped at ``upper``,
    the rest spread evenly). The original alternates per epoch; a remedy can be switched on at any
    step, so this one alternates per step.
    """

    name = "relaxloss"
    step_cost = staticmethod(no_extra_work)

    def __init__(self, context: RemedyContext) -> None:
        self.alpha = float(context.options.get("alpha", 0.5))
        self.upper = float(context.options.get("upper", 1.0))
        if self.alpha <= 0 or not 0 < self.upper <= 1:
            raise ValueError(f"relaxloss needs alpha > 0 and upper in (0, 1], got {self.alpha}, {self.upper}")
        self.num_classes = context.num_classes
        self.base_weight = float(context.options.get("weight", 0.25))
        self.max_weight = float(context.options.get("max_weight", 1.0))
        self.calls = 0

    def relaxed(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        per_sample = F.cross_entropy(logits, labels, reduction="none")
        mean = per_sample.mean()
        self.calls += 1
        if self.calls % 2 == 1:
            return (mean - self.alpha).abs()
        if float(mean.detach()) > self.alpha:
            return mean
        probabilities = F.softmax(logits, dim=1)
        correct = (logits.argmax(1) == labels).float()
        target = probabilities.gather(1, labels[:, None]).squeeze(1).clamp(max=self.upper)
        one_hot = F.one_hot(labels, self.num_classes).float()
        soft = one_hot * target[:, None] + (1 - one_hot) * ((1 - target) / (self.num_classes - 1))[:, None]
        soft_ce = -(soft * F.log_softmax(logits, dim=1)).sum(1)
        return ((1 - correct) * soft_ce - per_sample).mean()

    def loss(self, model: nn.Module, inputs: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return self.relaxed(logits, labels) - F.cross_entropy(logits, labels)

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = int(state["calls"])


class NasrAttacker(nn.Module):
    """The black-box attacker h(f(x), y) of Nasr et al. (output branch, label branch, fusion)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.output_branch = nn.Sequential(nn.Linear(num_classes, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, 64), nn.ReLU())
        self.label_branch = nn.Sequential(nn.Linear(num_classes, 512), nn.ReLU(), nn.Linear(512, 64), nn.ReLU())
        self.fusion = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, probabilities.shape[1]).float()
        fused = torch.cat([self.output_branch(probabilities), self.label_branch(one_hot)], dim=1)
        return self.fusion(fused).squeeze(1)  # a logit: sigmoid gives Pr(member)


class WhiteBoxAttacker(nn.Module):
    """The white-box attacker of the TSE extension (ML-Doctor's model): the black-box branches on the
    output vector and the label, plus a branch on the per-sample loss and one on the per-sample
    gradient of the loss w.r.t. the last layer, fused."""

    def __init__(self, num_classes: int, gradient_size: int) -> None:
        super().__init__()
        self.output_branch = nn.Sequential(nn.Linear(num_classes, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.label_branch = nn.Sequential(nn.Linear(num_classes, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.loss_branch = nn.Sequential(nn.Linear(1, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.gradient_branch = nn.Sequential(nn.Linear(gradient_size, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU())
        self.fusion = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, probabilities: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, probabilities.shape[1]).float()
        parts = [self.output_branch(probabilities), self.label_branch(one_hot), self.loss_branch(loss[:, None]), self.gradient_branch(gradient)]
        return self.fusion(torch.cat(parts, dim=1)).squeeze(1)


def head_features(model: nn.Module, inputs: Any, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, per-sample loss, per-sample last-layer gradient) from one forward pass, differentiable.

    For cross-entropy on a Linear head the per-sample gradient has a closed form: (p − e_y)·hᵀ for the
    weight and p − e_y for the bias, h the head's input (captured by a forward hook). It equals what
    ``torch.func.vmap(grad(...))`` computes for the white-box attack (tested), costs no extra pass,
    and regular autograd differentiates it, so the classifier can be trained against it. The pass
    runs in eval mode: batch-norm statistics are not updated twice in one step."""
    from safecompress.attacks.wrappers import last_linear
    from safecompress.inference import model_logits

    head = last_linear(model)
    captured: dict[str, torch.Tensor] = {}
    handle = head.register_forward_hook(lambda _m, args, output: captured.update(h=args[0], out=output))
    was_training = model.training
    model.eval()
    try:
        logits = model_logits(model, inputs).float()
    finally:
        handle.remove()
        model.train(was_training)
    if captured.get("out") is None or captured["out"].shape != logits.shape:
        raise ValueError(f"the output of the last nn.Linear ({type(head).__name__}) is not the model's logits: the white-box adversary needs a Linear classifier head")
    error = F.softmax(logits, dim=1) - F.one_hot(labels, logits.shape[1]).float()
    gradient = (error[:, :, None] * captured["h"].float()[:, None, :]).flatten(1)
    if head.bias is not None:
        gradient = torch.cat([gradient, error], dim=1)
    return logits, F.cross_entropy(logits, labels, reduction="none"), gradient


ATTACKERS = ("black", "white", "both")


class AdversarialRegularization:
    """Nasr et al. 2018 min-max: k attacker steps, then the classifier term −BCE(h(f(x), y), 1).

    The attacker maximises E_members log h + E_reference log(1 − h). The classifier minimises
    CE − λ·BCE(h, 1) = CE + λ·log h on its members, i.e. it is trained to make its members look like
    non-members to the current attacker (the ASE 2022 code had this sign reversed).

    ``attacker`` (an option) chooses who the classifier is trained against (TSE 2024's BMIA-, WMIA-
    and MMIA-SafeCompress): ``"black"`` (default) sees the output vector and the label;
    ``"white"`` also sees the per-sample loss and the last-layer gradient (:class:`WhiteBoxAttacker`);
    ``"both"`` trains both attackers on the same batches and the classifier term is the *mean* of
    their two log h terms. The mean keeps the term on the scale of one attacker's, so the same λ,
    cap and steering apply, and it stays smooth; a max would chase whichever attacker leads at each
    step and switch between them.
    """

    name = "adversarial_regularization"

    @staticmethod
    def step_cost(options: dict[str, Any]) -> float:
        """The attacker's reference pass and its own steps, per training step: measured on the SmallCNN
        benchmark (always on: 2.0× plain DST's time black, 3.2× white, 3.9× both; docs/benchmark.md).
        On a larger model the attacker's share is smaller, so this over-counts there."""
        return {"black": 1.0, "white": 2.2, "both": 2.9}.get(str(options.get("attacker", "black")), 2.9)

    def __init__(self, context: RemedyContext) -> None:
        if context.reference is None or len(context.reference) == 0:
            raise ValueError("adversarial_regularization needs reference (population) data")
        self.kind = str(context.options.get("attacker", "black"))
        if self.kind not in ATTACKERS:
            raise ValueError(f"adversarial_regularization: attacker must be one of {', '.join(ATTACKERS)}, got {self.kind!r}")
        self.base_weight = float(context.options.get("lambda", 0.1))
        self.max_weight = float(context.options.get("max_weight", 1.6))
        self.attacker_steps = int(context.options.get("attacker_steps", 1))
        self.lr_damping = float(context.options.get("lr_damping", 4.0))
        self.lr = float(context.options.get("lr", 1e-3))
        self.num_classes = context.num_classes
        self.device = context.device
        self.reference = context.reference
        self.generator = torch.Generator().manual_seed(context.seed + 7919)
        self.attacker = NasrAttacker(context.num_classes).to(context.device)
        self.optimizer = torch.optim.Adam(self.attacker.parameters(), lr=self.lr)
        self.white: Optional[WhiteBoxAttacker] = None  # built at the first batch, when the gradient's size is known
        self.white_optimizer: Optional[torch.optim.Optimizer] = None
        self.average_gradients = context.average_gradients

    @property
    def uses_black(self) -> bool:
        return self.kind in ("black", "both")

    @property
    def uses_white(self) -> bool:
        return self.kind in ("white", "both")

    def _build_white(self, gradient_size: int) -> None:
        self.white = WhiteBoxAttacker(self.num_classes, gradient_size).to(self.device)
        self.white_optimizer = torch.optim.Adam(self.white.parameters(), lr=self.lr)

    def _reference_batch(self, size: int) -> tuple[Any, torch.Tensor]:
        rows = torch.randint(len(self.reference), (size,), generator=self.generator)
        batch = self.reference.subset(rows.numpy())
        return next(batch.batches(size, self.device))

    @staticmethod
    def _step(attacker: nn.Module, optimizer: torch.optim.Optimizer, scores: torch.Tensor, truth: torch.Tensor, average: Callable[[Iterable[nn.Parameter]], None]) -> None:
        optimizer.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(scores, truth).backward()
        average(attacker.parameters())
        optimizer.step()

    def _train_attackers(self, model: nn.Module, logits: torch.Tensor, labels: torch.Tensor, member: Optional[tuple[torch.Tensor, ...]]) -> None:
        """k attacker steps; ``member`` is the white attacker's view of the batch (from :func:`head_features`)."""
        from safecompress.inference import model_logits

        member_p = F.softmax(logits.detach().float(), dim=1)
        for _ in range(self.attacker_steps):
            ref_x, ref_y = self._reference_batch(len(labels))
            truth = torch.cat([torch.ones(len(labels)), torch.zeros(len(ref_y))]).to(logits.device)
            both_labels = torch.cat([labels, ref_y])
            if self.uses_black:
                with torch.no_grad():
                    ref_p = F.softmax(model_logits(model, ref_x).float(), dim=1)
                self._step(self.attacker, self.optimizer, self.attacker(torch.cat([member_p, ref_p]), both_labels), truth, self.average_gradients)
            if member is not None:
                member = tuple(part.detach() for part in member)
                with torch.no_grad():
                    reference = head_features(model, ref_x, ref_y)
                if self.white is None:
                    self._build_white(member[2].shape[1])
                probabilities = F.softmax(torch.cat([member[0], reference[0]]), dim=1)
                scores = self.white(probabilities, both_labels, torch.cat([member[1], reference[1]]), torch.cat([member[2], reference[2]]))
                self._step(self.white, self.white_optimizer, scores, truth, self.average_gradients)

    def loss(self, model: nn.Module, inputs: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # The white attacker's view of the members, differentiable, from one pass: the attacker steps
        # use it detached (they do not change the model), the classifier term with its graph.
        member = head_features(model, inputs, labels) if self.uses_white else None
        was_training = model.training
        self._train_attackers(model, logits, labels, member)
        model.train(was_training)
        attackers = [a for a in (self.attacker if self.uses_black else None, self.white if self.uses_white else None) if a is not None]
        for attacker in attackers:
            for p in attacker.parameters():
                p.requires_grad_(False)
        try:
            terms = []
            if self.uses_black:  # −BCE(h, 1) = log h = logsigmoid(score)
                terms.append(F.logsigmoid(self.attacker(F.softmax(logits.float(), dim=1), labels)).mean())
            if member is not None:
                white_logits, per_sample_loss, gradient = member
                terms.append(F.logsigmoid(self.white(F.softmax(white_logits, dim=1), labels, per_sample_loss, gradient)).mean())
        finally:
            for attacker in attackers:
                for p in attacker.parameters():
                    p.requires_grad_(True)
        return sum(terms) / len(terms)

    def lr_scale(self, weight: float) -> float:
        """1 / (1 + lr_damping·λ): the classifier moves slower while the adversary is on (a two-time-scale
        min-max). At full speed the game oscillates and the final model's accuracy is a lottery
        (docs/benchmark.md: test accuracy swinging between 74 % and 84 % from one epoch to the next)."""
        return 1.0 / (1.0 + self.lr_damping * weight)

    def state_dict(self) -> dict[str, Any]:
        state = {"attacker": self.attacker.state_dict(), "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}
        if self.white is not None and self.white_optimizer is not None:
            state["white"] = {"gradient_size": self.white.gradient_branch[0].in_features, "attacker": self.white.state_dict(), "optimizer": self.white_optimizer.state_dict()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.attacker.load_state_dict(state["attacker"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if "white" in state:
            self._build_white(int(state["white"]["gradient_size"]))
            self.white.load_state_dict(state["white"]["attacker"])  # type: ignore[union-attr]
            self.white_optimizer.load_state_dict(state["white"]["optimizer"])  # type: ignore[union-attr]


class AdversarialTraining:
    """PGD adversarial training (Madry et al. 2018) as a steerable term: at weight w the loss is
    (1 − w)·CE(x) + w·CE(x_adv), x_adv an L∞ PGD example of the batch (the term added is
    CE(x_adv) − CE(x)). The remedy a red robustness test switches on.

    Options: ``eps`` (input units, pixels in [0, 1] for images; default 0.1, the robustness test's),
    ``steps`` (default 3: training-time PGD is kept short, the test's attack is stronger), ``weight``
    (base, 0.25) and ``max_weight`` (1: all-adversarial batches)."""

    name = "adversarial_training"

    @staticmethod
    def step_cost(options: dict[str, Any]) -> float:
        """Each PGD step is a forward and backward pass, then one more on the adversarial batch."""
        return float(int(options.get("steps", 3)) + 1)

    def __init__(self, context: RemedyContext) -> None:
        from safecompress.attacks.robustness import DEFAULT_EPS, InputBox

        self.eps = float(context.options.get("eps", DEFAULT_EPS))
        self.steps = int(context.options.get("steps", 3))
        if not self.eps > 0 or self.steps < 1:
            raise ValueError(f"adversarial_training needs eps > 0 and steps >= 1, got {self.eps}, {self.steps}")
        self.box = context.input_box if context.input_box is not None else InputBox()
        self.base_weight = float(context.options.get("weight", 0.25))
        self.max_weight = float(context.options.get("max_weight", 1.0))
        self.generator = torch.Generator().manual_seed(context.seed + 104729)

    def loss(self, model: nn.Module, inputs: Any, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        from safecompress.attacks.robustness import check_continuous, perturb
        from safecompress.inference import model_logits

        check_continuous(inputs)
        adversarial = perturb(model, inputs, labels, eps=self.eps, steps=self.steps, step_size=2.5 * self.eps / self.steps, box=self.box, random_start=True, generator=self.generator)
        return F.cross_entropy(model_logits(model, adversarial).float(), labels) - F.cross_entropy(logits.float(), labels)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


BUILTIN_REMEDIES: dict[str, Callable[[RemedyContext], Remedy]] = {
    "confidence_penalty": ConfidencePenalty,
    "label_smoothing": LabelSmoothing,
    "adversarial_regularization": AdversarialRegularization,
    "flooding": Flooding,
    "relaxloss": RelaxLoss,
    "adversarial_training": AdversarialTraining,
}


@hookimpl
def safecompress_register_remedies(register: Callable[[str, Any], None]) -> None:
    for name, factory in BUILTIN_REMEDIES.items():
        register(name, factory)
