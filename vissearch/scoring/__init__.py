"""What a render is worth: the judge, readability statistics and scores. Never Optuna."""
