"""The study side: Optuna storage, artifacts, search spaces, leaderboards and the report.
Never TensorFlow."""
