"""``safecompress init``: a project skeleton in a folder, using the library suite.

It writes the ``[tool.safecompress]`` section (appended to an existing ``pyproject.toml`` that has
none), a root ``conftest.py`` whose ``data`` fixture shows the from-arrays path, and
``safety_tests/`` with the shipped tests and fixtures (``safecompress.suite``). It never replaces a
file: when any target exists it writes nothing and names what is in the way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tomllib

from safecompress.errors import UsageError
from safecompress.fsutil import atomic_write_text, read_small_text
from safecompress.textsafe import printable

ARCH_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", re.ASCII)
DATASET_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$", re.ASCII)


@dataclass(frozen=True)
class ProjectChoices:
    """What ``init`` writes into the skeleton: each one a setting, or a placeholder comment when absent."""

    arch: Optional[str] = None
    num_classes: Optional[int] = None
    data: Optional[str] = None


def _setting(key: str, value: object, placeholder: str) -> str:
    return f"{key} = {json.dumps(value)}" if value is not None else f"# {key} = {placeholder}"


def pyproject_section(choices: ProjectChoices) -> str:
    """The ``[tool.safecompress]`` section: the user's choices, the shipped thresholds and defaults."""
    data = _setting("data", choices.data, '"fashion-mnist-embedded"   # a registered dataset; else the conftest.py data fixture')
    return f"""
# SafeCompress (written by `safecompress init`): `safecompress test MODEL` and `safecompress
# compress MODEL` read this section. Thresholds are the shipped suite's (docs/driver.md).
[tool.safecompress]
tests = ["safety_tests"]
{_setting("arch", choices.arch, '"package.module:factory"   # or torchvision:NAME; how a state-dict model is rebuilt')}
{_setting("num-classes", choices.num_classes, "10")}
{data}
seed = 0
device = "auto"
gate-refs = 2
loop-members = 250
loop-population = 300

# How the dense model was trained: reference models for the attacks are trained the same way, and
# compression trains by it. Edit to match your training.
[tool.safecompress.recipe]
epochs = 20
batch_size = 64
lr = 0.001
optimizer = "adam"

[tool.safecompress.compress]
density = 0.1

[tool.safecompress.thresholds]
accuracy_min = 0.0           # an absolute accuracy floor (the only accuracy limit without a dense parent): set yours
accuracy_drop_max = 0.01     # requirement: held-out test accuracy at most 1 point below the dense parent's
rmia_gain_min = 0.05         # requirement: gate RMIA AUC at least 0.05 below the dense parent's
dense_auc_tolerance = 0.0    # requirement: the loss attack no more successful than on the dense parent
rmia_auc_max = 0.65          # requirement without a dense parent (--absolute-only)
loss_auc_max = 0.60          # steering target (in the loop)
loop_rmia_auc_max = 0.58     # steering target without a dense parent (with one it is calibrated from rmia_gain_min)
loop_rmia_margin_se = 1.0
"""


CONFTEST_FROM_ARRAYS = '''"""Project fixtures (written by `safecompress init`): where the data comes from.

Replace the stand-in arrays with yours: ``inputs`` row i is example i (an array, a tensor, or a dict
of them), ``labels`` integer class ids. ``DataSplits.from_arrays`` draws members, non-members,
population and test rows, disjoint, stratified and seeded (docs/data.md, "Bring your own data").
The model you test must have been trained on exactly the members it returns.
"""

import safecompress
from safecompress.data import DataSplits


@safecompress.fixture(scope="session")
def data(seed):
    from safecompress.data.images import embedded_fashion_mnist

    arrays = embedded_fashion_mnist()  # stand-in: 10,000 Fashion-MNIST images shipped with safecompress
    inputs = (arrays["train_images"][:, None] / 255.0 - 0.2860) / 0.3530  # N×1×28×28, standardised
    return DataSplits.from_arrays(inputs, arrays["train_labels"], members=1000, population=2000, test=1000, seed=seed, source="my-data")
'''

CONFTEST_REGISTERED = '''"""Project fixtures (written by `safecompress init`).

The data is ``[tool.safecompress] data`` in pyproject.toml. To use your own arrays instead, define:

    @safecompress.fixture(scope="session")
    def data(seed):
        return DataSplits.from_arrays(inputs, labels, members=1000, population=2000, test=1000, seed=seed)

(``from safecompress.data import DataSplits``; docs/data.md, "Bring your own data").
"""
'''

SUITE_CONFTEST = '''"""Safety-test fixtures: the library suite's (audit set, reference outputs, dense baseline, gate attacks).

A fixture of the same name defined here replaces the suite's.
"""

safecompress_plugins = ["safecompress.suite.fixtures"]
'''

SUITE_TESTS = {
    "test_accuracy.py": '''"""The shipped performance tests (source: safecompress/suite/test_accuracy.py); add your own beside them."""

from safecompress.suite.test_accuracy import test_accuracy, test_held_out_accuracy  # noqa: F401
''',
    "test_membership.py": '''"""The shipped membership tests (source: safecompress/suite/test_membership.py); add your own beside them."""

from safecompress.suite.test_membership import test_loss_attack, test_no_more_leaky_than_dense, test_rmia_gate, test_rmia_in_loop, test_rmia_validation  # noqa: F401
''',
}


def check_choices(choices: ProjectChoices) -> None:
    if choices.arch is not None and not ARCH_REFERENCE.match(choices.arch):
        raise UsageError(f"--arch {printable(choices.arch)!r} is not an architecture reference: use torchvision:NAME or package.module:factory")
    if choices.data is not None and not DATASET_NAME.match(choices.data):
        raise UsageError(f"--data {printable(choices.data)!r} is not a dataset name (letters, digits, '-', '_', '.'; see `safecompress plugins`)")
    if choices.num_classes is not None and choices.num_classes < 1:
        raise UsageError(f"--num-classes must be at least 1, not {choices.num_classes}")


def scaffold_project(folder: Path, choices: ProjectChoices) -> list[Path]:
    """Write the skeleton into ``folder``; returns the files written (a ``pyproject.toml`` that
    existed is extended, never replaced). Refuses, writing nothing, when a file it would create
    exists or ``pyproject.toml`` already has a ``[tool.safecompress]`` section."""
    check_choices(choices)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--dir {folder} is a file, not a folder")
    folder = folder.resolve()
    pyproject = folder / "pyproject.toml"
    files = {
        folder / "conftest.py": CONFTEST_REGISTERED if choices.data else CONFTEST_FROM_ARRAYS,
        folder / "safety_tests" / "conftest.py": SUITE_CONFTEST,
        **{folder / "safety_tests" / name: text for name, text in SUITE_TESTS.items()},
    }
    linked = sorted({str(p.parent.relative_to(folder)) for p in files if p.parent != folder and p.parent.is_symlink()})
    if linked:
        raise UsageError(f"init writes nothing through a symbolic link: {', '.join(linked)} in {folder} is one (replace it with a folder)")
    in_the_way = [path for path in files if path.exists() or path.is_symlink()]
    existing = ""
    if pyproject.exists() or pyproject.is_symlink():
        existing = read_small_text(pyproject)
        try:
            tool = tomllib.loads(existing).get("tool", {})
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{pyproject}: not valid TOML ({exc}); init appends to it, so fix it first") from None
        if isinstance(tool, dict) and "safecompress" in tool:
            in_the_way.append(pyproject)
    if in_the_way:
        names = ", ".join(str(p.relative_to(folder)) for p in in_the_way)
        raise UsageError(f"init writes nothing over existing files: {names} already exist (move them away, or edit them by hand)")
    section = pyproject_section(choices)
    files[pyproject] = (existing.rstrip("\n") + "\n" + section) if existing else section.lstrip("\n")
    tomllib.loads(files[pyproject])  # what it writes parses: the choices were checked, this proves it
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    return list(files)
