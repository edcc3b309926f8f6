"""Opt-in safety tests beyond membership inference: adversarial robustness and model inversion.

``test_robustness.py`` holds the tests; a project re-exports them from its own ``safety_tests/``
(``from safecompress.heterogeneous.test_robustness import test_pgd_gate, ...``), beside the shipped
suite's, whose fixtures (``safecompress.suite.fixtures``) they use. They live outside
``safecompress/suite/``, so the demo, which runs that folder, does not run them.
"""
