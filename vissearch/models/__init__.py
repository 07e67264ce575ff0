"""Loading what the engine renders from: model specs, the zoo, class names. Never Optuna."""
