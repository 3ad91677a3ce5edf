"""relconsole.providers.argo.kube: kubeconfig resolution, credentials, calls and errors.

Against the FAKE API server of tests/fake_kube.py (plain HTTP). TLS (CA, client
certificate, in-cluster https) is tested for real through a small TLS front in this file
that terminates TLS with certificates made here and forwards the bytes to the fake.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import socket
import ssl
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from relconsole.providers.argo import kube as k
from tests.fake_kube import LEASES, ROLLOUTS, FakeKube

TOKEN = "s3cr3t-token-0123456789abcdef"
OTHER = "0ther-token-fedcba9876543210"


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No developer kubeconfig, no cluster: each test sets up exactly what it needs."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    server = FakeKube(token=TOKEN, user="alice")
    try:
        yield server
    finally:
        server.close()


def kubeconfig(path: Path, server: str, user: dict[str, Any], *, context: str = "prod-eu",
               user_name: str = "sso-admin", cluster: dict[str, Any] | None = None,
               cluster_name: str = "c1",
               namespace: str | None = "shop", current: bool = True,
               extra_contexts: tuple[str, ...] = ()) -> Path:
    ctx: dict[str, Any] = {"cluster": cluster_name, "user": user_name}
    if namespace:
        ctx["namespace"] = namespace
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": context, "context": ctx}]
        + [{"name": n, "context": {"cluster": cluster_name, "user": user_name}}
           for n in extra_contexts],
    }
    if current:
        doc["current-context"] = context
    path.write_text(yaml.safe_dump(doc))
    return path


def settings(path: Path | None = None, **kw: Any) -> k.KubeSettings:
    return k.KubeSettings(kubeconfig=path, **kw)


def rollout(name: str = "checkout") -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": 2, "strategy": {"canary": {"steps": [{"setWeight": 10}]}}}}


def plugin(tmp_path: Path, name: str, body: str) -> Path:
    """A small exec credential plugin: a Python script, as `aws`/`kubelogin` would be."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport json, os, sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


EXEC_OK = """
info = os.environ.get("KUBERNETES_EXEC_INFO", "")
with open(os.environ["PLUGIN_LOG"], "a") as f:
    f.write(info + "\\n")
token = open(os.environ["PLUGIN_TOKEN"]).read().strip()
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": token, "expirationTimestamp": "2999-01-01T00:00:00Z"}}))
"""


def exec_user(command: Path, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    token_file = tmp_path / "plugin-token"
    if not token_file.exists():
        token_file.write_text(TOKEN)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(command),
                     "interactiveMode": "Never",
                     "env": [{"name": "PLUGIN_LOG", "value": str(tmp_path / "plugin.log")},
                             {"name": "PLUGIN_TOKEN", "value": str(token_file)}],
                     **extra}}


# --- certificates and a TLS front for the plain-HTTP fake ----------------------------------


class Pki:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca_key, self.ca = self._ca("relconsole test CA")
        self.other_key, self.other_ca = self._ca("some other CA")
        self.server_cert, self.server_key = self._leaf("127.0.0.1", server=True)
        self.client_cert, self.client_key = self._leaf("alice", server=False)
        self.ca_file = self._write("ca.crt", self.ca.public_bytes(serialization.Encoding.PEM))
        self.other_ca_file = self._write(
            "other-ca.crt", self.other_ca.public_bytes(serialization.Encoding.PEM))

    def _write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    @staticmethod
    def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                             crl_sign=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    def _leaf(self, name: str, *, server: bool) -> tuple[Path, Path]:
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(self.ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(hours=1))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.ca_key.public_key()), critical=False)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH if server
                        else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        kind = "server" if server else "client"
        return (self._write(f"{kind}.crt", cert.public_bytes(serialization.Encoding.PEM)),
                self._write(f"{kind}.key", key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption())))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


class TlsFront:
    """Terminates TLS on 127.0.0.1 and forwards the plain bytes to the fake."""

    def __init__(self, backend_url: str, pki: Pki, *, require_client_cert: bool) -> None:
        self.backend_port = int(backend_url.rsplit(":", 1)[1])
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(pki.server_cert, pki.server_key)
        if require_client_cert:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(pki.ca_file)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.handshake_errors: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as err:
            self.handshake_errors.append(str(err))
            conn.close()
            return
        up = socket.create_connection(("127.0.0.1", self.backend_port))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        tls.settimeout(None)
        threading.Thread(target=pump, args=(up, tls), daemon=True).start()
        pump(tls, up)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self._thread.join(timeout=1)


@pytest.fixture
def tls_front(fake: FakeKube, pki: Pki) -> Iterator[TlsFront]:
    front = TlsFront(fake.url, pki, require_client_cert=False)
    yield front
    front.close()


@pytest.fixture
def mtls_front(pki: Pki) -> Iterator[tuple[FakeKube, TlsFront]]:
    # Client-certificate users carry no token: the fake is open, the front checks the cert.
    server = FakeKube(user="alice")
    front = TlsFront(server.url, pki, require_client_cert=True)
    yield server, front
    front.close()
    server.close()


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


messages: list[str] = []  # every error text and description seen, for the secrets test


async def fails(coro: Any, exc: type[BaseException] = k.KubeError) -> str:
    with pytest.raises(exc) as info:
        await coro
    text = str(info.value)
    messages.append(text)
    assert "\n" not in text and "Traceback" not in text
    return text


def fails_sync(fn: Any, exc: type[BaseException] = k.KubeError) -> str:
    with pytest.raises(exc) as info:
        fn()
    text = str(info.value)
    messages.append(text)
    assert "\n" not in text
    return text


# --- token, tokenFile ---------------------------------------------------------------------


async def test_token_user_lists_with_the_collection_version(fake: FakeKube,
                                                            tmp_path: Path) -> None:
    fake.seed(ROLLOUTS, "shop", rollout())
    path = kubeconfig(tmp_path / "config", fake.url, {"token": TOKEN})
    async with k.connect(settings(path)) as conn:
        assert conn.describe == (f"kubeconfig {path}, context prod-eu (user sso-admin, token), "
                                 f"namespace shop, server {fake.url}")
        got = await conn.list(k.ROLLOUT)
        assert [o["metadata"]["name"] for o in got.items] == ["checkout"]
        assert got.resource_version == fake.resource_version
        one = await conn.get(k.ROLLOUT, "checkout")
        assert type(one) is dict and one["spec"]["replicas"] == 2
    req = fake.requests_to("GET", "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts")[0]
    assert req.status == 200
    messages.append(conn.describe)


async def test_token_file_is_read_and_relative_paths_follow_the_file(
        fake: FakeKube, tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "token").write_text(TOKEN + "\n")
    path = kubeconfig(tmp_path / "cfg" / "config", fake.url, {"tokenFile": "token"})
    async with k.connect(settings(path)) as conn:
        assert f"token file {tmp_path / 'cfg' / 'token'}" in conn.describe
        assert (await conn.list(k.ROLLOUT)).items == []
        messages.append(conn.describe)


async def test_refused_token_says_who_and_what_to_do(fake: FakeKube, tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", fake.url, {"token": OTHER})
    async with k.connect(settings(path)) as conn:
        text = await fails(conn.get(k.ROLLOUT, "x"), k.KubeAuthError)
    assert text == ("kubernetes: the credentials of user 'sso-admin' in context 'prod-eu' "
                    "were refused (HTTP 401): log in again")
    assert OTHER not in text


async def test_forbidden_quotes_the_server(fake: FakeKube, tmp_path: Path) -> None:
    fake.seed(ROLLOUTS, "shop", rollout())
    fake.forbid("patch", "rollouts")
    path = kubeconfig(tmp_path / "config", fake.url, {"token": TOKEN})
    async with k.connect(settings(path)) as conn:
        text = await fails(conn.merge_patch(k.ROLLOUT, "checkout", {"spec": {"paused": True}}),
                           k.Forbidden)
    assert text == ('kubernetes: rollouts.argoproj.io "checkout" is forbidden: User "alice" '
                    'cannot patch resource "rollouts" in API group "argoproj.io" in the '
                    'namespace "shop" (HTTP 403)')


async def test_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}"
    path = kubeconfig(tmp_path / "config", url, {"token": TOKEN})
    async with k.connect(settings(path, timeout=2)) as conn:
        text = await fails(conn.list(k.ROLLOUT), k.KubeUnreachable)
    assert text == f"kubernetes: cannot reach {url}: connection refused"


async def test_server_that_never_answers(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        path = kubeconfig(tmp_path / "config", url, {"token": TOKEN})
        started = time.monotonic()
        async with k.connect(settings(path, timeout=0.3)) as conn:
            text = await fails(conn.get(k.ROLLOUT, "x"), k.KubeUnreachable)
    assert time.monotonic() - started < 2
    assert text == (f"kubernetes: {url} did not answer within 0.3s "
                    "(get rollouts.argoproj.io 'x')")


# --- exec credential plugins ----------------------------------------------------------------


async def test_exec_plugin_v1_gives_the_token_once_and_gets_cluster_info(
        fake: FakeKube, tmp_path: Path) -> None:
    cmd = plugin(tmp_path, "aws", EXEC_OK)
    path = kubeconfig(tmp_path / "config", fake.url,
                      exec_user(cmd, tmp_path, provideClusterInfo=True),
                      cluster={"extensions": [{"name": "client.authentication.k8s.io/exec",
                                               "extension": {"audience": "shop"}}]})
    async with k.connect(settings(path)) as conn:
        assert "context prod-eu (user sso-admin, exec plugin aws)" in conn.describe
        await conn.list(k.ROLLOUT)
        await conn.list(k.LEASE)
        messages.append(conn.describe)
    runs = (tmp_path / "plugin.log").read_text().splitlines()
    assert len(runs) == 1  # cached until its expirationTimestamp
    info = json.loads(runs[0])
    assert info["apiVersion"] == "client.authentication.k8s.io/v1"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == fake.url
    assert info["spec"]["cluster"]["config"] == {"audience": "shop"}


async def test_exec_plugin_is_rerun_after_a_401(fake: FakeKube, tmp_path: Path) -> None:
    cmd = plugin(tmp_path, "kubelogin", EXEC_OK)
    path = kubeconfig(tmp_path / "config", fake.url, exec_user(cmd, tmp_path))
    async with k.connect(settings(path)) as conn:
        await conn.list(k.ROLLOUT)
        # The server revokes the token; the plugin now hands out a new one.
        fake.token = OTHER
        (tmp_path / "plugin-token").write_text(OTHER)
        await conn.list(k.ROLLOUT)
    assert len((tmp_path / "plugin.log").read_text().splitlines()) == 2
    assert [r.status for r in fake.requests][-2:] == [401, 200]


async def test_exec_plugin_v1beta1_without_cluster_info(fake: FakeKube, tmp_path: Path) -> None:
    body = EXEC_OK.replace("authentication.k8s.io/v1\"", "authentication.k8s.io/v1beta1\"")
    cmd = plugin(tmp_path, "gke-gcloud-auth-plugin", body)
    user = exec_user(cmd, tmp_path)
    user["exec"]["apiVersion"] = "client.authentication.k8s.io/v1beta1"
    del user["exec"]["interactiveMode"]
    path = kubeconfig(tmp_path / "config", fake.url, user)
    async with k.connect(settings(path)) as conn:
        await conn.list(k.ROLLOUT)
    info = json.loads((tmp_path / "plugin.log").read_text().splitlines()[0])
    assert "cluster" not in info["spec"]


async def test_exec_plugin_that_fails(fake: FakeKube, tmp_path: Path) -> None:
    cmd = plugin(tmp_path, "aws", 'print("Traceback-ish noise", file=sys.stderr)\n'
                 'print("Error loading SSO Token: Token for sso-admin has expired", '
                 'file=sys.stderr)\nsys.exit(1)')
    path = kubeconfig(tmp_path / "config", fake.url, exec_user(cmd, tmp_path))
    async with k.connect(settings(path)) as conn:
        text = await fails(conn.list(k.ROLLOUT), k.KubeAuthError)
    assert text == ("kubernetes: the exec plugin aws of user 'sso-admin' in context 'prod-eu' "
                    "exited with code 1: Error loading SSO Token: Token for sso-admin has "
                    "expired")


async def test_exec_plugin_that_hangs_is_killed(fake: FakeKube, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    cmd = plugin(tmp_path, "aws", f'open({str(pid_file)!r}, "w").write(str(os.getpid()))\n'
                 "time.sleep(60)")
    path = kubeconfig(tmp_path / "config", fake.url, exec_user(cmd, tmp_path))
    started = time.monotonic()
    async with k.connect(settings(path, timeout=0.7)) as conn:
        text = await fails(conn.list(k.ROLLOUT), k.KubeAuthError)
    assert time.monotonic() - started < 3
    assert text == ("kubernetes: the exec plugin aws of user 'sso-admin' in context 'prod-eu' "
                    "did not answer within 0.7s and was killed")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_exec_plugin_missing_shows_the_install_hint(fake: FakeKube,
                                                          tmp_path: Path) -> None:
    user = exec_user(tmp_path / "no-such-plugin", tmp_path,
                     installHint="Install it with: brew install kubelogin\nmore text")
    path = kubeconfig(tmp_path / "config", fake.url, user)
    async with k.connect(settings(path)) as conn:
        text = await fails(conn.list(k.ROLLOUT), k.KubeAuthError)
    assert text.endswith("was not found "
                         f"({tmp_path / 'no-such-plugin'}): Install it with: brew install "
                         "kubelogin")


def test_exec_plugin_that_needs_a_terminal_is_refused(tmp_path: Path) -> None:
    user = exec_user(tmp_path / "aws", tmp_path)
    user["exec"]["interactiveMode"] = "Always"
    path = kubeconfig(tmp_path / "config", "http://127.0.0.1:1", user)
    text = fails_sync(lambda: k.connect(settings(path)), k.KubeConfigError)
    assert "needs a terminal (interactiveMode: Always)" in text


# --- TLS: CA, client certificates, in-cluster -----------------------------------------------


async def test_ca_file_and_ca_data_verify_the_server(tls_front: TlsFront, pki: Pki,
                                                     tmp_path: Path) -> None:
    for cluster in ({"certificate-authority": str(pki.ca_file)},
                    {"certificate-authority-data": b64(pki.ca_file)}):
        path = kubeconfig(tmp_path / "config", tls_front.url, {"token": TOKEN},
                          cluster=cluster)
        async with k.connect(settings(path)) as conn:
            assert (await conn.list(k.ROLLOUT)).items == []


async def test_wrong_ca_names_the_ca_source(tls_front: TlsFront, pki: Pki,
                                            tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", tls_front.url, {"token": TOKEN},
                      cluster={"certificate-authority": str(pki.other_ca_file)})
    async with k.connect(settings(path)) as conn:
        text = await fails(conn.list(k.ROLLOUT), k.KubeTLSError)
    assert text.startswith(f"kubernetes: TLS verification of {tls_front.url} failed (")
    assert text.endswith(f"checked against the CA file {pki.other_ca_file} of the cluster in "
                         "context 'prod-eu'")


async def test_client_certificate_files_and_data(mtls_front: tuple[FakeKube, TlsFront],
                                                 pki: Pki, tmp_path: Path) -> None:
    server, front = mtls_front
    server.seed(ROLLOUTS, "shop", rollout())
    users = [
        ({"client-certificate": str(pki.client_cert), "client-key": str(pki.client_key)},
         f"client certificate {pki.client_cert}"),
        ({"client-certificate-data": b64(pki.client_cert),
          "client-key-data": b64(pki.client_key)}, "client certificate (inline)"),
    ]
    for user, words in users:
        path = kubeconfig(tmp_path / "config", front.url, user,
                          cluster={"certificate-authority-data": b64(pki.ca_file)})
        async with k.connect(settings(path)) as conn:
            assert f"(user sso-admin, {words})" in conn.describe
            assert len((await conn.list(k.ROLLOUT)).items) == 1
            messages.append(conn.describe)
    assert front.handshake_errors == []
    assert b64(pki.client_key) not in " ".join(messages)


async def test_no_client_certificate_where_one_is_required(
        mtls_front: tuple[FakeKube, TlsFront], pki: Pki, tmp_path: Path) -> None:
    _, front = mtls_front
    path = kubeconfig(tmp_path / "config", front.url, {},
                      cluster={"certificate-authority": str(pki.ca_file)})
    async with k.connect(settings(path)) as conn:
        text = await fails(conn.list(k.ROLLOUT), k.KubeError)
    assert text.startswith("kubernetes: ")


def test_missing_client_key_file(pki: Pki, tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "https://127.0.0.1:1",
                      {"client-certificate": str(pki.client_cert), "client-key": "nope.key"})
    text = fails_sync(lambda: k.connect(settings(path)), k.KubeConfigError)
    assert text == (f"kubernetes: the client key file {tmp_path / 'nope.key'} of user "
                    "'sso-admin' in context 'prod-eu' does not exist")


async def test_in_cluster_service_account(fake: FakeKube, tls_front: TlsFront, pki: Pki,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fake_server = fake
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(TOKEN)
    (sa / "namespace").write_text("shop")
    (sa / "ca.crt").write_bytes(pki.ca_file.read_bytes())
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(tls_front.port))
    async with k.connect(settings(), service_account_dir=sa) as conn:
        assert conn.describe == (f"in-cluster service account {sa}, namespace shop, "
                                 f"server {tls_front.url}")
        assert (await conn.list(k.ROLLOUT)).items == []
        # The kubelet rotates the token: lightkube re-reads the file after a 401.
        (sa / "token").write_text(OTHER)
        fake_server.token = OTHER
        assert (await conn.list(k.ROLLOUT)).items == []
    assert [r.status for r in fake_server.requests][-2:] == [401, 200]


def test_in_cluster_needs_no_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(TOKEN)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    text = fails_sync(lambda: k.connect(settings(context="prod"), service_account_dir=sa),
                      k.KubeConfigError)
    assert "context 'prod' given, but there is no kubeconfig" in text


# --- which configuration, and refusals -----------------------------------------------------------


def test_order_kubeconfig_env_then_home_then_nothing(
        tmp_path: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".kube").mkdir()
    home_cfg = kubeconfig(clean_env / ".kube" / "config", "http://127.0.0.1:1",
                          {"token": TOKEN}, context="home")
    assert k.connect(settings()).describe.startswith(f"kubeconfig {home_cfg}, context home")
    env_cfg = kubeconfig(tmp_path / "env-config", "http://127.0.0.1:1", {"token": TOKEN},
                         context="from-env")
    monkeypatch.setenv("KUBECONFIG", str(env_cfg))
    assert k.connect(settings()).describe.startswith(
        f"kubeconfig {env_cfg} (from KUBECONFIG), context from-env")
    explicit = kubeconfig(tmp_path / "explicit", "http://127.0.0.1:1", {"token": TOKEN},
                          context="explicit")
    assert k.connect(settings(explicit)).describe.startswith(
        f"kubeconfig {explicit}, context explicit")
    monkeypatch.delenv("KUBECONFIG")
    home_cfg.unlink()
    text = fails_sync(lambda: k.connect(settings(), service_account_dir=tmp_path / "none"),
                      k.KubeConfigError)
    assert text.startswith("kubernetes: no configuration found: no `kubeconfig:` given, "
                           f"KUBECONFIG unset, {home_cfg} missing")


async def test_kubeconfig_list_is_merged_as_kubectl_does(
        fake: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = kubeconfig(tmp_path / "a" / "config", "http://127.0.0.1:1", {"token": OTHER},
                       context="dev", user_name="dev-user")
    (tmp_path / "b" / "token").write_text(TOKEN)
    second = kubeconfig(tmp_path / "b" / "config", fake.url, {"tokenFile": "token"},
                        context="prod-eu", current=True, cluster_name="prod")
    # Also define "dev" in the second file: the first file's definition must win.
    doc = yaml.safe_load(second.read_text())
    doc["contexts"].append({"name": "dev", "context": {"cluster": "prod", "user": "sso-admin"}})
    second.write_text(yaml.safe_dump(doc))
    missing = tmp_path / "missing"
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(missing), str(second)]))
    conn = k.connect(settings())
    assert conn.context == "dev" and conn.user == "dev-user"  # first current-context wins
    assert conn.describe.startswith(f"kubeconfig {first}:{second} (from KUBECONFIG)")
    async with k.connect(settings(context="prod-eu")) as prod:
        assert f"token file {tmp_path / 'b' / 'token'}" in prod.describe
        assert (await prod.list(k.ROLLOUT)).items == []
    await conn.aclose()


def test_kubeconfig_env_naming_no_existing_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'x'}:{tmp_path / 'y'}")
    text = fails_sync(lambda: k.connect(settings()), k.KubeConfigError)
    assert text == f"kubernetes: KUBECONFIG names no existing file: {tmp_path / 'x'}, " \
        f"{tmp_path / 'y'}"


def test_missing_context_lists_the_ones_that_exist(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "http://127.0.0.1:1", {"token": TOKEN},
                      extra_contexts=("staging",))
    text = fails_sync(lambda: k.connect(settings(path, context="prod-us")), k.KubeConfigError)
    assert text == (f"kubernetes: context 'prod-us' is not in kubeconfig {path} "
                    "(contexts there: prod-eu, staging)")


def test_missing_file_and_no_current_context(tmp_path: Path) -> None:
    text = fails_sync(lambda: k.connect(settings(tmp_path / "nope")), k.KubeConfigError)
    assert text == f"kubernetes: kubeconfig {tmp_path / 'nope'} does not exist"
    path = kubeconfig(tmp_path / "config", "http://127.0.0.1:1", {"token": TOKEN},
                      current=False)
    text = fails_sync(lambda: k.connect(settings(path)), k.KubeConfigError)
    assert text == (f"kubernetes: kubeconfig {path} sets no current-context; name one with "
                    "`context:` (contexts there: prod-eu)")


def test_insecure_skip_tls_verify_is_refused(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "https://127.0.0.1:1", {"token": TOKEN},
                      cluster={"insecure-skip-tls-verify": True})
    text = fails_sync(lambda: k.connect(settings(path)), k.KubeConfigError)
    assert text == ("kubernetes: cluster 'c1' (context 'prod-eu') sets insecure-skip-tls-verify;"
                    " relconsole keeps TLS verification on: give the cluster's CA as "
                    "certificate-authority or certificate-authority-data instead")


def test_bad_yaml_never_quotes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(f"users:\n- name: u\n  user: {{token: {TOKEN}\n")
    text = fails_sync(lambda: k.connect(settings(path)), k.KubeConfigError)
    assert text.startswith(f"kubernetes: kubeconfig {path} is not valid YAML (line ")


def test_proxy_url_is_used_and_shown_without_its_password(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "https://10.1.2.3:6443", {"token": TOKEN},
                      cluster={"proxy-url": "http://ops:pr0xy-passw0rd@127.0.0.1:3128"})
    conn = k.connect(settings(path))
    assert conn.describe.endswith("server https://10.1.2.3:6443 via proxy "
                                  "http://127.0.0.1:3128")
    assert "pr0xy-passw0rd" not in conn.describe


# --- the calls ----------------------------------------------------------------------------------


@pytest.fixture
async def conn(fake: FakeKube, tmp_path: Path) -> Any:
    path = kubeconfig(tmp_path / "config", fake.url, {"token": TOKEN})
    c = k.connect(settings(path))
    yield c
    await c.aclose()


async def test_merge_and_json_patch_on_resource_and_status(fake: FakeKube,
                                                           conn: k.KubeConnection) -> None:
    fake.seed(ROLLOUTS, "shop", rollout())
    base = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout"
    out = await conn.merge_patch(k.ROLLOUT, "checkout", {"spec": {"paused": True}})
    assert out["spec"]["paused"] is True
    out = await conn.json_patch(k.ROLLOUT, "checkout",
                                [{"op": "replace", "path": "/spec/replicas", "value": 3}])
    assert out["spec"]["replicas"] == 3
    out = await conn.merge_patch(k.ROLLOUT, "checkout", {"status": {"abort": True}},
                                 status=True)
    assert out["status"]["abort"] is True
    await conn.json_patch(k.ROLLOUT, "checkout",
                          [{"op": "add", "path": "/status/pauseConditions", "value": []}],
                          status=True)
    sent = [(r.path, r.content_type) for r in fake.requests_to("PATCH")]
    assert sent == [(base, "application/merge-patch+json"),
                    (base, "application/json-patch+json"),
                    (base + "/status", "application/merge-patch+json"),
                    (base + "/status", "application/json-patch+json")]
    with pytest.raises(ValueError, match="no status subresource"):
        await conn.merge_patch(k.ANALYSIS_RUN, "x", {}, status=True)


async def test_watch_from_a_version_and_410_gone(fake: FakeKube,
                                                 conn: k.KubeConnection) -> None:
    fake.seed(ROLLOUTS, "shop", rollout())
    listed = await conn.list(k.ROLLOUT)
    events = conn.watch(k.ROLLOUT, resource_version=listed.resource_version)
    task = asyncio.ensure_future(events.__anext__())
    assert await asyncio.to_thread(fake.wait_for_watches, 1)
    fake.seed(ROLLOUTS, "shop", rollout("payments"))
    etype, obj = await task
    assert (etype, obj["metadata"]["name"]) == ("ADDED", "payments")
    await events.aclose()
    fake.compact()
    gone = conn.watch(k.ROLLOUT, resource_version=listed.resource_version)
    text = await fails(gone.__anext__(), k.Gone)
    assert text.startswith("kubernetes: watch rollouts.argoproj.io: too old resource version: ")
    assert text.endswith("(HTTP 410): list again")


async def test_lease_create_get_update_and_conflict(fake: FakeKube,
                                                    conn: k.KubeConnection) -> None:
    body = {"metadata": {"name": "relconsole-checkout"},
            "spec": {"holderIdentity": "ops@bastion", "leaseDurationSeconds": 15}}
    made = await conn.create_lease(body)
    assert made["apiVersion"] == "coordination.k8s.io/v1" and made["kind"] == "Lease"
    got = await conn.get_lease("relconsole-checkout")
    got["spec"]["holderIdentity"] = "other@laptop"
    updated = await conn.update_lease(got)
    stored = fake.get_object(LEASES, "shop", "relconsole-checkout")
    assert stored is not None and stored["spec"]["holderIdentity"] == "other@laptop"
    got["spec"]["holderIdentity"] = "ops@bastion"  # still the old resourceVersion
    text = await fails(conn.update_lease(got), k.Conflict)
    assert text.startswith('kubernetes: Operation cannot be fulfilled on leases.coordination'
                           '.k8s.io "relconsole-checkout": the object has been modified')
    assert updated["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]
    await fails(conn.get_lease("nobody"), k.NotFound)


async def test_create_event_and_cluster_scoped_kinds(fake: FakeKube,
                                                     conn: k.KubeConnection) -> None:
    event = await conn.create_event({
        "metadata": {"generateName": "checkout."},
        "involvedObject": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                           "name": "checkout", "namespace": "shop"},
        "reason": "RelconsoleAdvance", "message": "advanced to step 2", "type": "Normal"})
    assert event["metadata"]["name"].startswith("checkout.")
    assert fake.requests_to("POST")[0].path == "/api/v1/namespaces/shop/events"
    # The fake serves no ClusterAnalysisTemplates; the path shows they are cluster-scoped.
    await fails(conn.list(k.CLUSTER_ANALYSIS_TEMPLATE), k.NotFound)
    assert fake.requests[-1].path == "/apis/argoproj.io/v1alpha1/clusteranalysistemplates"
    assert (await conn.list(k.ANALYSIS_TEMPLATE)).items == []
    assert (await conn.list(k.ANALYSIS_RUN)).items == []


async def test_no_message_or_description_carries_a_secret(fake: FakeKube,
                                                          tmp_path: Path) -> None:
    """Rule 6, end to end: even a plugin that echoes the token in its error is redacted."""
    texts: list[str] = []
    path = kubeconfig(tmp_path / "config", fake.url, {"token": TOKEN})
    async with k.connect(settings(path)) as conn:
        texts.append(conn.describe)
        fake.token = OTHER  # ours is now refused
        texts.append(await fails(conn.list(k.ROLLOUT)))
        fake.token = TOKEN
        fake.forbid()
        texts.append(await fails(conn.get(k.ROLLOUT, "x")))
    leaky = plugin(tmp_path, "leaky", f'print("bad token {TOKEN} for Bearer {TOKEN}", '
                   'file=sys.stderr)\nsys.exit(3)')
    path = kubeconfig(tmp_path / "config2", fake.url, exec_user(leaky, tmp_path))
    async with k.connect(settings(path)) as conn:
        texts.append(conn.describe)
        texts.append(await fails(conn.list(k.ROLLOUT), k.KubeAuthError))
    assert texts[-1].endswith("exited with code 3: bad token *** for Bearer ***")
    bad = tmp_path / "bad"
    bad.write_text(f"users: [{{name: u, user: {{token: {TOKEN}}}}}\n  : :\n")
    texts.append(fails_sync(lambda: k.connect(settings(bad))))
    texts.extend(messages)  # what the other tests in this process saw, too
    for text in texts:
        assert TOKEN not in text and OTHER not in text
        assert "PRIVATE KEY" not in text
