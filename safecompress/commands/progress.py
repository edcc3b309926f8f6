"""Progress of a compression run: a rich live panel on a terminal, one line per update in CI logs (``-q``)."""

from __future__ import annotations

from typing import Any, Optional

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from safecompress.textsafe import printable


class CompressProgress:
    def __init__(self, console: Console, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.step = (0, 1)
        self.epoch = (0, 0)
        self.last_update: Optional[dict[str, Any]] = None
        self.live: Optional[Live] = None

    def __enter__(self) -> "CompressProgress":
        if not self.quiet and self.console.is_terminal:
            self.live = Live(self.render(), console=self.console, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None

    def event(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "gate":  # training is over: the live panel gives way to the summary
            self.__exit__(None, None, None)
            return
        if kind == "step":
            self.step = (payload["step"], payload["total"])
        elif kind == "epoch":
            self.epoch = (payload["epoch"], payload["epochs"])
        elif kind == "update":
            self.last_update = payload
            if self.live is None:
                self.console.print(self.update_line(payload), highlight=False, markup=False)
        elif kind == "final-check":
            if self.live is None:
                self.console.print(self.final_check_line(payload), highlight=False, markup=False)
        elif kind in ("rollback", "warning"):
            self.console.print(("warning: " if kind == "warning" else "") + printable(payload["message"]), highlight=False, markup=False)
        elif kind == "attempt":
            plan = ", ".join(f"{k}={v:g}" for k, v in payload["plan"]["weights"].items()) or "nothing"
            self.console.print(f"no judged checkpoint passed: attempt {payload['attempt']}/{payload['attempts']} starts with remedies {plan} from step 0", highlight=False, markup=False)
        elif kind == "budget":
            trimmed = "; ".join(payload["notes"]) or "nothing trimmed"
            self.console.print(f"budget {payload['budget']:g}× training: predicted {payload['predicted']:.2f}× ({trimmed})", highlight=False, markup=False)
        elif kind == "baseline" and self.live is None:
            weights = ", ".join(f"{k}={v:g}" for k, v in payload["remedy_weights"].items() if v > 0) or "none"
            self.console.print(f"baseline (dense parent): remedies on from step 0: {weights}", highlight=False, markup=False)
        if self.live is not None:
            self.live.update(self.render())

    def update_line(self, decision: dict[str, Any]) -> str:
        judged = decision["checkpoint"]
        tests = " ".join(f"{nodeid.split('::')[-1]}:{'red' if outcome in ('failed', 'error') else 'green'}" for nodeid, outcome in judged["outcomes"].items())
        weights = ", ".join(f"{k}={v:g}" for k, v in decision["remedy_weights"].items()) or "none"
        return (
            f"update {decision['update']}/{decision['updates']} step {decision['step']}: judged utility {judged['utility']:.4f}, risk {judged['risk']:+.4f} "
            f"| {tests} | remedies: {weights} | new mask {decision['winner']}"
        )

    def final_check_line(self, check: dict[str, Any]) -> str:
        tested = check["candidates"][0]
        weights = ", ".join(f"{k}={v:g}" for k, v in check["remedy_weights"].items()) or "none"
        return f"final check step {check['step']}: utility {tested['utility']:.4f}, risk {tested['risk']:+.4f}, failures {tested['failures']:g} | {check['kept']} | remedies: {weights}"

    def render(self) -> Group:
        table = Table(show_header=False, box=None)
        table.add_row("step", f"{self.step[0]}/{self.step[1]}  (epoch {self.epoch[0]}/{self.epoch[1]})")
        if self.last_update is not None:
            decision = self.last_update
            winner = next(c for c in decision["candidates"] if c["name"] == decision["winner"])
            winner = winner if winner["outcomes"] else decision["checkpoint"]  # a sole candidate is not judged: show the checkpoint
            table.add_row("update", f"{decision['update']}/{decision['updates']}: {decision['winner']} — {decision['why']}")
            table.add_row("utility / risk", f"{winner['utility']:.4f} / {winner['risk']:+.4f}")
            tests = Text()
            for nodeid, outcome in winner["outcomes"].items():
                red = outcome in ("failed", "error")
                tests.append(f"● {nodeid.split('::')[-1]}  ", style="red" if red else "green")
            table.add_row("tests", tests)
            table.add_row("remedies", ", ".join(f"{k}={v:g}" for k, v in decision["remedy_weights"].items()) or "none")
        return Group(Text("safecompress compress", style="bold"), table)
