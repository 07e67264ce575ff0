"""The ``study.artifacts`` URL rule: ``s3://BUCKET`` or ``s3://BUCKET/PREFIX``. No TensorFlow,
no Optuna: settings validate it; :mod:`vissearch.study.objectstore` opens what it names."""

from __future__ import annotations

import re

from vissearch.errors import shorten

URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[A-Za-z0-9._/-]{0,500})?$")
USERINFO = re.compile(r"(//)[^@]*@", re.S)  # user:secret@ (a secret may hold '/'), to the last @


def masked(url: object) -> object:
    """``url`` with any ``user:secret@`` part shown as ``***@``: fit to print."""
    return USERINFO.sub(r"\1***@", url) if isinstance(url, str) else url


def check_url(url: str) -> str:
    """``s3://bucket`` or ``s3://bucket/prefix``; anything else is one line (any credentials
    written into the URL masked)."""
    if not isinstance(url, str) or not URL.match(url) or "//" in url[5:] or ".." in url:
        raise ValueError(f"study.artifacts {shorten(masked(url))}: use s3://BUCKET or "
                         "s3://BUCKET/PREFIX (the endpoint and credentials come from the AWS "
                         "environment variables or a profile, not the URL)")
    return url.rstrip("/")
