"""IAM, emulated: each function calls AWS as the role SAM gives it, and moto enforces the role's
policies, so a permission missing from template.yaml fails locally as it would deployed.

- `setup()` creates in moto one role per function with the policies of `Stack.roles` (inline: the
  role SAM generates, policy templates expanded by SAM's own code, AWS managed policies from moto's
  copy), assumes it (temporary credentials, as Lambda hands a function), and makes the dummy
  credentials (`testing`) an administrator's: the harness, the dispatcher, tests' own assertions
  and any tool pointed at the endpoint.
- `enable()` switches moto's IAM enforcement on and installs, first in botocore's credential chain
  (which boto3 and PynamoDB both resolve), one credentials object that answers on every request the
  credentials of the function running in this context (`acting_as`, which LambdaRuntime sets around
  a handler and its import), and the administrator's outside any function.
- moto checks IAM only in part; `patch_moto()` completes what imgdrop relies on: the resource of
  DynamoDB, EventBridge and Secrets Manager calls (moto checks those against "*", which no
  resource-scoped statement matches), IAM wildcards (`?`, literal dots) and case-insensitive actions,
  S3 DeleteObjects per key, CopyObject's read of its source, presigned URLs and browser POST uploads
  (their credentials travel in the query or the form, not in an Authorization header), and CORS
  preflights (never authenticated).

Local only: nothing here ships in a Lambda layer.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from .template import ACCOUNT_ID, PARTITION, Stack

log = logging.getLogger("imgdrop_local.iam")

ADMIN_USER = "imgdrop-local-admin"
ADMIN_ACCESS_KEY_ID = "testing"  # moto's dummy credentials: what tools and tests already use
ADMIN_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - moto's dummy credentials  # nosec B105
SESSION_SECONDS = 43200  # the longest a role session may last; moto never expires one anyway
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com"]},
                   "Action": ["sts:AssumeRole"]}],
}

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("imgdrop_local_function", default=None)


# ---------------------------------------------------------------- who is calling


@dataclass(frozen=True)
class Identity:
    name: str  # the function's logical id, or "admin"
    arn: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


@dataclass
class Identities:
    """The credentials minted for this stack: the administrator's, and one role session per function."""

    admin: Identity
    functions: dict[str, Identity]
    policies: dict[str, list[dict[str, Any]]] = field(repr=False, default_factory=dict)

    def of(self, logical_id: str | None) -> Identity:
        if logical_id is None:
            return self.admin
        try:
            return self.functions[logical_id]
        except KeyError:
            raise RuntimeError(f"{logical_id} has no role in the local stack's IAM emulation") from None

    def by_access_key(self, access_key_id: str) -> Identity | None:
        for identity in (self.admin, *self.functions.values()):
            if identity.access_key_id == access_key_id:
                return identity
        return None

    def permits(self, logical_id: str, action: str, resource: str) -> bool:
        """Whether the function's role policies allow `action` on `resource` (IAM's evaluation:
        an explicit Deny wins, else an Allow is needed)."""
        return _evaluate(self.policies[logical_id], action, resource)


class _State:
    identities: Identities | None = None
    saved_settings: tuple[float, int] | None = None


_state = _State()
_lock = threading.Lock()


def current_function() -> str | None:
    """The logical id of the function running in this context; None in the harness."""
    return _current.get()


@contextmanager
def acting_as(logical_id: str | None) -> Iterator[None]:
    """Run the block as the function (its role's credentials), or as the administrator for None."""
    token = _current.set(logical_id)
    try:
        yield
    finally:
        _current.reset(token)


def active() -> Identities | None:
    return _state.identities


def secret_for(access_key_id: str) -> str | None:
    """The secret key of credentials this module minted (the administrator's, a role session's),
    for a checker of presigned requests; None for any other key id."""
    identities = _state.identities
    identity = identities.by_access_key(access_key_id) if identities else None
    return identity.secret_access_key if identity else None


def session_token_for(access_key_id: str) -> str | None:
    identities = _state.identities
    identity = identities.by_access_key(access_key_id) if identities else None
    return identity.session_token if identity else None


def permits(logical_id: str, action: str, resource: str) -> bool:
    """Whether the function may do `action` on `resource`; True when IAM is not emulated."""
    identities = _state.identities
    if identities is None or logical_id not in identities.policies:
        return True
    return identities.permits(logical_id, action, resource)


# ---------------------------------------------------------------- creating the roles in moto


def role_name(logical_id: str) -> str:
    return f"{logical_id}Role"  # the logical id SAM gives the role it generates


def setup(session: Any, stack: Stack, *,
          give_admin_key: Callable[[], None] | None = None) -> Identities:
    """Create the administrator and one role per function (with its policies, inline) in moto,
    and assume each role. Run it before `enable()`: moto authorizes nothing yet.
    `give_admin_key` does `give_admin_the_dummy_key` where moto runs (by default: here)."""
    iam = session.client("iam")
    sts = session.client("sts")
    admin_policy = {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    user = iam.create_user(UserName=ADMIN_USER)["User"]
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="AdministratorAccess",
                        PolicyDocument=json.dumps(admin_policy))
    (give_admin_key or give_admin_the_dummy_key)()
    admin = Identity("admin", user["Arn"], ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY)

    functions: dict[str, Identity] = {}
    policies: dict[str, list[dict[str, Any]]] = {}
    for logical_id, fn in stack.functions.items():
        name = role_name(logical_id)
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                               MaxSessionDuration=SESSION_SECONDS)["Role"]
        documents = []
        for policy in stack.role_policies(logical_id):
            # IAM reads a document without Version as 2008-10-17; moto refuses it. Only policy
            # variables tell the two apart, and no statement here uses one.
            text = json.dumps({"Version": "2012-10-17", **policy.document})
            iam.put_role_policy(RoleName=name, PolicyName=policy.name, PolicyDocument=text)
            documents.append(json.loads(text))  # the stack's own stay untouched
        credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName=fn.name,
                                      DurationSeconds=SESSION_SECONDS)["Credentials"]
        functions[logical_id] = Identity(logical_id, role["Arn"], credentials["AccessKeyId"],
                                         credentials["SecretAccessKey"], credentials["SessionToken"])
        policies[logical_id] = documents
    return Identities(admin, functions, policies)


def give_admin_the_dummy_key() -> None:
    """moto mints random key ids; the administrator's must be the dummy `testing` that the banner
    announces and every tool already uses."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT_ID][PARTITION]
    key = backend.create_access_key(ADMIN_USER)
    backend.access_keys.pop(key.access_key_id, None)
    key.access_key_id = ADMIN_ACCESS_KEY_ID
    key.secret_access_key = ADMIN_SECRET_ACCESS_KEY
    backend.access_keys[ADMIN_ACCESS_KEY_ID] = key


# ---------------------------------------------------------------- switching it on and off


def enforce_in_moto() -> None:
    """moto, in this process (the in-process mock or the threaded server), enforces IAM from now on."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    patch_moto()
    with _lock:
        if _state.saved_settings is None:
            _state.saved_settings = (settings.INITIAL_NO_AUTH_ACTION_COUNT,
                                     ActionAuthenticatorMixin.request_count)
        # moto reads the module attribute on every request (the environment variable only at import).
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0


def _stop_enforcing_in_moto() -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    with _lock:
        if _state.saved_settings is not None:
            count, requests = _state.saved_settings
            settings.INITIAL_NO_AUTH_ACTION_COUNT = count
            ActionAuthenticatorMixin.request_count = requests
            _state.saved_settings = None


def enable(identities: Identities, *, enforce: Callable[[], None] | None = None) -> None:
    """Enforce IAM in moto (`enforce`: `enforce_in_moto` where moto runs, by default here) and sign
    every request with the credentials of the function that makes it."""
    (enforce or enforce_in_moto)()
    _install_credentials()
    with _lock:
        _state.identities = identities
    _forget_cached_clients()


def disable() -> None:
    _stop_enforcing_in_moto()  # a no-op where moto runs in another process
    with _lock:
        _state.identities = None
    _forget_cached_clients()


@contextmanager
def enforced(session: Any, stack: Stack) -> Iterator[Identities]:
    identities = setup(session, stack)
    enable(identities)
    try:
        yield identities
    finally:
        disable()


def _forget_cached_clients() -> None:
    """Clients made before hold the credentials they resolved then: make the next ones resolve anew."""
    import sys

    boto3 = sys.modules.get("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None
    models = sys.modules.get("pynamodb.models")
    if models is not None:
        pending = list(models.Model.__subclasses__())
        while pending:
            model = pending.pop()
            pending.extend(model.__subclasses__())
            if "_connection" in vars(model):
                model._connection = None


# ---------------------------------------------------------------- the credentials boto3 and PynamoDB resolve


def _frozen(identity: Identity) -> Any:
    from botocore.credentials import ReadOnlyCredentials

    return ReadOnlyCredentials(identity.access_key_id, identity.secret_access_key, identity.session_token)


def _environment_credentials() -> Any:
    import os

    from botocore.credentials import ReadOnlyCredentials

    env = os.environ
    return ReadOnlyCredentials(env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", ""),
                               env.get("AWS_SESSION_TOKEN") or None)


@functools.cache
def _credentials_class() -> type:
    from botocore.credentials import Credentials

    class RoleCredentials(Credentials):
        """Answers, for each request, the credentials of the function running in this context: its
        role session's, or the administrator's outside any function (the environment's once IAM is
        no longer emulated)."""

        method = "imgdrop-local-role"

        def __init__(self) -> None:  # no static values: every read asks who is calling
            pass

        def get_frozen_credentials(self) -> Any:
            identities = _state.identities
            if identities is None:
                return _environment_credentials()
            return _frozen(identities.of(_current.get()))

        @property  # type: ignore[override]
        def access_key(self) -> str:
            return str(self.get_frozen_credentials().access_key)

        @property  # type: ignore[override]
        def secret_key(self) -> str:
            return str(self.get_frozen_credentials().secret_key)

        @property  # type: ignore[override]
        def token(self) -> str | None:
            token = self.get_frozen_credentials().token
            return str(token) if token else None

    return RoleCredentials


@functools.cache
def role_credentials() -> Any:
    return _credentials_class()()


@functools.cache
def _install_credentials() -> None:
    """First in every botocore session's credential chain (boto3's and PynamoDB's own), while IAM
    is emulated; threads and pool tasks a function starts keep acting as that function."""
    import botocore.credentials

    class RoleProvider(botocore.credentials.CredentialProvider):
        METHOD = "imgdrop-local-role"
        CANONICAL_NAME = "ImgdropLocalRole"

        def load(self) -> Any:
            return role_credentials() if _state.identities is not None else None

    create = botocore.credentials.create_credential_resolver

    @functools.wraps(create)
    def create_credential_resolver(session: Any, cache: Any = None, region_name: Any = None) -> Any:
        resolver = create(session, cache=cache, region_name=region_name)
        resolver.insert_before("env", RoleProvider())
        return resolver

    botocore.credentials.create_credential_resolver = create_credential_resolver

    # In Lambda every thread of the process is the function's; here a pool's worker runs each
    # task as the function that submitted it.
    submit = ThreadPoolExecutor.submit

    @functools.wraps(submit)
    def submit_as_caller(self: ThreadPoolExecutor, fn: Callable[..., Any], /,
                         *args: Any, **kwargs: Any) -> Any:
        caller = _current.get()
        if caller is None:
            return submit(self, fn, *args, **kwargs)

        def as_caller(*a: Any, **k: Any) -> Any:
            with acting_as(caller):
                return fn(*a, **k)

        return submit(self, as_caller, *args, **kwargs)

    ThreadPoolExecutor.submit = submit_as_caller  # type: ignore[method-assign]

    # ... and a thread it starts acts as the function too.
    start = threading.Thread.start

    @functools.wraps(start)
    def start_as_caller(self: threading.Thread) -> None:
        caller = _current.get()
        if caller is not None:
            run = self.run

            def run_as_caller() -> None:
                with acting_as(caller):
                    run()

            self.run = run_as_caller  # type: ignore[method-assign]
        start(self)

    threading.Thread.start = start_as_caller  # type: ignore[method-assign]


# ---------------------------------------------------------------- policy evaluation


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, fold_case: bool) -> re.Pattern[str]:
    """An IAM wildcard: `*` any run of characters, `?` any one; everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if fold_case else 0))


def _matches(patterns: Any, value: str, *, fold_case: bool) -> bool:
    items = patterns if isinstance(patterns, list) else [patterns]
    return any(_pattern(str(p), fold_case).fullmatch(value) is not None for p in items)


def _evaluate(documents: list[Any], action: str, resource: str) -> bool:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    patch_moto()
    allowed = False
    for document in documents:
        # moto's own principals answer documents as text, dicts or policy objects; ours are documents.
        policy = json.dumps(document) if isinstance(document, dict) and "Statement" in document else document
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        allowed = allowed or result == PermissionResult.PERMITTED
    return allowed


def _permits(access_key: Any, action: str, resource: str) -> bool:
    """Whether the policies of moto's principal behind `access_key` allow `action` on `resource`."""
    return _evaluate(access_key.collect_policies(), action, resource)


# ---------------------------------------------------------------- completing moto's checks


_object_check: contextvars.ContextVar[Callable[[str, str], bool] | None] = contextvars.ContextVar(
    "imgdrop_local_object_check", default=None)


def _enforcing() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def _params(response: Any) -> dict[str, Any]:
    body = getattr(response, "body", None)
    if isinstance(body, dict):
        return body
    try:
        parsed = json.loads(body or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _unique(items: list[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


Check = tuple[str, str]  # (IAM action, resource ARN)

# A transaction is authorized item by item, as the action each item performs.
_TRANSACT_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def _dynamodb_checks(action: str, params: dict[str, Any], region: str, account: str) -> list[Check] | None:
    def table(name: str) -> str:
        prefix = f"arn:{PARTITION}:dynamodb:{region}:{account}:table/"
        return name if name.startswith("arn:") else prefix + name

    if action in ("BatchGetItem", "BatchWriteItem"):
        return _unique([(f"dynamodb:{action}", table(name)) for name in params.get("RequestItems") or {}])
    if action in ("TransactGetItems", "TransactWriteItems"):
        return _unique([(f"dynamodb:{_TRANSACT_ITEM_ACTIONS.get(kind, kind)}", table(op["TableName"]))
                        for item in params.get("TransactItems") or [] for kind, op in item.items()
                        if isinstance(op, dict) and op.get("TableName")])
    if params.get("TableName"):
        arn = table(str(params["TableName"]))
        index = params.get("IndexName")
        return [(f"dynamodb:{action}", f"{arn}/index/{index}" if index else arn)]
    return None


def _events_checks(action: str, params: dict[str, Any], region: str, account: str) -> list[Check] | None:
    if action != "PutEvents":
        return None

    def bus(name: str) -> str:
        prefix = f"arn:{PARTITION}:events:{region}:{account}:event-bus/"
        return name if name.startswith("arn:") else prefix + name

    entries = params.get("Entries") or []
    return _unique([("events:PutEvents", bus(str(e.get("EventBusName") or "default"))) for e in entries])


def _secretsmanager_checks(action: str, params: dict[str, Any], region: str,
                           account: str) -> list[Check] | None:
    secret_id = params.get("SecretId")
    if not secret_id:
        return None
    secret_id = str(secret_id)
    arn = secret_id
    if not secret_id.startswith("arn:"):
        from moto.secretsmanager.models import secretsmanager_backends

        secret = secretsmanager_backends[account][region].secrets.get(secret_id)
        arn = secret.arn if secret is not None else (
            f"arn:{PARTITION}:secretsmanager:{region}:{account}:secret:{secret_id}")
    return [(f"secretsmanager:{action}", arn)]


# moto authorizes these services' calls against "*", which no resource-scoped statement matches.
_CHECKS: dict[str, Callable[[str, dict[str, Any], str, str], list[Check] | None]] = {
    "dynamodb": _dynamodb_checks,
    "events": _events_checks,
    "secretsmanager": _secretsmanager_checks,
}


def _iam_request(response: Any, request_cls: type) -> Any:
    """moto's own IAM request for this response, as `_authenticate_and_authorize_action` builds it."""
    parsed = urlparse(response.uri)
    path = response.raw_path + ("?" + parsed.query if parsed.query else "")
    return request_cls(account_id=response.current_account, method=response.method, path=path,
                       data=response.data, body=response.raw_body, headers=response.headers,
                       action=response._get_action())


def _s3_denied(response: Any) -> Exception:
    from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError

    bucket = response.data.get("BucketName") if isinstance(response.data, dict) else None
    return BucketAccessDeniedError(bucket=bucket) if bucket else S3AccessDeniedError()


def _authorize_s3_without_header(response: Any, resource: str) -> None:
    """A presigned URL (credentials in the query) or a browser's POST upload (in the form): the
    signer's policies decide, as for any request. Their signature and expiry are the presigned
    request checker's to verify; no credentials at all is an anonymous request, which a private
    bucket refuses."""
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key
    from moto.s3.exceptions import S3InvalidAccessKeyIdError, S3InvalidTokenError

    fields = {str(k).lower(): (v[0] if isinstance(v, list) and v else v)
              for k, v in response.querystring.items()}
    # SigV4 names the key in its credential scope, SigV2 on its own
    access_key_id = str(fields.get("x-amz-credential") or fields.get("awsaccesskeyid") or "").split("/")[0]
    if not access_key_id:
        raise _s3_denied(response)
    token = fields.get("x-amz-security-token")
    try:
        access_key = create_access_key(account_id=response.current_account, partition=PARTITION,
                                       access_key_id=access_key_id,
                                       headers={"X-Amz-Security-Token": str(token)} if token else {})
    except CreateAccessKeyFailure as exc:
        if exc.reason == "InvalidToken":
            raise S3InvalidTokenError() from None
        raise S3InvalidAccessKeyIdError() from None
    action = f"s3:{response._get_action()}"
    if response.method == "POST" and fields.get("key") and resource.count("/") == 0:
        resource = f"{resource}/{fields['key']}"  # a POST upload writes bucket/key
    if not _permits(access_key, action, resource):
        raise _s3_denied(response)


def _copy_source(response: Any) -> str | None:
    source = response.headers.get("x-amz-copy-source")
    if not source:
        return None
    path = unquote(str(source)).lstrip("/").split("?versionId=", 1)[0]
    return f"arn:{PARTITION}:s3:::{path}"


def _as_json_error(response: Any, error: Any, resource: str) -> Any:
    """moto answers an IAM refusal in XML, even to the JSON protocols (DynamoDB, EventBridge,
    Secrets Manager, SQS), where the SDK then reads the bare status as the error code. Answer
    as AWS does: an AccessDeniedException naming the resource."""
    from moto.core.exceptions import JsonRESTError

    content_type = str(response.headers.get("Content-Type") or "")
    if not response.headers.get("X-Amz-Target") or "json" not in content_type:
        return error
    if error.error_type == "AccessDenied":
        action = error.message.rsplit(" ", 1)[-1]
        converted = JsonRESTError("AccessDeniedException", f"{error.message} on resource: {resource} "
                                  f"because no identity-based policy allows the {action} action")
    else:
        converted = JsonRESTError(error.error_type, error.message)
    converted.code = error.code
    return converted


_patched = False


def patch_moto() -> None:
    """Complete moto's IAM checks where imgdrop relies on them (see the module's docstring). Once
    per process; the patched checks behave as moto's own while enforcement is off."""
    global _patched
    with _lock:
        if _patched:
            return
        _patched = True
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError, _RESTError
    from moto.iam import access_control
    from moto.iam.access_control import IAMRequest, PermissionResult, S3IAMRequest
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    def check_element_matches(self: Any, element: str, value: str) -> bool:
        return _matches(self._statement[element], value, fold_case=element in ("Action", "NotAction"))

    access_control.IAMPolicyStatement._check_element_matches = check_element_matches

    authorize_action = ActionAuthenticatorMixin._authenticate_and_authorize_action
    authorize_normal = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def authenticate_and_authorize_normal_action(self: Any, resource: str = "*") -> None:
        if not _enforcing():
            return authorize_normal(self, resource)
        finder = _CHECKS.get(str(getattr(self, "service_name", "")))
        checks = None
        if finder is not None:
            checks = finder(self._get_action(), _params(self), self.region, self.current_account)
        try:
            if not checks:
                return authorize_normal(self, resource)
            request = _iam_request(self, IAMRequest)
            request.check_signature()
            for action, each in checks:
                resource = each
                if not _permits(request._access_key, action, each):
                    raise AccessDeniedError(user_arn=request._access_key.arn, action=action)
        except _RESTError as error:
            raise _as_json_error(self, error, resource) from None
        return None

    def authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if iam_request_cls is not S3IAMRequest or not _enforcing():
            return authorize_action(self, iam_request_cls, resource)
        if self.method == "OPTIONS":
            return None  # a CORS preflight carries no credentials, in S3 too
        if self.data.get("Action") != "HeadBucket":
            return _authorize_s3(self, resource)
        self.data["Action"] = "ListBucket"  # HeadBucket is authorized as s3:ListBucket
        try:
            return _authorize_s3(self, resource)
        finally:
            self.data["Action"] = "HeadBucket"

    def _authorize_s3(self: Any, resource: str) -> None:
        if "Authorization" not in self.headers:
            return _authorize_s3_without_header(self, resource)
        request = _iam_request(self, S3IAMRequest)
        request.check_signature()
        if self.method == "POST" and "delete" in self.querystring:
            # DeleteObjects: S3 authorizes s3:DeleteObject on each key; answered per key.
            self._imgdrop_access_key = request._access_key
            return None
        request.check_action_permitted(resource)
        source = _copy_source(self) if self.method == "PUT" else None
        if source and not _permits(request._access_key, "s3:GetObject", source):
            request._raise_access_denied()  # CopyObject reads its source as the caller
        return None

    mixin = ActionAuthenticatorMixin
    mixin._authenticate_and_authorize_normal_action = authenticate_and_authorize_normal_action  # type: ignore[method-assign]
    mixin._authenticate_and_authorize_action = authenticate_and_authorize_action  # type: ignore[method-assign]

    delete_keys = S3Response._bucket_response_delete_keys

    def bucket_response_delete_keys(self: Any, bucket_name: str, authenticated: bool = True) -> Any:
        access_key = getattr(self, "_imgdrop_access_key", None)
        if access_key is None:
            return delete_keys(self, bucket_name, authenticated)
        token = _object_check.set(lambda action, resource: _permits(access_key, action, resource))
        try:
            return delete_keys(self, bucket_name, authenticated=True)
        finally:
            _object_check.reset(token)

    S3Response._bucket_response_delete_keys = bucket_response_delete_keys

    get_permission = FakeBucket.get_permission

    def bucket_get_permission(self: Any, action: str, resource: str) -> Any:
        check = _object_check.get()
        if check is not None and not check(action, resource):
            return PermissionResult.DENIED
        return get_permission(self, action, resource)

    FakeBucket.get_permission = bucket_get_permission
