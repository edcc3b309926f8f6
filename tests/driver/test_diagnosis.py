"""Why-red diagnosis: the judged checkpoints' trade-off and limits that sit at chance."""

from safecompress.driver.diagnosis import diagnose, diagnosis_lines, near_chance_limits


def _test(limit: float, interval: tuple[float, float], value: float = 0.56) -> dict:
    check = {"name": "rmia1_auc", "value": value, "op": "<=", "limit": limit, "passed": value <= limit, "margin": limit - value, "interval": list(interval), "policy": "point"}
    return {
        "nodeid": "t.py::test_rmia",
        "outcome": "failed",
        "margin": limit - value,
        "message": "rmia1_auc too high",
        "checks": [check],
        "remedy": "relaxloss",
        "fallback_remedies": [],
        "markers": ["cheap", "remedy"],
    }


def _judged(margin: float) -> list[dict]:
    return [{"attempt": 1, "step": 54, "utility": 0.83, "margins": {"t.py::test_rmia": margin}, "red_tests": ["t.py::test_rmia"]}]


def test_a_limit_within_the_audit_noise_of_chance_is_named():
    test = _test(limit=0.5047, interval=(0.514, 0.614))  # half-width 0.05: a leak-free model scatters to 0.55
    assert near_chance_limits(test) == [{"check": "rmia1_auc", "limit": 0.5047, "chance": 0.5, "noise": 0.05}]
    diagnosis = diagnose([test], [], _judged(-0.06), [{}], {"density": 0.1})
    red = diagnosis["red_tests"][0]
    assert red["near_chance"][0]["check"] == "rmia1_auc"
    assert "within the audit set's noise of chance" in red["advice"][0]
    assert any("noise of chance (0.5 ± 0.050)" in line for line in diagnosis_lines(diagnosis))


def test_a_limit_clear_of_chance_is_not_flagged():
    test = _test(limit=0.5673, interval=(0.529, 0.629))  # 0.5673 > 0.5 + 0.05
    assert near_chance_limits(test) == []
    red = diagnose([test], [], _judged(-0.01), [{}], {"density": 0.1})["red_tests"][0]
    assert red["near_chance"] == [] and not any("chance" in line for line in red["advice"])
    assert red["advice"][0].startswith("no judged checkpoint got it green; the closest was margin -0.0100")


def test_only_upper_auc_limits_count():
    accuracy = {"name": "accuracy", "value": 0.52, "op": ">=", "limit": 0.51, "interval": [0.45, 0.59]}
    assert near_chance_limits({"checks": [accuracy]}) == []
    assert near_chance_limits({"checks": [{"name": "rmia_auc", "value": 0.6, "op": "<=", "limit": 0.52, "interval": None}]}) == []


def test_a_missed_requirement_is_told_apart_from_a_missed_target():
    """Why it is red names the requirement that makes it red, the steering target serving it and
    whether that was met, and lists a missed target that serves a met requirement apart."""
    requirement = {**_test(limit=-0.05, interval=(-0.06, 0.0), value=-0.03), "nodeid": "t.py::test_rmia_gate", "role": "requirement", "markers": ["gate"], "remedy": None}
    serving = {**_test(limit=0.58, interval=(0.55, 0.65), value=0.60), "nodeid": "t.py::test_rmia", "outcome": "missed", "role": "target", "serves": "test_rmia_gate"}
    other = {**_test(limit=0.60, interval=(0.58, 0.66), value=0.62), "nodeid": "t.py::test_loss", "outcome": "missed", "role": "target", "serves": "test_loss_gate"}
    passed = {**_test(limit=0.0, interval=(-0.02, 0.01), value=-0.01), "nodeid": "t.py::test_loss_gate", "outcome": "passed", "role": "requirement", "remedy": None}
    judged = [{"attempt": 1, "step": 54, "utility": 0.83, "margins": {"t.py::test_rmia": -0.02}, "red_tests": ["t.py::test_rmia"]}]
    report = diagnose([requirement, serving, other, passed], [], judged, [], {"density": 0.1, "attempts": 1})
    [red] = report["red_tests"]
    assert red["nodeid"] == "t.py::test_rmia_gate" and red["kind"] == "requirement missed"
    assert red["targets"] == [{"nodeid": "t.py::test_rmia", "outcome": "missed", "margin": serving["margin"]}]
    assert red["remedies"] == [] or all(r["remedy"] in ("relaxloss",) for r in red["remedies"])  # read from the serving target's ladder
    assert [t["nodeid"] for t in report["missed_targets"]] == ["t.py::test_rmia", "t.py::test_loss"]
    text = "\n".join(diagnosis_lines(report))
    assert "requirement missed: t.py::test_rmia_gate" in text
    assert "steering target missed, which does not make the run red: t.py::test_loss" in text


def test_a_green_gate_has_no_diagnosis_even_with_missed_targets():
    serving = {**_test(limit=0.58, interval=(0.55, 0.65), value=0.60), "outcome": "missed", "role": "target"}
    assert diagnose([serving], [], [], [], {"density": 0.1}) is None
