"""Safety-test fixtures: the library suite's (audit set, reference outputs, dense baseline, gate attacks).

A fixture of the same name defined here replaces the suite's.
"""

safecompress_plugins = ["safecompress.suite.fixtures"]
