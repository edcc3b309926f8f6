"""The suite's folder run as a test path of its own (``safecompress demo`` outside a project): its fixtures."""

safecompress_plugins = ["safecompress.suite.fixtures"]
