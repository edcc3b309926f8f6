"""Adversarial robustness (FGSM in the loop, PGD at the gate) and model inversion (at the gate)."""

from safecompress.heterogeneous.test_robustness import test_inversion_gate, test_pgd_gate, test_robustness_in_loop  # noqa: F401
