"""The library suite's fixtures: audit set, reference outputs, dense baseline, robustness rows."""

safecompress_plugins = ["safecompress.suite.fixtures"]
