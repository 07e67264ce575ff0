"""YAML -> validated, frozen settings. Neither TensorFlow nor Optuna."""
