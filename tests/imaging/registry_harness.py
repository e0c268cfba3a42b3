"""Real peers for the registry tests, all on loopback: Debian's docker-registry with a config of
the test's own, a token server (Basic credentials in, a JWT signed with an openssl key out, as
docker's auth servers do), a recording proxy that can cut, corrupt or redirect what passes, a
"blob storage" host for redirects, and OCI image layouts to push there with skopeo."""
from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
from pathlib import Path

REGISTRY = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
SERVICE = "hawser-test-registry"
ISSUER = "hawser-test-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def wait_listening(port: int, proc: subprocess.Popen | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop_process(proc: subprocess.Popen) -> None:
    """By its PID only: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- docker-registry --------------------------------------------------------------------------
class Registry:
    """docker-registry serving <workdir>/data on 127.0.0.1:<free port>; token auth when given
    a TokenServer (it trusts the server's certificate through rootcertbundle), Basic auth when
    given users (an htpasswd file of bcrypt hashes)."""

    def __init__(self, workdir: Path, token: "TokenServer | None" = None,
                 users: dict[str, str] | None = None, tls: bool = False):
        self.workdir, self.token = workdir, token
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.netloc = f"127.0.0.1:{self.port}"
        self.proc = None
        self.log = workdir / "registry.log"
        config = [
            "version: 0.1",
            "log:", "  level: info", "  accesslog:", "    disabled: true",
            "storage:", "  filesystem:", f"    rootdirectory: {workdir / 'data'}",
            "  delete:", "    enabled: true",
            "http:", f"  addr: {self.netloc}", f"  secret: {secrets.token_hex(16)}",
        ]
        if token is not None:
            config += ["auth:", "  token:", f"    realm: {token.url}/token",
                       f"    service: {SERVICE}", f"    issuer: {ISSUER}",
                       f"    rootcertbundle: {token.cert}"]
        if tls:     # https with a self-signed certificate for 127.0.0.1: self.cert
            self.cert, key = workdir / "tls.crt", workdir / "tls.key"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                            "-out", str(self.cert)], check=True, capture_output=True)
            config += ["  tls:", f"    certificate: {self.cert}", f"    key: {key}"]
        if users:
            htpasswd = workdir / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt(p)}\n" for u, p in users.items()))
            config += ["auth:", "  htpasswd:", "    realm: hawser-test",
                       f"    path: {htpasswd}"]
        self.config = workdir / "config.yml"
        self.config.write_text("\n".join(config) + "\n")

    def start(self) -> "Registry":
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([REGISTRY, "serve", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_listening(self.port, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def bcrypt(password: str) -> str:
    """An htpasswd hash (bcrypt at its lowest cost: the registry checks it on every request)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # crypt goes in 3.13
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))


# -- the token server -------------------------------------------------------------------------
class TokenServer:
    """docker's token protocol: GET /token?service=&scope= with Basic credentials, or POST of a
    refresh token (OAuth2). Users get what their scopes ask for; anonymous callers a token
    granting nothing; wrong credentials a 401. Every request is recorded."""

    def __init__(self, workdir: Path, users: dict[str, str], refresh_tokens: dict[str, str]):
        workdir.mkdir(parents=True, exist_ok=True)
        self.users, self.refresh_tokens = users, refresh_tokens
        self.key, self.cert = workdir / "token.key", workdir / "token.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=hawser-test-token", "-keyout", str(self.key),
                        "-out", str(self.cert)], check=True, capture_output=True)
        pem = self.cert.read_text()
        self.x5c = "".join(pem.split("-----")[2].split())   # base64 of the DER certificate
        self.requests: list[dict] = []
        self.lifetime = 300
        self.server = _server(self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def sign(self, claims: dict) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True).stdout
        return f"{signing_input}.{b64(signature)}"

    def _grant(self, user: str | None, scopes: list[str]) -> dict:
        access = []
        for scope in scopes if user else []:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        token = self.sign({"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now
                           + self.lifetime, "nbf": now - 10, "iat": now,
                           "jti": secrets.token_hex(8), "access": access})
        return {"token": token, "access_token": token, "expires_in": self.lifetime}

    def _handler(self):
        server = self

        class Handler(_Quiet):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                record = {"method": "GET", "scope": query.get("scope", []),
                          "service": query.get("service", [""])[0],
                          "authorization": self.headers.get("Authorization", "")}
                server.requests.append(record)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    raw = base64.b64decode(auth[6:]).decode()
                    name, _, password = raw.partition(":")
                    if server.users.get(name) != password:
                        return self.reply(401, {"details": "incorrect username or password"})
                    user = name
                self.reply(200, server._grant(user, record["scope"]))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = urllib.parse.parse_qs(body.decode())
                record = {"method": "POST", "scope": form.get("scope", []),
                          "service": form.get("service", [""])[0],
                          "grant_type": form.get("grant_type", [""])[0]}
                server.requests.append(record)
                user = server.refresh_tokens.get(form.get("refresh_token", [""])[0])
                if record["grant_type"] != "refresh_token" or user is None:
                    return self.reply(401, {"error": "invalid_grant"})
                self.reply(200, server._grant(user, record["scope"]))

            def reply(self, status: int, doc: dict) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        return Handler

    def stop(self) -> None:
        _stop_server(self.server)


# -- the recording proxy and blob storage -----------------------------------------------------
class BlobStorage:
    """A host blobs are redirected to (as S3 behind a signed URL): serves what it is given and
    records the headers of every request."""

    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.requests: list[dict] = []
        storage = self

        class Handler(_Quiet):
            def do_GET(self):
                storage.requests.append({"path": self.path, "headers": dict(self.headers)})
                data = storage.blobs.get(urllib.parse.urlsplit(self.path).path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")
        self.server = _server(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        _stop_server(self.server)


class Proxy:
    """Forwards every request to `upstream` (host:port) and records it (method, path, headers,
    the status it answered). Faults, each off until set:
    cut_after: the first blob GET whose body is longer is cut after that many bytes;
    ignore_range: the Range header is dropped (the registry then sends the whole blob);
    corrupt: blob bodies get one byte flipped;
    redirect_to: blob GETs are answered with a 307 to that BlobStorage;
    override: {path: (status, headers, body)} answered instead of the registry."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.requests: list[dict] = []
        self.cut_after: int | None = None
        self.ignore_range = self.corrupt = False
        self.redirect_to: BlobStorage | None = None
        self.override: dict[str, tuple[int, dict, bytes]] = {}
        self.lock = threading.Lock()
        self.server = _server(self._handler())
        self.netloc = f"127.0.0.1:{self.server.server_port}"

    def blob_gets(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "GET" and "/blobs/sha256:" in r["path"]]

    def _handler(self):
        proxy = self

        class Handler(_Quiet):
            def do_GET(self):
                self.forward()

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                record = {"method": self.command, "path": self.path, "headers": headers}
                with proxy.lock:
                    proxy.requests.append(record)
                is_blob = self.command == "GET" and "/blobs/sha256:" in self.path
                if self.path in proxy.override:
                    status, extra, data = proxy.override[self.path]
                    record["status"] = status
                    return self.answer(status, extra, data)
                if is_blob and proxy.ignore_range:
                    headers = {k: v for k, v in headers.items() if k.lower() != "range"}
                status, reason, up_headers, data = self.upstream(headers, body)
                record["status"] = status
                if is_blob and status in (200, 206):
                    if proxy.redirect_to is not None:
                        key = "/blob/" + secrets.token_hex(8)
                        proxy.redirect_to.blobs[key] = data
                        record["status"] = 307
                        location = f"{proxy.redirect_to.url}{key}?signature=x"
                        return self.answer(307, {"Location": location}, b"")
                    if proxy.corrupt and data:
                        data = bytes([data[0] ^ 0xFF]) + data[1:]
                    with proxy.lock:
                        cut = proxy.cut_after
                        if cut is not None and len(data) > cut:
                            proxy.cut_after = None
                        else:
                            cut = None
                    if cut is not None:
                        record["cut"] = cut
                        return self.answer(status, up_headers, data[:cut], length=len(data))
                self.answer(status, up_headers, data, reason=reason)

            def upstream(self, headers, body):
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    kept = [(k, v) for k, v in resp.getheaders()
                            if k.lower() not in ("connection", "keep-alive", "content-length",
                                                 "transfer-encoding")]
                    if self.command == "HEAD":
                        kept.append(("Content-Length", resp.getheader("Content-Length", "0")))
                    return resp.status, resp.reason, kept, data
                finally:
                    conn.close()

            def answer(self, status, headers, data, reason=None, length=None):
                close = length is not None
                items = headers.items() if isinstance(headers, dict) else headers
                self.send_response(status, reason)
                have_length = False
                for k, v in items:
                    self.send_header(k, v)
                    have_length |= k.lower() == "content-length"
                if close:
                    # the whole length announced, part of it sent: a broken transfer
                    self.send_header("Content-Length", str(length))
                elif not have_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                if close:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
        return Handler

    def stop(self) -> None:
        _stop_server(self.server)


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"    # keep-alive, as registries speak

    def log_message(self, *args):
        pass


def _server(handler) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True,
                     name="harness-http").start()
    return server


def _stop_server(server) -> None:
    server.shutdown()
    server.server_close()


# -- images -----------------------------------------------------------------------------------
def gzip_tar(files: dict[str, bytes]) -> bytes:
    """A gzip layer with these regular files (reproducible: root-owned, mtime 0)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip_bytes(raw.getvalue())


def gzip_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as f:
        f.write(data)
    return out.getvalue()


class Image:
    """One platform's image: gzip layers, its config and manifest as bytes."""

    def __init__(self, layers: list[bytes], arch: str = "amd64", os_name: str = "linux"):
        self.layers = layers
        diff_ids = [sha(gzip.decompress(layer)) for layer in layers]
        self.platform = {"architecture": arch, "os": os_name}
        self.config = json.dumps({
            "architecture": arch, "os": os_name, "created": "1970-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}
                       for layer in layers]}, sort_keys=True).encode()
        self.digest = sha(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        out = {sha(layer): layer for layer in self.layers}
        out[sha(self.config)] = self.config
        out[self.digest] = self.manifest
        return out


def write_layout(dest: Path, tag: str, images: list[Image], as_index: bool) -> str:
    """An OCI image layout with `tag` naming one manifest, or an index of them; the digest of
    what the tag names."""
    blobs: dict[str, bytes] = {}
    for image in images:
        blobs.update(image.blobs())
    if as_index:
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": i.digest, "size": len(i.manifest),
             "platform": i.platform} for i in images]}, sort_keys=True).encode()
        blobs[sha(index)] = index
        top = {"mediaType": OCI_INDEX, "digest": sha(index), "size": len(index)}
    else:
        top = {"mediaType": OCI_MANIFEST, "digest": images[0].digest,
               "size": len(images[0].manifest)}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.items():
        (dest / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return top["digest"]


def skopeo(*args: str, timeout: float = 60) -> str:
    r = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "HOME": os.environ.get("HOME", "/root")})
    if r.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def push_layout(layout: Path, tag: str, netloc: str, name: str, creds: str = "") -> None:
    args = ["copy", "--all", "--dest-tls-verify=false", "--preserve-digests"]
    if creds:
        args += ["--dest-creds", creds]
    skopeo(*args, f"oci:{layout}:{tag}", f"docker://{netloc}/{name}")
