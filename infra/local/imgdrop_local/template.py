"""template.yaml, read at run time and resolved to what the local stack needs.

The local stack never restates the deployment: routes, environment variables, the bucket's
notification filters, retries, destinations, schedules and the table/bucket/queue properties
all come from here, so tests and `make dev` cannot drift from what SAM deploys.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .tokens import LOCAL_DEV_SECRET as DEV_JWT_SECRET

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
LOCAL_API_ID = "imgdroplocal"

# The local CDN (imgdrop_local.cdn) stands in for template.yaml's CloudFront distribution:
# `!GetAtt <distribution>.DomainName` is its host (and an `https://` URL on it becomes `http://`),
# `!Ref <AWS::CloudFront::PublicKey>` the dev key pair's id, `!Ref <distribution>` empty (nothing
# caches locally, so there is nothing to invalidate: CDN_DISTRIBUTION_ID empty makes it a no-op).
# The private key's secret parameter is the secret create_resources makes (the dev key's PEM); its
# name ends like a secret ARN's random suffix, so the ARN passes the parameter's AllowedPattern.
LOCAL_CDN_KEY_PAIR_ID = "KIMGDROPLOCALDEV"
LOCAL_CDN_SECRET_NAME = "imgdrop-local-cdn-private-key-devkey"  # noqa: S105 - a name  # nosec B105
LOCAL_CDN_SECRET_ARN = f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{LOCAL_CDN_SECRET_NAME}"
# Parameters without a default that the local stack answers itself.
LOCAL_PARAMETERS = {"DeliveryPrivateKeySecretArn": LOCAL_CDN_SECRET_ARN}


def local_cdn_port() -> int:
    return int(os.environ.get("IMGDROP_CDN_PORT") or 3001)


def local_cdn_host() -> str:
    return f"127.0.0.1:{local_cdn_port()}"


_PSEUDO = {
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "imgdrop-local",
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/imgdrop-local/local",
    "AWS::NoValue": None,
}


# ---------------------------------------------------------------- YAML with CloudFormation tags


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that turns `!Ref X` into `{"Ref": "X"}` and `!Sub ...` into `{"Fn::Sub": ...}`."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else "Condition" if suffix == "Condition" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":  # !GetAtt Resource.Attribute
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_yaml(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=CfnLoader)  # noqa: S506 - CfnLoader derives from SafeLoader  # nosec B506


# ---------------------------------------------------------------- the resolved model


@dataclass(frozen=True)
class Route:
    method: str  # GET, POST, ... or ANY
    path: str  # /v1/images/{id}
    function: str  # logical id of the integration's function
    authorizer: str | None  # logical id of the authorizer's function, None for Auth NONE

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Destination:
    type: str  # "Lambda" | "SQS" | "SNS" | "EventBridge"
    target: str  # logical id of the function or queue
    arn: str


@dataclass(frozen=True)
class InvokeConfig:
    maximum_retry_attempts: int = 2  # Lambda's default for asynchronous invocations
    maximum_event_age_seconds: int = 21600
    on_success: Destination | None = None
    on_failure: Destination | None = None


@dataclass(frozen=True)
class Notification:
    event: str  # s3:ObjectCreated:*
    function: str  # logical id
    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source mapping (a function's `Type: SQS` event): its poller receives up to
    `batch_size` messages and invokes the function with them, synchronously."""

    function: str  # logical id
    queue: str  # logical id of the queue
    batch_size: int = 10
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency
    report_batch_item_failures: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class Schedule:
    function: str
    name: str
    expression: str
    rate_seconds: float | None  # None for cron expressions


@dataclass
class Function:
    logical_id: str
    name: str  # the local function name (the logical id), as in its ARN
    code_uri: Path
    handler: str  # app.lambda_handler
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    invoke_config: InvokeConfig
    arn: str

    @property
    def module_path(self) -> Path:
        module = self.handler.rsplit(".", 1)[0]
        return self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def handler_attr(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass
class Cors:
    allow_origins: list[str]
    allow_methods: list[str]
    allow_headers: list[str]
    expose_headers: list[str] = field(default_factory=list)
    max_age: int | None = None
    allow_credentials: bool = False


@dataclass(frozen=True)
class RolePolicy:
    """One policy of a function's execution role, resolved: an inline policy of the role that SAM
    generates (named as SAM names it), or an AWS managed policy that SAM attaches (named by its ARN;
    its document is moto's copy of AWS's)."""

    name: str
    document: dict[str, Any]
    managed_arn: str | None = None

    @property
    def statements(self) -> list[dict[str, Any]]:
        statements = self.document.get("Statement") or []
        return [statements] if isinstance(statements, dict) else list(statements)


@dataclass
class Stack:
    """What the local stack needs from template.yaml, with every intrinsic resolved."""

    parameters: dict[str, Any]
    functions: dict[str, Function]
    routes: list[Route]
    cors: Cors | None
    notifications: list[Notification]
    schedules: list[Schedule]
    table_name: str
    table_properties: dict[str, Any]
    bucket_name: str
    bucket_properties: dict[str, Any]
    queue_names: dict[str, str]  # logical id -> queue name
    queue_properties: dict[str, dict[str, Any]]
    secret_name: str | None
    queue_sources: list[QueueSource] = field(default_factory=list)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    parameter_overrides: dict[str, Any] = field(repr=False, default_factory=dict)
    _roles: dict[str, list[RolePolicy]] | None = field(repr=False, default=None, compare=False)

    def function(self, logical_id: str) -> Function:
        return self.functions[logical_id]

    @property
    def roles(self) -> dict[str, list[RolePolicy]]:
        """Every function's execution role as SAM deploys it: its policies, resolved. Computed on
        first use (SAM's transform takes a second), then kept."""
        if self._roles is None:
            self._roles = sam_roles(self.raw, self.parameter_overrides, list(self.functions))
        return self._roles

    def role_policies(self, logical_id: str) -> list[RolePolicy]:
        return self.roles[logical_id]

    def policy_statements(self, logical_id: str) -> list[dict[str, Any]]:
        """The statements of all of the function's role policies, in order."""
        return [statement for policy in self.role_policies(logical_id) for statement in policy.statements]

    def by_short_name(self, name: str) -> Function:
        """`api` -> ApiFunction: the folder name under functions/."""
        for fn in self.functions.values():
            if fn.code_uri.name == name:
                return fn
        raise KeyError(name)

    def environment(self, *, check: bool = True) -> dict[str, str]:
        """The union of every function's variables; all functions share one process locally,
        so two functions that disagree on a value cannot both be right: fail loudly."""
        merged: dict[str, str] = {}
        owner: dict[str, str] = {}
        for fn in self.functions.values():
            for key, value in fn.environment.items():
                if check and key in merged and merged[key] != value:
                    raise ValueError(
                        f"{key} differs between {owner[key]} ({merged[key]!r}) and "
                        f"{fn.logical_id} ({value!r}); the local stack runs all functions in one process"
                    )
                merged.setdefault(key, value)
                owner.setdefault(key, fn.logical_id)
        return merged

    @property
    def failed_events_queue(self) -> str | None:
        """The queue that a function's OnFailure destination names, if any."""
        for fn in self.functions.values():
            dest = fn.invoke_config.on_failure
            if dest and dest.type == "SQS":
                return self.queue_names[dest.target]
        return next(iter(self.queue_names.values()), None)


# ---------------------------------------------------------------- intrinsic functions


class Resolver:
    """Evaluates CloudFormation intrinsics against local values."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any]):
        self.template = template
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters = parameters
        self.conditions: dict[str, bool] = {}
        self._physical: dict[str, Any] = {}
        for name, expr in (template.get("Conditions") or {}).items():
            self.conditions[name] = bool(self.resolve(expr))

    # physical ids: what `Ref` answers for a resource, locally
    def ref(self, name: str) -> Any:
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name.endswith(".Alias") and name.removesuffix(".Alias") in self.resources:
            return self.alias_arn(name.removesuffix(".Alias"))
        if name not in self.resources:
            raise KeyError(f"!Ref {name}: no such parameter or resource")
        if name in self._physical:
            return self._physical[name]
        res = self.resources[name]
        props = res.get("Properties") or {}
        kind = res["Type"]
        self._physical[name] = f"local-{name}"  # guards against cycles
        value: Any
        if kind == "AWS::DynamoDB::Table":
            value = self.resolve(props.get("TableName", name))
        elif kind == "AWS::S3::Bucket":
            value = self.resolve(props.get("BucketName", name.lower()))
        elif kind == "AWS::SQS::Queue":
            # Ref answers the queue URL in AWS; locally the name is what clients need.
            value = self.resolve(props.get("QueueName", name))
        elif kind == "AWS::SecretsManager::Secret":
            # Ref answers the ARN in AWS; GetSecretValue accepts the name as well.
            value = self.resolve(props.get("Name", name))
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            value = self.resolve(props.get("FunctionName", name))
        elif kind == "AWS::Lambda::Alias":  # SAM's transform makes one of AutoPublishAlias
            function_name, alias = self.resolve(props["FunctionName"]), self.resolve(props["Name"])
            value = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}:{alias}"
        elif kind == "AWS::SNS::Topic":
            value = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
        elif kind == "AWS::CloudFront::PublicKey":
            value = LOCAL_CDN_KEY_PAIR_ID
        elif kind == "AWS::CloudFront::Distribution":
            value = ""
        else:
            value = f"local-{name}"
        self._physical[name] = value
        return value

    def ref_value(self, name: str) -> Any:
        """What `!Ref name` (or `${name}` in a !Sub) answers; the physical id by default."""
        return self.ref(name)

    def alias_arn(self, function: str) -> str:
        """What SAM's `!Ref Function.Alias` answers: the ARN of its AutoPublishAlias. Locally there
        are no versions: the alias invokes the function's one copy (README, "What differs locally")."""
        alias = (self.resources[function].get("Properties") or {}).get("AutoPublishAlias")
        if not alias:
            raise KeyError(f"!Ref {function}.Alias: {function} has no AutoPublishAlias")
        return f"{self.get_att(function, 'Arn')}:{self.resolve(alias)}"

    def get_att(self, name: str, attr: str) -> Any:
        res = self.resources[name]
        kind = res["Type"]
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function") and attr == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.ref(name)}"
        if kind == "AWS::SQS::Queue":
            queue = self.ref(name)
            if attr == "Arn":
                return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue}"
            if attr == "QueueName":
                return queue
            if attr == "QueueUrl":
                return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{queue}"
        if kind == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{self.ref(name)}"
        if kind == "AWS::DynamoDB::Table" and attr == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{self.ref(name)}"
        if kind == "AWS::CloudFront::Distribution" and attr == "DomainName":
            return local_cdn_host()
        return f"local-{name}-{attr}"

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(item) for item in node]
            return [item for item in out if item is not None]  # AWS::NoValue drops the item
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref_value(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.conditions[arg]
            if key.startswith("Fn::"):
                return self._fn(key[4:], arg)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not None}

    def _fn(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(parts[0], self.resolve(parts[1]))
        if name == "Sub":
            return self._sub(arg)
        if name == "Join":
            sep, items = arg
            return self.resolve(sep).join(str(i) for i in self.resolve(items))
        if name == "Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Split":
            sep, text = arg
            return self.resolve(text).split(self.resolve(sep))
        if name == "If":
            cond, yes, no = arg
            return self.resolve(yes if self.conditions[cond] else no)
        if name == "Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        if name == "Not":
            return not self.resolve(arg[0])
        if name == "And":
            return all(self.resolve(a) for a in arg)
        if name == "Or":
            return any(self.resolve(a) for a in arg)
        if name == "GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        if name == "Base64":
            import base64

            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if name == "FindInMap":
            map_name, top, second = (self.resolve(a) for a in arg)
            return self.template["Mappings"][map_name][top][second]
        raise NotImplementedError(f"Fn::{name} is not supported by the local stack")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and expr.split(".", 1)[0] in self.resources:
                res, attr = expr.split(".", 1)
                return str(self.get_att(res, attr))
            value = self.ref_value(expr)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


# ---------------------------------------------------------------- loading


def _parameter_defaults(template: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        value = (overrides or {}).get(name, spec.get("Default", LOCAL_PARAMETERS.get(name, "")))
        if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            value = [v.strip() for v in value.split(",")] if value else []
        params[name] = value
    return params


def _rate_seconds(expression: str) -> float | None:
    match = re.fullmatch(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", expression.strip())
    if not match:
        return None
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[unit]


def _logical_id(expr: Any) -> str | None:
    """The resource an unresolved `!GetAtt X.Arn` or `!Ref X` names."""
    if not isinstance(expr, dict):
        return None
    if "Fn::GetAtt" in expr:
        att = expr["Fn::GetAtt"]
        return str(att[0] if isinstance(att, list) else str(att).split(".", 1)[0])
    ref = expr.get("Ref")
    return str(ref).removesuffix(".Alias") if ref is not None else None


def _env_value(value: Any) -> str:
    """CloudFormation passes variables as strings: true -> "true", 20 -> "20". The local CDN
    speaks plain HTTP: an https URL on its host becomes http."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    if text.startswith(f"https://{local_cdn_host()}"):
        text = "http://" + text[len("https://"):]
    return text


def _destination(resolver: Resolver, spec: dict[str, Any] | None) -> Destination | None:
    if not spec:
        return None
    raw = spec.get("Destination")
    # The logical id is what the local stack routes on; find it in the unresolved expression.
    target = _logical_id(raw)
    arn = str(resolver.resolve(raw))
    kind = spec.get("Type") or _kind_from_arn(arn)
    if target is None:
        target = arn.rsplit(":", 1)[-1]
    return Destination(type=kind, target=target, arn=arn)


def _refuse_what_snapstart_refuses(logical_id: str, props: dict[str, Any],
                                   prop: Callable[[str, Any], Any]) -> None:
    """Lambda refuses to publish a SnapStart version of a function with more than 512 MB of
    ephemeral storage, EFS or provisioned concurrency: the local stack refuses them alike. And as
    SnapStart applies only to published versions (SAM publishes one for an AutoPublishAlias),
    asking for it without an alias would do nothing: reported as the mistake it is."""
    if (prop("SnapStart", {}) or {}).get("ApplyOn") != "PublishedVersions":
        return
    storage = int((prop("EphemeralStorage", {}) or {}).get("Size", 512))
    if storage > 512:
        raise ValueError(f"{logical_id}: SnapStart does not support ephemeral storage over 512 MB "
                         f"({storage} MB)")
    if prop("FileSystemConfigs", None):
        raise ValueError(f"{logical_id}: SnapStart does not support Amazon EFS")
    if prop("ProvisionedConcurrencyConfig", None):
        raise ValueError(f"{logical_id}: SnapStart and provisioned concurrency exclude each other")
    if not props.get("AutoPublishAlias"):
        raise ValueError(f"{logical_id}: SnapStart applies to published versions: "
                         "give it an AutoPublishAlias")


def _kind_from_arn(arn: str) -> str:
    service = arn.split(":")[2] if arn.count(":") >= 2 else ""
    return {"lambda": "Lambda", "sqs": "SQS", "sns": "SNS", "events": "EventBridge"}.get(service, "Lambda")


def load(path: Path | str | None = None, parameters: dict[str, Any] | None = None) -> Stack:
    """Read template.yaml and resolve it to local values.

    `parameters` override the template's parameter defaults (as `--parameter-overrides` would).
    IMGDROP_TEMPLATE names another template (tests run stand-in functions next to a copy).
    """
    template_path = Path(path or os.environ.get("IMGDROP_TEMPLATE") or TEMPLATE_PATH)
    root = template_path.resolve().parent
    template = load_yaml(template_path)
    resolver = Resolver(template, _parameter_defaults(template, parameters))
    resources: dict[str, Any] = template.get("Resources", {})

    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    global_env = resolver.resolve((globals_fn.get("Environment") or {}).get("Variables") or {})

    functions: dict[str, Function] = {}
    routes: list[Route] = []
    schedules: list[Schedule] = []
    queue_sources: list[QueueSource] = []
    api_default_auth: dict[str, str | None] = {}
    cors: Cors | None = None

    for logical_id, res in resources.items():
        if res.get("Type") != "AWS::Serverless::HttpApi":
            continue
        props = res.get("Properties") or {}
        auth = props.get("Auth") or {}
        default = auth.get("DefaultAuthorizer")
        authorizers = auth.get("Authorizers") or {}
        fn_of_authorizer = _logical_id(authorizers[default].get("FunctionArn")) if default else None
        api_default_auth[logical_id] = fn_of_authorizer
        cors_cfg = resolver.resolve(props.get("CorsConfiguration"))
        if isinstance(cors_cfg, dict):
            origins = cors_cfg.get("AllowOrigins") or []
            cors = Cors(
                allow_origins=[origins] if isinstance(origins, str) else list(origins),
                allow_methods=list(cors_cfg.get("AllowMethods") or []),
                allow_headers=[h.lower() for h in cors_cfg.get("AllowHeaders") or []],
                expose_headers=list(cors_cfg.get("ExposeHeaders") or []),
                max_age=cors_cfg.get("MaxAge"),
                allow_credentials=bool(cors_cfg.get("AllowCredentials", False)),
            )
        elif cors_cfg is True:
            cors = Cors(["*"], ["*"], ["*"])

    for logical_id, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}

        def prop(name: str, default: Any, props: dict[str, Any] = props) -> Any:
            return resolver.resolve(props.get(name, globals_fn.get(name, default)))

        _refuse_what_snapstart_refuses(logical_id, props, prop)
        env = dict(global_env)
        env.update(resolver.resolve((props.get("Environment") or {}).get("Variables") or {}))
        eic = props.get("EventInvokeConfig") or {}
        dest = eic.get("DestinationConfig") or {}
        invoke_config = InvokeConfig(
            maximum_retry_attempts=int(resolver.resolve(eic.get("MaximumRetryAttempts", 2))),
            maximum_event_age_seconds=int(resolver.resolve(eic.get("MaximumEventAgeInSeconds", 21600))),
            on_success=_destination(resolver, dest.get("OnSuccess")),
            on_failure=_destination(resolver, dest.get("OnFailure")),
        )
        functions[logical_id] = Function(
            logical_id=logical_id,
            name=str(resolver.ref(logical_id)),
            code_uri=(root / str(prop("CodeUri", ""))).resolve(),
            handler=str(prop("Handler", "app.lambda_handler")),
            memory_mb=int(prop("MemorySize", 128)),
            timeout_s=int(prop("Timeout", 3)),
            environment={k: _env_value(v) for k, v in env.items()},
            invoke_config=invoke_config,
            arn=resolver.get_att(logical_id, "Arn"),
        )
        for event_name, event in (props.get("Events") or {}).items():
            kind = event.get("Type")
            eprops = event.get("Properties") or {}
            if kind == "HttpApi":
                api_ref = eprops.get("ApiId")
                api_id = api_ref.get("Ref") if isinstance(api_ref, dict) else None
                default_auth = api_default_auth.get(api_id) if api_id else next(
                    iter(api_default_auth.values()), None
                )
                auth = (eprops.get("Auth") or {}).get("Authorizer")
                authorizer = None if auth == "NONE" else default_auth
                method = str(resolver.resolve(eprops.get("Method", "ANY"))).upper()
                routes.append(Route(method, str(resolver.resolve(eprops.get("Path", "/$default"))),
                                    logical_id, authorizer))
            elif kind in ("ScheduleV2", "Schedule"):
                if eprops.get("State", "ENABLED") == "DISABLED" or eprops.get("Enabled") is False:
                    continue
                expression = str(resolver.resolve(eprops["ScheduleExpression"]))
                schedules.append(Schedule(logical_id, event_name, expression, _rate_seconds(expression)))
            elif kind == "SQS":
                queue = _logical_id(eprops.get("Queue"))
                if queue is None:
                    raise NotImplementedError(f"{logical_id}.{event_name}: an SQS event's queue must be "
                                              "a queue of the template (!GetAtt Queue.Arn)")
                scaling = resolver.resolve(eprops.get("ScalingConfig") or {})
                responses = resolver.resolve(eprops.get("FunctionResponseTypes")) or []
                queue_sources.append(QueueSource(
                    logical_id, queue, int(resolver.resolve(eprops.get("BatchSize", 10))),
                    int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None,
                    "ReportBatchItemFailures" in responses,
                    bool(resolver.resolve(eprops.get("Enabled", True))),
                ))

    notifications: list[Notification] = []
    table_name = bucket_name = ""
    table_properties: dict[str, Any] = {}
    bucket_properties: dict[str, Any] = {}
    queue_names: dict[str, str] = {}
    queue_properties: dict[str, dict[str, Any]] = {}
    secret_name: str | None = None
    for logical_id, res in resources.items():
        kind = res.get("Type")
        if kind == "AWS::DynamoDB::Table" and not table_name:
            table_name = str(resolver.ref(logical_id))
            table_properties = resolver.resolve(res.get("Properties") or {})
        elif kind == "AWS::S3::Bucket" and not bucket_name:
            bucket_name = str(resolver.ref(logical_id))
            raw_props = res.get("Properties") or {}
            for cfg in (raw_props.get("NotificationConfiguration") or {}).get("LambdaConfigurations") or []:
                fn_expr = cfg.get("Function")
                target = _logical_id(fn_expr)
                if target is None:
                    target = str(resolver.resolve(fn_expr)).rsplit(":", 1)[-1]
                rules = ((cfg.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
                values = {str(r["Name"]).lower(): str(resolver.resolve(r["Value"])) for r in rules}
                notifications.append(Notification(str(resolver.resolve(cfg["Event"])), target,
                                                  values.get("prefix", ""), values.get("suffix", "")))
            bucket_properties = resolver.resolve({k: v for k, v in raw_props.items()
                                                  if k != "NotificationConfiguration"})
        elif kind == "AWS::SQS::Queue":
            queue_names[logical_id] = str(resolver.ref(logical_id))
            queue_properties[logical_id] = resolver.resolve(res.get("Properties") or {})
        elif kind == "AWS::SecretsManager::Secret" and secret_name is None:
            secret_name = str(resolver.ref(logical_id))

    return Stack(
        parameters=resolver.parameters,
        functions=functions,
        routes=routes,
        cors=cors,
        notifications=notifications,
        schedules=schedules,
        table_name=table_name,
        table_properties=table_properties,
        bucket_name=bucket_name,
        bucket_properties=bucket_properties,
        queue_names=queue_names,
        queue_properties=queue_properties,
        secret_name=secret_name,
        queue_sources=queue_sources,
        raw=template,
        parameter_overrides=dict(parameters or {}),
    )


def cors_origins(stack: Stack) -> list[str]:
    """IMGDROP_CORS_ORIGINS (comma separated) narrows the origins; default: the template's."""
    env = os.environ.get("IMGDROP_CORS_ORIGINS", "").strip()
    if env:
        return [o.strip() for o in env.split(",") if o.strip()]
    origins = stack.parameters.get("AllowedOrigins") or ["*"]
    return [origins] if isinstance(origins, str) else list(origins)


# ---------------------------------------------------------------- the functions' roles, as SAM deploys them


class PolicyResolver(Resolver):
    """The Resolver, with `Ref` answering what CloudFormation answers where the local stack
    answers a name for convenience: a secret's ARN and a queue's URL. Policies need the former.

    A secret's ARN ends in six random characters that only its creation decides; the policy names
    it with the `-??????` wildcard, the IAM idiom for "this secret, whatever its suffix"."""

    def ref_value(self, name: str) -> Any:
        value = self.ref(name)
        kind = (self.resources.get(name) or {}).get("Type")
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{value}-??????"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{value}"
        return value


_LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


@functools.cache
def aws_managed_policies() -> dict[str, dict[str, Any]]:
    """AWS managed policies by ARN: moto's copy of their documents (`make aws_managed_policies`)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    data = json.loads(aws_managed_policies_data)
    return {f"arn:{PARTITION}:iam::aws:policy{p.get('Path', '/')}{name}": p["Document"]
            for name, p in data.items()}


def sam_transform(template: dict[str, Any],
                  parameter_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """template.yaml as SAM's transform turns it into CloudFormation, with SAM's own code
    (aws-sam-translator, the version `sam` runs): the roles it generates are what deploys, policy
    templates, managed policies and the permissions SAM adds of itself included.

    Local code paths stand in as S3 URIs, as `sam package` would upload them; nothing reaches AWS.
    A template SAM refuses (an unknown policy template, say) raises ValueError, naming SAM's reasons.
    """
    import copy

    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    document = copy.deepcopy(template)
    for resource in (document.get("Resources") or {}).values():
        prop = _LOCAL_URI_PROPERTIES.get(resource.get("Type"))
        props = resource.get("Properties") or {}
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            props[prop] = "s3://imgdrop-local-artifacts/" + props[prop].strip("/")
    global_fn = (document.get("Globals") or {}).get("Function") or {}
    if isinstance(global_fn.get("CodeUri"), str) and not global_fn["CodeUri"].startswith("s3://"):
        global_fn["CodeUri"] = "s3://imgdrop-local-artifacts/" + global_fn["CodeUri"].strip("/")

    values = {k: ",".join(v) if isinstance(v, list) else v for k, v in (parameter_overrides or {}).items()}
    to_py27_compatible_template(document, values)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    by_name = {arn.rsplit("/", 1)[-1]: arn for arn in aws_managed_policies()}
    try:
        transformed = translator.translate(document, parameter_values=values,
                                           get_managed_policy_map=lambda: by_name)
    except InvalidDocumentException as exc:
        reasons = " ".join(str(getattr(cause, "message", cause)) for cause in exc.causes)
        raise ValueError(f"SAM cannot transform the template: {reasons}") from exc
    return undo_mark_unicode_str_in_template(transformed)


def sam_roles(template: dict[str, Any], parameter_overrides: dict[str, Any] | None,
              functions: list[str]) -> dict[str, list[RolePolicy]]:
    """Each function's execution role after SAM's transform, every policy resolved locally.

    What the local stack cannot know or does not emulate fails loudly: a role that is not a
    resource of the template, a permissions boundary, a managed policy that moto has no copy of.
    """
    transformed = sam_transform(template, parameter_overrides)
    resources: dict[str, Any] = transformed.get("Resources") or {}
    resolver = PolicyResolver(transformed, _parameter_defaults(template, parameter_overrides))
    roles: dict[str, list[RolePolicy]] = {}
    for logical_id in functions:
        role_expr = ((resources.get(logical_id) or {}).get("Properties") or {}).get("Role")
        role_id = _logical_id(role_expr)
        role = resources.get(role_id or "") or {}
        if role.get("Type") != "AWS::IAM::Role":
            raise NotImplementedError(f"{logical_id}: its role ({role_expr!r}) is not a role of the "
                                      "template; the local stack cannot know its policies")
        props = role.get("Properties") or {}
        if props.get("PermissionsBoundary"):
            raise NotImplementedError(f"{logical_id}: permissions boundaries are not emulated")
        policies: list[RolePolicy] = []
        for policy in props.get("Policies") or []:
            resolved = resolver.resolve(policy)
            if resolved:  # an Fn::If may drop it
                policies.append(RolePolicy(str(resolved["PolicyName"]), resolved["PolicyDocument"]))
        for arn_expr in props.get("ManagedPolicyArns") or []:
            target = _logical_id(arn_expr)
            if target in resources and resources[target].get("Type") == "AWS::IAM::ManagedPolicy":
                mprops = resources[target].get("Properties") or {}
                policies.append(RolePolicy(str(resolver.resolve(mprops.get("ManagedPolicyName", target))),
                                           resolver.resolve(mprops["PolicyDocument"])))
                continue
            arn = resolver.resolve(arn_expr)
            if arn is None:
                continue
            document = aws_managed_policies().get(str(arn))
            if document is None:
                raise NotImplementedError(f"{logical_id}: managed policy {arn} is unknown to the local stack")
            policies.append(RolePolicy(str(arn).rsplit("/", 1)[-1], document, managed_arn=str(arn)))
        for other_id, other in resources.items():  # AWS::IAM::Policy and friends that name the role
            oprops = other.get("Properties") or {}
            if other.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and any(
                _logical_id(r) == role_id for r in oprops.get("Roles") or []
            ):
                name = oprops.get("PolicyName") or oprops.get("ManagedPolicyName") or other_id
                policies.append(RolePolicy(str(resolver.resolve(name)),
                                           resolver.resolve(oprops["PolicyDocument"])))
        roles[logical_id] = policies
    return roles


# ---------------------------------------------------------------- creating the resources


_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "BillingMode", "ProvisionedThroughput",
               "LocalSecondaryIndexes", "StreamSpecification", "TableClass")
_QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
                     "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "FifoQueue",
                     "ContentBasedDeduplication", "SqsManagedSseEnabled")


def _client(session_or_clients: Any, service: str) -> Any:
    if isinstance(session_or_clients, dict):
        return session_or_clients[service]
    return session_or_clients.client(service, region_name=REGION)


def create_resources(session_or_clients: Any, stack: Stack | None = None, *,
                     jwt_secret: str | None = None, cdn_private_key: str | None = None) -> dict[str, str]:
    """Create the table, the bucket (with its CORS rules), the queues, the JWT secret and the
    secret that CDN_PRIVATE_KEY_SECRET_ARN names (the PEM `cdn_private_key`, by default the local
    CDN's dev key) from the template's own properties.

    `session_or_clients` is a boto3 session (or the boto3 module), or a dict of clients keyed
    by service name ("dynamodb", "s3", "sqs", "secretsmanager"). Used by the local stack and by
    tests/integration alike. Answers the physical names: table, bucket, queue URLs.
    """
    stack = stack or load()
    out: dict[str, str] = {}

    ddb = _client(session_or_clients, "dynamodb")
    props = stack.table_properties
    kwargs: dict[str, Any] = {k: props[k] for k in _TABLE_KEYS if k in props}
    if "GlobalSecondaryIndexes" in props:
        kwargs["GlobalSecondaryIndexes"] = [
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection",
                                                   "ProvisionedThroughput")}
            for gsi in props["GlobalSecondaryIndexes"]
        ]
    if (props.get("SSESpecification") or {}).get("SSEEnabled"):
        kwargs["SSESpecification"] = {"Enabled": True}
    ddb.create_table(TableName=stack.table_name, **kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(TableName=stack.table_name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": True})
    out["table"] = stack.table_name

    s3 = _client(session_or_clients, "s3")
    bprops = stack.bucket_properties
    s3.create_bucket(Bucket=stack.bucket_name)  # us-east-1: no LocationConstraint
    rules = ((bprops.get("CorsConfiguration") or {}).get("CorsRules")) or []
    if rules:
        origins = cors_origins(stack)
        s3.put_bucket_cors(Bucket=stack.bucket_name, CORSConfiguration={"CORSRules": [
            {
                "AllowedMethods": rule["AllowedMethods"],
                "AllowedOrigins": origins,
                **({"AllowedHeaders": rule["AllowedHeaders"]} if "AllowedHeaders" in rule else {}),
                **({"ExposeHeaders": rule["ExposedHeaders"]} if "ExposedHeaders" in rule else {}),
                **({"MaxAgeSeconds": int(rule["MaxAge"])} if "MaxAge" in rule else {}),
            }
            for rule in rules
        ]})
    if "PublicAccessBlockConfiguration" in bprops:
        s3.put_public_access_block(Bucket=stack.bucket_name,
                                   PublicAccessBlockConfiguration=bprops["PublicAccessBlockConfiguration"])
    if "BucketEncryption" in bprops:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
        sse_rules = [
            {("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
             for k, v in rule.items()}
            for rule in bprops["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=stack.bucket_name,
                                 ServerSideEncryptionConfiguration={"Rules": sse_rules})
    out["bucket"] = stack.bucket_name

    sqs = _client(session_or_clients, "sqs")
    # Dead-letter queues first: a queue's RedrivePolicy names one that must exist.
    ordered = sorted(stack.queue_names.items(),
                     key=lambda item: "RedrivePolicy" in stack.queue_properties.get(item[0], {}))
    for logical_id, name in ordered:
        qprops = stack.queue_properties.get(logical_id, {})
        attributes = {k: str(qprops[k]).lower() if isinstance(qprops[k], bool) else str(qprops[k])
                      for k in _QUEUE_ATTRIBUTES if k in qprops}
        if "RedrivePolicy" in qprops:
            attributes["RedrivePolicy"] = json.dumps(qprops["RedrivePolicy"])
        out[f"queue:{logical_id}"] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    if stack.secret_name:
        secrets = _client(session_or_clients, "secretsmanager")
        secret = jwt_secret or os.environ.get("JWT_SECRET") or DEV_JWT_SECRET
        secrets.create_secret(Name=stack.secret_name, SecretString=secret)
        out["secret"] = stack.secret_name
    cdn_secret_arn = stack.environment(check=False).get("CDN_PRIVATE_KEY_SECRET_ARN")
    if cdn_secret_arn:
        if cdn_private_key is None:
            from .cdn import dev_private_key_pem

            cdn_private_key = dev_private_key_pem()
        name = cdn_secret_arn.rsplit(":", 1)[-1]  # moto resolves the partial ARN to this name
        _client(session_or_clients, "secretsmanager").create_secret(Name=name, SecretString=cdn_private_key)
        out["cdn_secret"] = cdn_secret_arn
    return out
