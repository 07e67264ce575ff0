"""A person's rating of a trial in optuna-dashboard: optuna-dashboard's own form widget on each
trial asks whether its images can be named without their captions; the answer is the trial's
user attribute ``readers_rating`` (1 named, 0.5 partly, 0 not), beside ``readers score``'s
figures in the leaderboard and the report. No TensorFlow."""

from __future__ import annotations

import optuna

from vissearch.study import store

KEY = "readers_rating"
CHOICES = {"named": 1.0, "partly": 0.5, "not": 0.0}
QUESTION = ("Cover the captions: can you name what these images show? named = the class, "
            "partly = something close, not = no")


def add_rating_form(study_name: str, url: str) -> store.AnnotatingStorage:
    """Register the form on the study; returns the storage the dashboard must serve, one that
    takes user attributes on finished trials (Optuna's own refuses them)."""
    from optuna_dashboard import ChoiceWidget, register_user_attr_form_widgets

    storage = store.annotating_storage(url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    register_user_attr_form_widgets(study, widgets=[ChoiceWidget(
        choices=list(CHOICES), values=list(CHOICES.values()), description=QUESTION,
        user_attr_key=KEY)])
    return storage
