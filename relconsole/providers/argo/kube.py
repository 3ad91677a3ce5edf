"""The Kubernetes connection for the argo-rollouts traffic provider (issue 12).

Why lightkube (PyPI `lightkube`): of the three clients the issue names it is the small one
that is still kept up: an asyncio client over httpx2, generic resources for CRDs without
code generation (Rollout and its analysis kinds, with the `status` subresource), list
with the collection's resourceVersion, watch, merge and JSON patch, and a kubeconfig
loader that already does token, tokenFile (re-read on 401, as client-go does for rotated
service-account tokens), basic auth, client certificate and key (file and -data), the CA
(file and -data) and the in-cluster service account. kubernetes_asyncio is a generated
client with a very large surface for the dozen calls relconsole makes; kr8s wraps
lightkube-like calls in a higher-level object model we do not want between us and the
wire format the fake API server follows.

What lightkube 1.0.1 lacks, and this module adds thinly on top of it (not a new client):

* Exec credential plugins are only v1alpha1/v1beta1 there, with no `interactiveMode`, no
  `provideClusterInfo` / KUBERNETES_EXEC_INFO, no `expirationTimestamp`, no timeout (a
  hanging plugin hangs the console) and the whole stderr in its error. `_ExecAuth` is an
  httpx2 `Auth` for v1 and v1beta1 that does those; it is set on lightkube's httpx2 client.
* KUBECONFIG holding a colon-separated list: lightkube opens it as one path. The files
  are merged here as kubectl merges them (first definition of a name wins, first
  current-context wins, relative paths resolved against the file that holds them).
* The order: lightkube tries in-cluster first; the issue wants KUBECONFIG, then
  ~/.kube/config, then in-cluster, so the source is chosen here and lightkube is handed
  one context.
* `proxy-url` is dropped by lightkube's model; it is passed to the client here.
* `insecure-skip-tls-verify` is honoured by lightkube; relconsole refuses it (TLS
  verification stays on), and refuses `tls-server-name`, which lightkube would ignore.
* Errors: lightkube raises httpx2/ssl/ConfigError exceptions; here each becomes one line
  for an on-call engineer, with the server, the user and context, or the CA source, and
  never a secret (DESIGN.md rule 6).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import os
import re
import signal
import socket
import ssl
import time
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import yaml
from lightkube import ApiError, AsyncClient
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.types import PatchType

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
ALL_NAMESPACES = "*"  # lightkube's spelling of "every namespace" for list and watch
FIELD_MANAGER = "relconsole"  # names relconsole in the server's managedFields and audit log

Obj = dict[str, Any]

# --- errors ---------------------------------------------------------------------------


class KubeError(Exception):
    """One line for an on-call engineer; never a traceback, never a secret."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # the HTTP status, when the server answered

    def __str__(self) -> str:
        return self.message


class KubeConfigError(KubeError):
    """The kubeconfig (or its absence) cannot give a safe connection."""


class KubeUnreachable(KubeError):
    """No answer: refused, DNS, timeout, broken connection."""


class KubeTLSError(KubeError):
    """The TLS handshake failed, most often the CA does not match the server."""


class KubeAuthError(KubeError):
    """401, or the exec plugin that should give a credential failed or hung."""


class Forbidden(KubeError):
    """403: the server's message names the verb and the resource."""


class NotFound(KubeError):
    """404."""


class Conflict(KubeError):
    """409: someone else changed the object (a Lease held by another console)."""


class Gone(KubeError):
    """410 on a watch: the resourceVersion is compacted away; list again, then watch."""


class KubeApiError(KubeError):
    """Any other answer the server refused with."""


# --- settings and resource kinds ----------------------------------------------------------


@dataclass(frozen=True)
class KubeSettings:
    kubeconfig: Path | None = None  # `kubeconfig: PATH`; None: KUBECONFIG, ~/.kube/config
    context: str | None = None  # `context: NAME`; None: the current-context
    namespace: str | None = None  # None: the context's namespace, else "default"
    timeout: float = 10.0  # seconds, for each request and for an exec plugin


@dataclass(frozen=True)
class ResourceKind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    status_subresource: bool = False
    res: Any = field(default=None, compare=False, repr=False)  # lightkube's resource class

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _kind(group: str, version: str, kind: str, plural: str, *, namespaced: bool = True,
          status: bool = False) -> ResourceKind:
    make = create_namespaced_resource if namespaced else create_global_resource
    return ResourceKind(group, version, kind, plural, namespaced, status,
                        make(group, version, kind, plural))


ROLLOUT = _kind("argoproj.io", "v1alpha1", "Rollout", "rollouts", status=True)
ANALYSIS_RUN = _kind("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns")
ANALYSIS_TEMPLATE = _kind("argoproj.io", "v1alpha1", "AnalysisTemplate", "analysistemplates")
CLUSTER_ANALYSIS_TEMPLATE = _kind("argoproj.io", "v1alpha1", "ClusterAnalysisTemplate",
                                  "clusteranalysistemplates", namespaced=False)
# Core types as generic resources too, so that every call returns the server's JSON as
# it came (lightkube's typed models would drop unknown fields and re-type timestamps).
LEASE = _kind("coordination.k8s.io", "v1", "Lease", "leases")
EVENT = _kind("", "v1", "Event", "events")


@dataclass(frozen=True)
class ListResult:
    items: list[Obj]
    resource_version: str  # watch from here to miss nothing


# --- redaction ------------------------------------------------------------------------------


class _Secrets:
    """Every secret this connection knows, so no message can carry one by accident."""

    _BEARER = re.compile(r"(?i)(bearer\s+)\S+")

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str | None) -> None:
        # Short values would blank out ordinary words; real tokens and keys are long.
        if value and len(value.strip()) >= 6:
            self._values.add(value.strip())

    def redact(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        text = self._BEARER.sub(r"\1***", text)
        return " ".join(text.split())  # one line, always


_TOKENISH = re.compile(r"[A-Za-z0-9_\-.+=]{24,}")


def _scrub(text: str) -> str:
    """Blank token-like runs in text from outside (a plugin's stderr may echo a credential
    relconsole never saw, so redaction by value cannot catch it): long runs of letters AND
    digits, such as JWTs and access keys. A long request id is lost too; that is the price."""
    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        has_alpha = any(c.isalpha() for c in run)
        has_digit = any(c.isdigit() for c in run)
        return "***" if has_alpha and has_digit else run
    return _TOKENISH.sub(repl, text)


def _safe_url(url: str) -> str:
    """A URL without user:password@, for messages and `describe`."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --- kubeconfig loading ------------------------------------------------------------------


@dataclass
class _Source:
    label: str  # "kubeconfig /home/u/.kube/config" or "in-cluster service account"
    files: list[Path]
    doc: Obj  # merged: clusters, users, contexts (lists of {name, ...}), current-context


_PATH_KEYS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}


def _read_kubeconfig(path: Path) -> Obj:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KubeConfigError(f"kubernetes: kubeconfig {path} does not exist") from None
    except OSError as err:
        raise KubeConfigError(f"kubernetes: cannot read kubeconfig {path}: "
                              f"{err.strerror or err}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        # Only the position and the problem: the YAML snippet could hold a token.
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise KubeConfigError(f"kubernetes: kubeconfig {path} is not valid YAML{where}: "
                              f"{problem}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise KubeConfigError(f"kubernetes: kubeconfig {path} is not a kubeconfig "
                              "(expected a mapping with clusters, users and contexts)")
    for key in ("clusters", "users", "contexts"):
        entries = doc.get(key) or []
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries):
            raise KubeConfigError(f"kubernetes: kubeconfig {path}: `{key}` must be a list of "
                                  "entries, each with a name")
        doc[key] = entries
    _absolutise(doc, path.parent)
    return doc


def _absolutise(doc: Obj, base: Path) -> None:
    # kubectl resolves relative paths against the file that holds them; after a merge the
    # origin is lost, so it is done per file, before merging.
    for key, (inner, names) in _PATH_KEYS.items():
        for entry in doc[key]:
            body = entry.get(inner)
            if not isinstance(body, dict):
                continue
            for name in names:
                value = body.get(name)
                if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                    body[name] = str(base / value)
                elif isinstance(value, str) and value.startswith("~"):
                    body[name] = str(Path(value).expanduser())
            ex = body.get("exec")
            if isinstance(ex, dict):
                command = ex.get("command")
                # client-go: a command with a slash is a path relative to the kubeconfig;
                # a bare name is looked up on PATH.
                if isinstance(command, str) and "/" in command and not Path(command).is_absolute():
                    ex["command"] = str(base / command)


def _merge(docs: list[Obj]) -> Obj:
    """kubectl's merge: the first file to define a name wins, as does its current-context."""
    out: Obj = {"clusters": [], "users": [], "contexts": [], "current-context": None}
    for doc in docs:
        for key in ("clusters", "users", "contexts"):
            seen = {e["name"] for e in out[key]}
            out[key].extend(e for e in doc[key] if e["name"] not in seen)
        if not out["current-context"] and doc.get("current-context"):
            out["current-context"] = doc["current-context"]
    return out


def _find_source(settings: KubeSettings, service_account_dir: Path) -> _Source | None:
    """The issue's order; None means in-cluster."""
    if settings.kubeconfig is not None:
        path = Path(settings.kubeconfig).expanduser()
        return _Source(f"kubeconfig {path}", [path], _merge([_read_kubeconfig(path)]))
    env = os.environ.get("KUBECONFIG", "")
    if env.strip():
        listed = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
        # kubectl skips listed files that do not exist; all missing is a mistake to show.
        present = [p for p in listed if p.is_file()]
        if not present:
            raise KubeConfigError("kubernetes: KUBECONFIG names no existing file: "
                                  + ", ".join(str(p) for p in listed))
        label = ("kubeconfig " + os.pathsep.join(str(p) for p in present)
                 + " (from KUBECONFIG)")
        return _Source(label, present, _merge([_read_kubeconfig(p) for p in present]))
    default = Path.home() / ".kube" / "config"
    if default.is_file():
        return _Source(f"kubeconfig {default}", [default], _merge([_read_kubeconfig(default)]))
    if os.environ.get("KUBERNETES_SERVICE_HOST") and \
            (service_account_dir / "token").is_file():
        return None
    raise KubeConfigError(
        f"kubernetes: no configuration found: no `kubeconfig:` given, KUBECONFIG unset, "
        f"{default} missing, and not inside a cluster (KUBERNETES_SERVICE_HOST unset or "
        f"no token in {service_account_dir})")


def _entry(doc: Obj, key: str, name: str) -> Obj | None:
    inner = {"clusters": "cluster", "users": "user", "contexts": "context"}[key]
    for e in doc[key]:
        if e["name"] == name:
            body = e.get(inner)
            return body if isinstance(body, dict) else {}
    return None


@dataclass
class _Chosen:
    config: SingleConfig
    source: str
    context: str
    user_name: str | None
    user: Obj  # the raw kubeconfig user entry (lightkube's model drops exec fields)
    cluster: Obj  # the raw cluster entry
    in_cluster: bool = False
    token_file: str | None = None


def _choose(settings: KubeSettings, service_account_dir: Path, secrets: _Secrets) -> _Chosen:
    src = _find_source(settings, service_account_dir)
    if src is None:
        return _in_cluster(settings, service_account_dir, secrets)
    doc = src.doc
    names = [e["name"] for e in doc["contexts"]]
    listing = ", ".join(names) if names else "none"
    ctx_name = settings.context or doc.get("current-context")
    if not ctx_name:
        raise KubeConfigError(f"kubernetes: {src.label} sets no current-context; name one "
                              f"with `context:` (contexts there: {listing})")
    ctx = _entry(doc, "contexts", ctx_name)
    if ctx is None:
        raise KubeConfigError(f"kubernetes: context {ctx_name!r} is not in {src.label} "
                              f"(contexts there: {listing})")
    cluster_name = ctx.get("cluster")
    cluster = _entry(doc, "clusters", cluster_name) if isinstance(cluster_name, str) else None
    if cluster is None:
        raise KubeConfigError(f"kubernetes: context {ctx_name!r} in {src.label} names cluster "
                              f"{cluster_name!r}, which is not defined there")
    if not cluster.get("server"):
        raise KubeConfigError(f"kubernetes: cluster {cluster_name!r} in {src.label} has no "
                              "server")
    user_name = ctx.get("user")
    user: Obj = {}
    if user_name:
        found = _entry(doc, "users", user_name)
        if found is None:
            raise KubeConfigError(f"kubernetes: context {ctx_name!r} in {src.label} names user "
                                  f"{user_name!r}, which is not defined there")
        user = found
    _refuse_unsafe(cluster, user, ctx_name, str(cluster_name), user_name)
    for key in ("token", "password", "client-key-data"):
        secrets.add(user.get(key) if isinstance(user.get(key), str) else None)
    token_file = user.get("tokenFile")
    if isinstance(token_file, str):
        with contextlib.suppress(OSError):
            secrets.add(Path(token_file).read_text(encoding="utf-8"))
    proxy = cluster.get("proxy-url")
    if isinstance(proxy, str):
        secrets.add(urlsplit(proxy).password)
    # lightkube is handed exactly one context; an exec user is given to it without the
    # exec stanza (its own exec support is replaced by _ExecAuth, set on the client).
    lk_user = {k: v for k, v in user.items() if k != "exec"}
    mini = {
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": "u", "user": lk_user}],
        "contexts": [{"name": ctx_name, "context": {
            "cluster": cluster_name, "user": "u",
            **({"namespace": ctx["namespace"]} if ctx.get("namespace") else {})}}],
    }
    try:
        config = KubeConfig.from_dict(mini, fname=src.files[0]).get(ctx_name)
    except Exception as err:  # msgspec.ValidationError names the field, never its value
        raise KubeConfigError(f"kubernetes: context {ctx_name!r} in {src.label}: "
                              f"{secrets.redact(str(err))}") from None
    assert config is not None
    return _Chosen(config, src.label, ctx_name, user_name, user, cluster,
                   token_file=token_file if isinstance(token_file, str) else None)


def _refuse_unsafe(cluster: Obj, user: Obj, ctx: str, cluster_name: str,
                   user_name: str | None) -> None:
    if cluster.get("insecure-skip-tls-verify"):
        raise KubeConfigError(
            f"kubernetes: cluster {cluster_name!r} (context {ctx!r}) sets "
            "insecure-skip-tls-verify; relconsole keeps TLS verification on: give the "
            "cluster's CA as certificate-authority or certificate-authority-data instead")
    if cluster.get("tls-server-name"):
        raise KubeConfigError(
            f"kubernetes: cluster {cluster_name!r} (context {ctx!r}) sets tls-server-name, "
            "which relconsole does not support yet: use a server URL whose host name is in "
            "the server's certificate")
    provider = user.get("auth-provider")
    if provider:
        name = provider.get("name") if isinstance(provider, dict) else None
        raise KubeConfigError(
            f"kubernetes: user {user_name!r} (context {ctx!r}) uses auth-provider {name!r}, "
            "which kubectl removed in 1.26: switch it to an exec plugin (GKE: "
            "gke-gcloud-auth-plugin, AKS: kubelogin)")
    ex = user.get("exec")
    if ex is not None:
        if not isinstance(ex, dict) or not isinstance(ex.get("command"), str):
            raise KubeConfigError(f"kubernetes: user {user_name!r} (context {ctx!r}): exec "
                                  "needs a command")
        version = ex.get("apiVersion")
        if version not in _EXEC_VERSIONS:
            raise KubeConfigError(
                f"kubernetes: user {user_name!r} (context {ctx!r}): exec apiVersion "
                f"{version!r} is not supported (use client.authentication.k8s.io/v1 or "
                "v1beta1; v1alpha1 was removed from kubectl in 1.24)")
        if ex.get("interactiveMode") == "Always":
            raise KubeConfigError(
                f"kubernetes: the exec plugin {Path(ex['command']).name} of user "
                f"{user_name!r} needs a terminal (interactiveMode: Always), and relconsole "
                "runs it without one: log in from a shell first, or set interactiveMode: "
                "IfAvailable")


def _in_cluster(settings: KubeSettings, sa_dir: Path, secrets: _Secrets) -> _Chosen:
    if settings.context:
        raise KubeConfigError(f"kubernetes: context {settings.context!r} given, but there is "
                              "no kubeconfig (KUBECONFIG unset, ~/.kube/config missing); only "
                              "the in-cluster service account is available")
    if not os.environ.get("KUBERNETES_SERVICE_PORT"):
        raise KubeConfigError("kubernetes: in a cluster KUBERNETES_SERVICE_HOST is set but "
                              "KUBERNETES_SERVICE_PORT is not")
    try:
        config = KubeConfig.from_service_account(service_account=sa_dir).get()
    except ConfigError as err:
        raise KubeConfigError(f"kubernetes: in-cluster service account: {err}") from None
    assert config is not None
    token_file = str(sa_dir / "token")
    with contextlib.suppress(OSError):
        secrets.add(Path(token_file).read_text(encoding="utf-8"))
    cluster = {"server": config.cluster.server,
               "certificate-authority": str(sa_dir / "ca.crt")}
    return _Chosen(config, f"in-cluster service account {sa_dir}", "in-cluster",
                   "serviceaccount", {"tokenFile": token_file}, cluster, in_cluster=True,
                   token_file=token_file)


# --- the exec credential plugin ------------------------------------------------------------

_EXEC_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_EXEC_EXTENSION = "client.authentication.k8s.io/exec"
_REFRESH_MARGIN = 5.0  # seconds before expirationTimestamp that the token is renewed


class _ExecAuth(httpx2.Auth):
    """client-go's exec authenticator, for tokens: run, cache until expiry or 401, rerun."""

    def __init__(self, chosen: _Chosen, timeout: float, secrets: _Secrets) -> None:
        ex = chosen.user["exec"]
        self._command: str = ex["command"]
        self._args = [str(a) for a in ex.get("args") or []]
        self._env = {str(e["name"]): str(e["value"]) for e in ex.get("env") or []
                     if isinstance(e, dict) and "name" in e and "value" in e}
        self._version: str = ex["apiVersion"]
        self._hint = ex.get("installHint")
        self._cluster_info = bool(ex.get("provideClusterInfo"))
        self._cluster = chosen.cluster
        self._who = f"user {chosen.user_name!r} in context {chosen.context!r}"
        self._timeout = timeout
        self._secrets = secrets
        self._token: str | None = None
        self._expires: float | None = None  # time.time() of expiry, if the plugin gave one
        self._lock: asyncio.Lock | None = None

    @property
    def name(self) -> str:
        return Path(self._command).name

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request,
                                                                   httpx2.Response, None]:
        raise RuntimeError("relconsole's Kubernetes connection is async only")

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request,
                                                                               httpx2.Response]:
        token = await self._get(stale=None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # The cached token may have been revoked before its expiry: client-go reruns
            # the plugin once; a second 401 reaches the caller as "log in again".
            token = await self._get(stale=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    async def _get(self, stale: str | None) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # Another request may have renewed it while this one waited for the lock.
            fresh = self._token is not None and self._token != stale and (
                self._expires is None or time.time() < self._expires - _REFRESH_MARGIN)
            if not fresh:
                self._token, self._expires = await self._run()
            assert self._token is not None
            return self._token

    def _exec_info(self) -> str:
        spec: Obj = {"interactive": False}
        if self._cluster_info:
            c = self._cluster
            cluster: Obj = {"server": c.get("server")}
            ca = c.get("certificate-authority-data")
            if not ca and c.get("certificate-authority"):
                with contextlib.suppress(OSError):
                    ca = base64.b64encode(
                        Path(str(c["certificate-authority"])).read_bytes()).decode()
            if ca:
                cluster["certificate-authority-data"] = ca
            if c.get("proxy-url"):
                cluster["proxy-url"] = c["proxy-url"]
            for ext in c.get("extensions") or []:
                if isinstance(ext, dict) and ext.get("name") == _EXEC_EXTENSION:
                    cluster["config"] = ext.get("extension")
            spec["cluster"] = cluster
        return json.dumps({"apiVersion": self._version, "kind": "ExecCredential",
                           "spec": spec})

    def _fail(self, what: str) -> KubeAuthError:
        return KubeAuthError(self._secrets.redact(
            f"kubernetes: the exec plugin {self.name} of {self._who} {what}"))

    async def _run(self) -> tuple[str, float | None]:
        env = {**os.environ, **self._env, "KUBERNETES_EXEC_INFO": self._exec_info()}
        try:
            # Its own session, so that a hang is ended with its children (a shell script
            # calling a CLI would otherwise keep the pipes open after the kill).
            proc = await asyncio.create_subprocess_exec(
                self._command, *self._args, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True)
        except FileNotFoundError:
            hint = f": {self._hint.strip().splitlines()[0]}" if self._hint else ""
            raise self._fail(f"was not found ({self._command}){hint}") from None
        except PermissionError:
            raise self._fail(f"cannot be run ({self._command}: permission denied)") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self._timeout)
        except TimeoutError:
            raise self._fail(f"did not answer within {self._timeout:g}s and was killed") \
                from None
        finally:
            if proc.returncode is None:  # timed out, or the caller was cancelled
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 2.0)
        if proc.returncode != 0:
            lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
            last = f": {_scrub(lines[-1].strip())[:300]}" if lines else ""
            raise self._fail(f"exited with code {proc.returncode}{last}")
        return self._parse(out)

    def _parse(self, out: bytes) -> tuple[str, float | None]:
        try:
            cred = json.loads(out)
        except ValueError:
            raise self._fail("printed no ExecCredential JSON") from None
        if not isinstance(cred, dict) or cred.get("kind") != "ExecCredential":
            raise self._fail("printed something other than an ExecCredential")
        if cred.get("apiVersion") != self._version:
            raise self._fail(f"answered with apiVersion {cred.get('apiVersion')!r}, not the "
                             f"configured {self._version!r}")
        status = cred.get("status")
        status = status if isinstance(status, dict) else {}
        token = status.get("token")
        if not isinstance(token, str) or not token:
            if status.get("clientCertificateData"):
                raise self._fail("returned a client certificate, which relconsole does not "
                                 "support from exec plugins yet (tokens only)")
            raise self._fail("returned no token")
        self._secrets.add(token)
        expires: float | None = None
        stamp = status.get("expirationTimestamp")
        if isinstance(stamp, str) and stamp:
            try:
                expires = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise self._fail(f"gave an unreadable expirationTimestamp {stamp!r}") \
                    from None
        return token, expires


# --- TLS material, checked before lightkube builds its SSL context ------------------------


def _ca_source(chosen: _Chosen) -> str:
    c = chosen.cluster
    if chosen.in_cluster:
        return f"the service-account CA {c['certificate-authority']}"
    if c.get("certificate-authority"):
        return (f"the CA file {c['certificate-authority']} of the cluster in context "
                f"{chosen.context!r}")
    if c.get("certificate-authority-data"):
        return f"the certificate-authority-data of the cluster in context {chosen.context!r}"
    return "the system's trusted CAs (the cluster in context " \
        f"{chosen.context!r} gives no certificate-authority)"


def _check_tls_material(chosen: _Chosen) -> None:
    """lightkube loads these when the client is built; checked first for exact messages."""
    c, u = chosen.cluster, chosen.user
    ca_file, ca_data = c.get("certificate-authority"), c.get("certificate-authority-data")
    try:
        if ca_file:
            ssl.create_default_context(cafile=str(ca_file))
        elif ca_data:
            ssl.create_default_context(cadata=base64.b64decode(str(ca_data)).decode("ascii"))
    except FileNotFoundError:
        raise KubeConfigError(f"kubernetes: {_ca_source(chosen)} does not exist") from None
    except (ssl.SSLError, ValueError, OSError):
        raise KubeConfigError(f"kubernetes: {_ca_source(chosen)} is not a PEM CA "
                              "certificate") from None
    cert = u.get("client-certificate") or u.get("client-certificate-data")
    if not cert:
        return
    who = f"user {chosen.user_name!r} in context {chosen.context!r}"
    if not (u.get("client-key") or u.get("client-key-data")):
        raise KubeConfigError(f"kubernetes: {who} has a client certificate but no client key")
    for key in ("client-certificate", "client-key"):
        path = u.get(key)
        if path and not Path(str(path)).is_file():
            raise KubeConfigError(f"kubernetes: the {key.replace('-', ' ')} file {path} of "
                                  f"{who} does not exist")
    for key in ("client-certificate-data", "client-key-data"):
        data = u.get(key)
        if data:
            try:
                base64.b64decode(str(data), validate=True)
            except ValueError:
                raise KubeConfigError(f"kubernetes: the {key} of {who} is not base64") \
                    from None


# --- the connection ----------------------------------------------------------------------


class KubeConnection:
    """lightkube's AsyncClient with the few calls the provider needs, returning plain dicts."""

    def __init__(self, client: AsyncClient, chosen: _Chosen, settings: KubeSettings,
                 secrets: _Secrets, exec_auth: _ExecAuth | None, proxy: str | None) -> None:
        # Any: lightkube's overloads split namespaced and global kinds statically, and the
        # kinds here are chosen at run time.
        self._lk: Any = client
        self._chosen = chosen
        self._settings = settings
        self._secrets = secrets
        self._exec = exec_auth
        self._proxy = proxy
        self.namespace: str = client.namespace
        self.server: str = _safe_url(chosen.config.cluster.server)
        self.context: str = chosen.context
        self.user: str | None = chosen.user_name

    # --- what `relconsole check` shows ---

    @property
    def describe(self) -> str:
        """Which source, context, user and way of authenticating; never a token or key."""
        ch = self._chosen
        if ch.in_cluster:
            head = f"{ch.source}, namespace {self.namespace}"
        else:
            head = f"{ch.source}, context {ch.context} ({self._auth_words()})"
            head += f", namespace {self.namespace}"
        head += f", server {self.server}"
        if self._proxy:
            head += f" via proxy {_safe_url(self._proxy)}"
        return self._secrets.redact(head)

    def _auth_words(self) -> str:
        u = self._chosen.user
        who = f"user {self.user}" if self.user else "no user"
        if u.get("tokenFile"):
            how = f"token file {u['tokenFile']}"
        elif u.get("token"):
            how = "token"
        elif self._exec is not None:
            how = f"exec plugin {self._exec.name}"
        elif u.get("username"):
            how = "basic auth"
        else:
            how = ""
        if u.get("client-certificate"):
            how = ", ".join(filter(None, [how, f"client certificate {u['client-certificate']}"]))
        elif u.get("client-certificate-data"):
            how = ", ".join(filter(None, [how, "client certificate (inline)"]))
        return f"{who}, {how}" if how else who

    # --- lifecycle ---

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._lk.close()

    async def __aenter__(self) -> KubeConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- reads ---

    async def get(self, kind: ResourceKind, name: str, *, namespace: str | None = None,
                  ) -> Obj:
        with self._errors(f"get {kind.qualified} {name!r}"):
            obj = await self._lk.get(kind.res, name, **self._ns(kind, namespace))
        return _plain(obj)

    async def list(self, kind: ResourceKind, *, namespace: str | None = None,
                   labels: Mapping[str, str] | None = None,
                   fields: Mapping[str, str] | None = None) -> ListResult:
        # `fields` (fieldSelector metadata.name=…) lets a Role restricted by resourceNames
        # still list and watch its one object.
        with self._errors(f"list {kind.qualified}"):
            listing = self._lk.list(kind.res, labels=dict(labels) if labels else None,
                                    fields=dict(fields) if fields else None,
                                    **self._ns(kind, namespace))
            items = [_plain(o) async for o in listing]
            try:
                rv = listing.resourceVersion
            except Exception:  # NotReadyError: a server that sent no list metadata
                rv = ""
        return ListResult(items, rv)

    async def watch(self, kind: ResourceKind, *, resource_version: str,
                    namespace: str | None = None, labels: Mapping[str, str] | None = None,
                    fields: Mapping[str, str] | None = None,
                    ) -> AsyncGenerator[tuple[str, Obj], None]:
        """(type, object) from just after `resource_version`; `Gone` means list again.

        An empty `resource_version` starts, as the API does, with an ADDED event for each
        object that exists. Bookmarks are not requested (lightkube's watch has no switch).

        lightkube reopens a watch the server ended cleanly, from the last version seen,
        so the iterator runs until the caller stops it or an error is raised.
        """
        stream = self._lk.watch(kind.res, resource_version=resource_version or None,
                                labels=dict(labels) if labels else None,
                                fields=dict(fields) if fields else None,
                                **self._ns(kind, namespace))
        try:
            while True:
                with self._errors(f"watch {kind.qualified}"):
                    try:
                        etype, obj = await stream.__anext__()
                    except StopAsyncIteration:
                        return
                yield etype, _plain(obj)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    # --- writes ---

    async def merge_patch(self, kind: ResourceKind, name: str, patch: Obj, *,
                          status: bool = False, namespace: str | None = None) -> Obj:
        return await self._patch(kind, name, patch, PatchType.MERGE, status, namespace)

    async def json_patch(self, kind: ResourceKind, name: str, ops: Sequence[Obj], *,
                         status: bool = False, namespace: str | None = None) -> Obj:
        return await self._patch(kind, name, [dict(op) for op in ops], PatchType.JSON, status,
                                 namespace)

    async def _patch(self, kind: ResourceKind, name: str, body: Any, ptype: PatchType,
                     status: bool, namespace: str | None) -> Obj:
        if status and not kind.status_subresource:
            raise ValueError(f"{kind.qualified} has no status subresource")
        res = kind.res.Status if status else kind.res
        what = f"patch {kind.qualified}{'/status' if status else ''} {name!r}"
        with self._errors(what):
            obj = await self._lk.patch(res, name, copy.deepcopy(body), patch_type=ptype,
                                       **self._ns(kind, namespace))
        return _plain(obj)

    async def create(self, kind: ResourceKind, body: Obj, *, namespace: str | None = None,
                     ) -> Obj:
        name = (body.get("metadata") or {}).get("name") or \
            (body.get("metadata") or {}).get("generateName", "")
        with self._errors(f"create {kind.qualified} {name!r}"):
            obj = await self._lk.create(_as_resource(kind, body), **self._ns(kind, namespace))
        return _plain(obj)

    async def replace(self, kind: ResourceKind, body: Obj, *, namespace: str | None = None,
                      ) -> Obj:
        """PUT; with metadata.resourceVersion set, a 409 `Conflict` if it moved on."""
        name = (body.get("metadata") or {}).get("name")
        with self._errors(f"update {kind.qualified} {name!r}"):
            obj = await self._lk.replace(_as_resource(kind, body), **self._ns(kind, namespace))
        return _plain(obj)

    async def create_event(self, body: Obj, *, namespace: str | None = None) -> Obj:
        return await self.create(EVENT, body, namespace=namespace)

    async def get_lease(self, name: str, *, namespace: str | None = None) -> Obj:
        return await self.get(LEASE, name, namespace=namespace)

    async def create_lease(self, body: Obj, *, namespace: str | None = None) -> Obj:
        return await self.create(LEASE, body, namespace=namespace)

    async def update_lease(self, body: Obj, *, namespace: str | None = None) -> Obj:
        return await self.replace(LEASE, body, namespace=namespace)

    # --- helpers ---

    def _ns(self, kind: ResourceKind, namespace: str | None) -> dict[str, str]:
        if not kind.namespaced:
            return {}
        return {"namespace": namespace or self.namespace}

    @contextlib.contextmanager
    def _errors(self, what: str) -> Generator[None, None, None]:
        try:
            yield
        except KubeError as err:
            err.message = self._secrets.redact(err.message)
            raise
        except Exception as err:
            raise self._translate(err, what) from None

    def _translate(self, err: BaseException, what: str) -> KubeError:
        r = self._secrets.redact
        # lightkube's transform_exception raises KeyError for an error answer without a
        # Content-Type (a proxy's 502, say); the HTTP error is then in the chain.
        status = _in_chain(err, httpx2.HTTPStatusError)
        if isinstance(status, httpx2.HTTPStatusError):
            return self._status_error(status, what)
        if isinstance(err, httpx2.TimeoutException):
            return KubeUnreachable(r(f"kubernetes: {self.server} did not answer within "
                                     f"{self._settings.timeout:g}s ({what})"))
        if isinstance(err, httpx2.TransportError):
            tls = _tls_cause(err)
            if isinstance(tls, ssl.SSLCertVerificationError):
                reason = tls.verify_message or tls.reason or "certificate verify failed"
                return KubeTLSError(r(
                    f"kubernetes: TLS verification of {self.server} failed ({reason}); the "
                    f"server's certificate was checked against {_ca_source(self._chosen)}"))
            if tls is not None:
                reason = (tls.reason or str(tls)).lower().replace("_", " ")
                return KubeTLSError(r(f"kubernetes: TLS handshake with {self.server} failed "
                                      f"({reason})"))
            via = f" via proxy {_safe_url(self._proxy)}" if self._proxy else ""
            if isinstance(err, httpx2.ConnectError | httpx2.ProxyError):
                return KubeUnreachable(r(f"kubernetes: cannot reach {self.server}{via}: "
                                         f"{_words(err)}"))
            return KubeUnreachable(r(f"kubernetes: the connection to {self.server}{via} "
                                     f"broke during {what}: {_words(err)}"))
        if isinstance(err, ConfigError):
            return KubeConfigError(r(f"kubernetes: {err}"))
        return KubeError(r(f"kubernetes: {what} failed: {type(err).__name__}: {err}"))

    def _status_error(self, err: httpx2.HTTPStatusError, what: str) -> KubeError:
        r = self._secrets.redact
        code: int | None = None
        message = ""
        reason = ""
        if isinstance(err, ApiError) and err.status is not None:
            code = err.status.code
            message = err.status.message or ""
            reason = err.status.reason or ""
        if code is None:
            with contextlib.suppress(Exception):
                code = err.response.status_code
                reason = reason or err.response.reason_phrase
        message = message or reason or "no message"
        if code == 401:
            if self._chosen.in_cluster:
                whose = f"the service-account token {self._chosen.token_file} was refused"
            else:
                via = f" (exec plugin {self._exec.name})" if self._exec is not None else ""
                whose = (f"the credentials of user {self.user!r}{via} in context "
                         f"{self.context!r} were refused")
            return KubeAuthError(r(f"kubernetes: {whose} (HTTP 401): log in again"), code=401)
        if code == 403:
            return Forbidden(r(f"kubernetes: {message} (HTTP 403)"), code=403)
        if code == 404:
            return NotFound(r(f"kubernetes: {what}: {message} (HTTP 404)"), code=404)
        if code == 409:
            return Conflict(r(f"kubernetes: {message} (HTTP 409)"), code=409)
        if code == 410:
            return Gone(r(f"kubernetes: {what}: {message} (HTTP 410): list again"), code=410)
        return KubeApiError(r(f"kubernetes: {what}: {message} (HTTP {code} {reason})".rstrip()),
                            code=code)


def _in_chain(err: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, kind):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _tls_cause(err: BaseException) -> ssl.SSLError | None:
    found = _in_chain(err, ssl.SSLError)
    return found if isinstance(found, ssl.SSLError) else None


_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def _words(err: BaseException) -> str:
    """`[Errno 111] Connection refused` → `connection refused`, as people say it."""
    text = str(err) or type(err).__name__
    cur: BaseException | None = err
    # httpx2 keeps the OS error deeper down; its text is the clearest.
    seen: set[int] = set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror) and cur.strerror:
            text = cur.strerror  # "Name or service not known"
            break
        if isinstance(cur, OSError) and isinstance(cur.errno, int) and cur.errno > 0:
            # asyncio's own text is "Connect call failed (...)"; the errno says why.
            text = os.strerror(cur.errno)
            break
        if isinstance(cur, OSError) and cur.strerror:
            text = cur.strerror
            break
        cur = cur.__cause__ or cur.__context__
    text = _ERRNO.sub("", text.strip())
    return text[:1].lower() + text[1:] if text else "unknown error"


def _plain(obj: Any) -> Obj:
    """The server's JSON as plain dicts (lightkube hands back dict subclasses or models)."""
    if isinstance(obj, dict):
        return json.loads(json.dumps(obj, default=_to_builtin))
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return json.loads(json.dumps(to_dict(), default=_to_builtin))
    raise TypeError(f"unexpected {type(obj).__name__} from lightkube")


def _to_builtin(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot encode {type(value).__name__}")


def _as_resource(kind: ResourceKind, body: Obj) -> Any:
    body = copy.deepcopy(body)
    body.setdefault("apiVersion", f"{kind.group}/{kind.version}" if kind.group
                    else kind.version)
    body.setdefault("kind", kind.kind)
    # A generic resource class takes the dict as is; a typed model (when another part of
    # the process registered lightkube's own Lease or Event first) is built from it.
    return kind.res.from_dict(body)


# --- connect -------------------------------------------------------------------------------


def connect(settings: KubeSettings, *, service_account_dir: Path | None = None,
            ) -> KubeConnection:
    """Resolve the configuration (no network yet) and build the client.

    `service_account_dir` is the in-cluster token/CA/namespace folder (lightkube's own
    `from_service_account` takes it too); tests point it at a temporary folder.
    """
    secrets = _Secrets()
    chosen = _choose(settings, service_account_dir or SERVICE_ACCOUNT_DIR, secrets)
    _check_tls_material(chosen)
    proxy = chosen.cluster.get("proxy-url")
    proxy = proxy if isinstance(proxy, str) and proxy else None
    try:
        client = AsyncClient(chosen.config, namespace=settings.namespace,
                             timeout=httpx2.Timeout(settings.timeout),
                             field_manager=FIELD_MANAGER, proxy=proxy)
    except KubeError:
        raise
    except (ssl.SSLError, OSError) as err:
        raise KubeConfigError(secrets.redact(
            f"kubernetes: the TLS material of context {chosen.context!r} cannot be loaded "
            f"({getattr(err, 'reason', None) or err.strerror or err}): check "
            "certificate-authority, client-certificate and client-key")) from None
    except Exception as err:
        raise KubeConfigError(secrets.redact(
            f"kubernetes: context {chosen.context!r} in {chosen.source} cannot be used: "
            f"{type(err).__name__}: {err}")) from None
    exec_auth: _ExecAuth | None = None
    u = chosen.user
    # lightkube's order (tokenFile, token, exec) is kept: an exec plugin is used only for
    # a user with no token of its own.
    if u.get("exec") is not None and not u.get("token") and not u.get("tokenFile"):
        exec_auth = _ExecAuth(chosen, settings.timeout, secrets)
        inner = getattr(getattr(client, "_client", None), "_client", None)
        # lightkube has no public hook for an httpx2 Auth; its httpx2 client is reached
        # here, and checked, so that a lightkube change fails loudly instead of silently
        # sending no credentials.
        if not isinstance(inner, httpx2.AsyncClient):
            raise KubeConfigError("kubernetes: this lightkube version cannot take an exec "
                                  "plugin credential (relconsole needs lightkube 1.x)")
        inner.auth = exec_auth
    return KubeConnection(client, chosen, settings, secrets, exec_auth, proxy)


__all__ = [
    "ALL_NAMESPACES", "ANALYSIS_RUN", "ANALYSIS_TEMPLATE", "CLUSTER_ANALYSIS_TEMPLATE",
    "EVENT", "LEASE", "ROLLOUT", "Conflict", "Forbidden", "Gone", "KubeApiError",
    "KubeAuthError", "KubeConfigError", "KubeConnection", "KubeError", "KubeSettings",
    "KubeTLSError", "KubeUnreachable", "ListResult", "NotFound", "ResourceKind", "connect",
]
