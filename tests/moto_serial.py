"""moto's server with requests handled one at a time, and Secrets Manager's
AWSCURRENT label as the one source of the current version.

1. moto evaluates DynamoDB condition expressions and applies the write in
   separate steps without a lock, so two concurrent conditional writes can both
   succeed - unlike DynamoDB, which guarantees they are atomic. The lease tests
   depend on that guarantee, so this launcher serializes request handling
   (connections stay concurrent).
2. moto 5.2.5 keeps a secret's "default version" apart from its labels:
   UpdateSecretVersionStage moves the AWSCURRENT label but not the default, so
   an unstaged GetSecretValue keeps answering the old version, and a later
   PutSecretValue without stages demotes that stale default and leaves two
   versions labelled AWSCURRENT. Secrets Manager has no such thing: "If you
   don't specify either a VersionStage or VersionId, Secrets Manager returns
   the AWSCURRENT version" (GetSecretValue, VersionStage:
   https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html),
   and PutSecretValue without VersionStages "automatically moves the staging
   label AWSCURRENT to this version", a label "that's already associated with a
   different version" is removed from it, and AWSPREVIOUS goes to "the version
   that AWSCURRENT was removed from"
   (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html).
   `patch_secrets_manager` makes the default version whichever holds
   AWSCURRENT, so readers of the old layout (unstaged reads, as boto3 and the
   old Lambdas do) see what they would see in AWS.

3. moto 5.2.5 lets PutSecretValue and UpdateSecretVersionStage write to a
   secret scheduled for deletion, and answers CreateSecret of its name with
   ResourceExistsException. Secrets Manager refuses all three with
   InvalidRequestException, whose documented causes begin with "The secret is
   scheduled for deletion" (Errors of
   https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html,
   .../API_UpdateSecretVersionStage.html and .../API_CreateSecret.html);
   `patch_secrets_manager` does the same.

4. For benchmarks: MOTO_DELAY_MS=N (environment) holds every request N ms
   before it is handled, outside the lock, as a network round trip to AWS
   would; and GET /_launcher/requests answers how many requests of each
   operation (X-Amz-Target) it has served, so a benchmark can count the
   requests of code that has no counter of its own.

Usage: python moto_serial.py HOST PORT
"""

import json
import os
import sys
import threading
import time
from collections import Counter

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.secretsmanager.exceptions import InvalidRequestException
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"


def _current_version_id(secret):
    """The version labelled AWSCURRENT: what an unstaged read returns."""
    for version_id, version in getattr(secret, "versions", {}).items():
        if CURRENT in version["version_stages"]:
            return version_id
    return None


def _make_current(secret, secret_version, version_id):
    """PutSecretValue with AWSCURRENT (given or implied): every label of the
    new version leaves the other versions, the old AWSCURRENT holder gets
    AWSPREVIOUS (and keeps its other labels)."""
    stages = secret_version["version_stages"]
    if CURRENT not in stages:
        stages.append(CURRENT)
    previous = _current_version_id(secret)
    for other_id, other in secret.versions.items():
        if other_id != version_id:
            other["version_stages"] = [s for s in other["version_stages"] if s not in stages and s != PREVIOUS]
    if previous is not None and previous != version_id:
        secret.versions[previous]["version_stages"].append(PREVIOUS)
    secret.versions[version_id] = secret_version


def _refusing_deleted(method, operation, key="secret_id"):
    """`method` of the backend, refused for a secret marked for deletion."""

    def refuse(self, *args, **kwargs):
        secret_id = kwargs.get(key, args[0] if args else None)
        if secret_id is not None and self._is_valid_identifier(secret_id):
            secret = self.secrets[secret_id]
            if getattr(secret, "is_deleted", lambda: False)():
                raise InvalidRequestException(
                    f"An error occurred (InvalidRequestException) when calling the {operation} operation: "
                    "You can't perform this operation on the secret because it was marked for deletion."
                )
        return method(self, *args, **kwargs)

    return refuse


def patch_secrets_manager():
    # The label is the truth: assignments to the default are ignored.
    FakeSecret.default_version_id = property(_current_version_id, lambda self, value: None)
    FakeSecret.set_default_version_id = lambda self, version_id: None
    FakeSecret.reset_default_version = _make_current
    for name, operation, key in [
        ("put_secret_value", "PutSecretValue", "secret_id"),
        ("update_secret_version_stage", "UpdateSecretVersionStage", "secret_id"),
        ("create_secret", "CreateSecret", "name"),
    ]:
        setattr(SecretsManagerBackend, name, _refusing_deleted(getattr(SecretsManagerBackend, name), operation, key))


class Serialized:
    def __init__(self, app, delay_s=0.0):
        self.app = app
        self.lock = threading.Lock()
        self.delay_s = delay_s
        self.requests = Counter()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_launcher/requests":
            body = json.dumps(dict(self.requests)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.requests[environ.get("HTTP_X_AMZ_TARGET", "other")] += 1
            # Materialize the body inside the lock: the backend work may be lazy.
            return list(self.app(environ, start_response))


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    patch_secrets_manager()
    app = DomainDispatcherApplication(create_backend_app)
    delay_s = float(os.environ.get("MOTO_DELAY_MS", "0")) / 1000
    run_simple(host, port, Serialized(app, delay_s), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
