"""The test-driven compression loop (METHOD.md §3): refactor → probe → test → select → steer → retrain, then gate."""
