"""Images in object storage: ``study.artifacts: s3://BUCKET/PREFIX``. No TensorFlow.

Workers on many machines upload every image through Optuna's own ``Boto3ArtifactStore`` under
``PREFIX/ARTIFACT_ID``; leaderboard, report, dashboard and reproduce on any machine read them
from there, keeping a local copy of each image they fetch (in ``~/.cache/vissearch/s3/``, or
``$XDG_CACHE_HOME``) so that a file path can be handed on. The endpoint and the credentials come
from the usual AWS settings (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, a profile, ...): they
are never part of the URL, never printed, never stored in the study.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vissearch.errors import StoreUnreachable, UserError, shorten
from vissearch.files import write_stream
from vissearch.settings.artifacts import URL, check_url, masked  # noqa: F401 (re-exported)

SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")  # what Optuna's artifact ids look like


def is_remote(url: str | None) -> bool:
    return bool(url) and str(url).startswith("s3://")


class S3Store:
    """An Optuna artifact store under a key prefix of one bucket (Optuna's ``Boto3ArtifactStore``
    does the transfers), with a local cache for reading."""

    def __init__(self, url: str):
        self.url = check_url(url)
        bucket, _, prefix = self.url.removeprefix("s3://").partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        try:
            import boto3
            from optuna.artifacts import Boto3ArtifactStore
        except ImportError:
            raise UserError("study.artifacts s3://... needs boto3: pip install -e '.[s3]'") \
                from None
        self.client = boto3.client("s3")
        self.inner = Boto3ArtifactStore(bucket, client=self.client)
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        self.cache = cache / "vissearch" / "s3" / bucket / (self.prefix or "_")

    def _key(self, artifact_id: str) -> str:
        if not SAFE_ID.match(artifact_id):  # a study record is data: no ../ in a key
            raise UserError(f"artifact id {shorten(artifact_id)} is not one Optuna makes")
        return f"{self.prefix}/{artifact_id}" if self.prefix else artifact_id

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """A call to the server; one that cannot reach it is :class:`StoreUnreachable`, one line
        naming the endpoint (never a botocore traceback)."""
        from botocore.exceptions import ConnectionError as NoConnection
        from botocore.exceptions import HTTPClientError

        try:
            yield
        except (NoConnection, HTTPClientError) as err:
            endpoint = masked(self.client.meta.endpoint_url)
            raise StoreUnreachable(f"study.artifacts {self.url}: the object store at {endpoint} "
                                   f"does not answer ({type(err).__name__})") from None

    def open_reader(self, artifact_id: str) -> BinaryIO:
        with self.answering():
            return self.inner.open_reader(self._key(artifact_id))

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        with self.answering():
            self.inner.write(self._key(artifact_id), content_body)

    def remove(self, artifact_id: str) -> None:
        with self.answering():
            self.inner.remove(self._key(artifact_id))

    def name(self, artifact_id: str, relative: str) -> None:
        """Readable file names are for a local folder; object storage keeps the ids."""

    def check(self) -> None:
        """The bucket can be reached with these credentials (before any trial renders)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as err:  # botocore: no credentials, no endpoint, no bucket
            raise UserError(f"study.artifacts {self.url}: cannot reach the bucket: "
                            f"{type(err).__name__}: {str(err).splitlines()[0][:160]}") from None

    def fetch(self, artifact_id: str) -> Path | None:
        """A local copy of the artifact (downloaded once), or None if the bucket lacks it."""
        try:
            key = self._key(artifact_id)
        except UserError:
            return None
        path = self.cache / artifact_id
        if path.is_file():
            return path
        from optuna.artifacts.exceptions import ArtifactNotFound

        with self.answering():
            try:
                reader = self.inner.open_reader(key)
            except ArtifactNotFound:
                return None
            return write_stream(path, reader)
