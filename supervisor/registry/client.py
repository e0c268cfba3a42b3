"""A client of the OCI distribution API (containerd's remotes/docker): manifests by tag or
digest, blobs streamed into the content store (resumed with Range), blob uploads in one PUT,
manifest pushes. HTTP/1.1 on http.client with a few keep-alive connections per host, shared
by the threads of a pull; docker's rules for auth (auth.py), TLS and redirects."""
import hashlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse

from supervisor.content.store import DigestMismatch, check_digest
from supervisor.images import manifest as mf
from supervisor.registry import RegistryError
from supervisor.registry.auth import Authorizer, Credentials, scope_for

__all__ = ["RegistryClient", "RegistryError", "MANIFEST_TYPES", "registry_host"]

DOCKER_HUB = "registry-1.docker.io"
HUB_ALIASES = ("docker.io", "index.docker.io", DOCKER_HUB)
# Every type pull understands, so that the registry never down-converts to schema 1; schema 1
# itself is asked for last, so that pull can refuse it by name rather than see a 404.
MANIFEST_TYPES = (mf.OCI_INDEX, mf.DOCKER_LIST, mf.OCI_MANIFEST, mf.DOCKER_MANIFEST)
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES + (f"{mf.DOCKER_SCHEMA1[1]};q=0.1",))
CHUNK = 256 << 10
IDLE_PER_HOST = 6
# docker's per-registry CA certificates: <dir>/<host[:port]>/*.crt
CERTS_DIRS = ("/etc/hawser/certs.d", "/etc/docker/certs.d")
MAX_REDIRECTS = 5
# a broken download is tried again from where it stopped this many times
BLOB_RETRIES = 3
ERROR_BODY_LIMIT = 64 << 10
USER_AGENT = "hawser/0.1"
STALE = (http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError,
         ConnectionResetError, ConnectionAbortedError)


def registry_host(domain: str) -> str:
    """The host a registry name is served at: docker.io is registry-1.docker.io."""
    return DOCKER_HUB if domain in HUB_ALIASES else domain


def _hostname(netloc: str) -> str:
    if netloc.startswith("["):
        return netloc[1:].partition("]")[0]
    return netloc.rpartition(":")[0] if netloc.count(":") == 1 else netloc


def is_loopback(netloc: str) -> bool:
    host = _hostname(netloc).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Response:
    """An answer whose connection goes back to the pool once its body is read to the end."""

    def __init__(self, client: "RegistryClient", key, conn, raw: http.client.HTTPResponse,
                 url: str):
        self.client, self.key, self.conn, self.raw, self.url = client, key, conn, raw, url
        self.status, self.headers = raw.status, raw.headers

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    def read(self, limit: int) -> bytes:
        length = self.header("Content-Length")
        if length.isdigit() and int(length) > limit:
            raise RegistryError(self.status, "SIZE_INVALID", f"{self.url}: {length} bytes, "
                                f"more than the {limit} allowed", grpc_code="INVALID_ARGUMENT")
        data = self.raw.read(limit + 1)
        if len(data) > limit:
            raise RegistryError(self.status, "SIZE_INVALID", f"{self.url}: more than the "
                                f"{limit} bytes allowed", grpc_code="INVALID_ARGUMENT")
        return data

    def close(self) -> None:
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        if self.raw.isclosed() and not self.raw.will_close:
            self.client._give_back(self.key, conn)
        else:
            self.raw.close()
            conn.close()


class RegistryClient:
    """One registry (by its domain, as in a reference: "docker.io", "localhost:5000").
    `auth`: credentials (a dict with username/password/identity_token, a tuple, or None).
    `insecure`: None means plain http for loopback hosts only (docker's default), True or
    False forces it, a list names more insecure registries. TLS trusts the system's CAs, plus
    `ca_file` and the *.crt files of docker's certs.d/<host>/ directories."""

    def __init__(self, domain: str, auth=None, insecure=None, timeout: float = 60,
                 ca_file: str | None = None):
        self.domain = domain
        self.host = registry_host(domain)
        listed = () if insecure is None or isinstance(insecure, bool) else tuple(insecure)
        self._insecure_list = frozenset(registry_host(d) for d in listed)
        plain = insecure if isinstance(insecure, bool) else self._insecure_host(self.host)
        self.scheme = "http" if plain else "https"
        self.base = f"{self.scheme}://{self.host}"
        self.timeout = timeout
        self.auth = Authorizer(Credentials.of(auth), self._plain_fetch, self._insecure_host)
        self._idle: dict[tuple[str, str], list] = {}
        self._lock = threading.Lock()
        self._tls = None
        self._ca_files = [ca_file] if ca_file else []

    def _insecure_host(self, netloc: str) -> bool:
        return is_loopback(netloc) or netloc in self._insecure_list \
            or _hostname(netloc) in self._insecure_list

    # -- connections -------------------------------------------------------------------------
    def _connect(self, key):
        scheme, netloc = key
        if scheme == "https":
            with self._lock:
                if self._tls is None:
                    self._tls = self._tls_context()
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self._tls)
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        extra = list(self._ca_files)
        for base in CERTS_DIRS if "/" not in self.host and not self.host.startswith(".") else ():
            directory = os.path.join(base, self.host)
            try:
                extra += sorted(os.path.join(directory, n) for n in os.listdir(directory)
                                if n.endswith(".crt"))
            except OSError:
                continue
        for path in extra:
            try:
                context.load_verify_locations(cafile=path)
            except (OSError, ssl.SSLError) as e:
                raise RegistryError(0, "", f"CA certificate {path}: {e}",
                                    grpc_code="FAILED_PRECONDITION") from None
        return context

    def _take(self, key):
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        return self._connect(key), False

    def _give_back(self, key, conn) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for c in conns:
                c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, method: str, url: str, headers: dict, body=None, progress=None) -> _Response:
        """One request and its answer's head. body: bytes, or a file read in chunks (its
        progress told), rewound for a retry on a fresh connection when the pooled one was
        stale."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(0, "", f"{url}: not an http(s) URL", grpc_code="INVALID_ARGUMENT")
        key = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        start = body.tell() if body is not None and hasattr(body, "seek") else None
        headers = {"User-Agent": USER_AGENT, **headers}
        for fresh in (False, True):
            conn, reused = (self._connect(key), False) if fresh else self._take(key)
            try:
                self._write(conn, method, target, headers, body, progress)
                raw = conn.getresponse()
            except STALE as e:
                conn.close()
                if reused and not fresh and (body is None or isinstance(body, bytes)
                                             or start is not None):
                    if start is not None:
                        body.seek(start)
                    continue
                raise _unavailable(url, e) from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise _unavailable(url, e) from None
            except BaseException:
                conn.close()
                raise
            return _Response(self, key, conn, raw, url)
        raise AssertionError("unreachable")

    @staticmethod
    def _write(conn, method, target, headers, body, progress) -> None:
        if body is None or isinstance(body, bytes):
            conn.request(method, target, body=body, headers=headers)
            return
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        sent = 0
        while True:
            chunk = body.read(CHUNK)
            if not chunk:
                break
            conn.send(chunk)
            sent += len(chunk)
            if progress is not None:
                progress(sent)

    def _plain_fetch(self, method, url, headers, body) -> tuple[int, dict, bytes]:
        """For the token server: one request, redirects followed (the credentials only to the
        host they were meant for)."""
        origin = urllib.parse.urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS):
            resp = self._send(method, url, headers, body)
            try:
                if resp.status in (301, 302, 303, 307, 308) and resp.header("Location"):
                    url = urllib.parse.urljoin(url, resp.header("Location"))
                    resp.read(ERROR_BODY_LIMIT)
                    if urllib.parse.urlsplit(url).netloc != origin:
                        headers = {k: v for k, v in headers.items() if k != "Authorization"}
                    if resp.status == 303:
                        method, body = "GET", None
                    continue
                return resp.status, resp.headers, resp.read(1 << 20)
            finally:
                resp.close()
        raise RegistryError(0, "", f"{url}: more than {MAX_REDIRECTS} redirects",
                            grpc_code="UNAVAILABLE")

    # -- requests to the registry ------------------------------------------------------------
    def _url(self, repo: str, path: str) -> str:
        return f"{self.base}/v2/{urllib.parse.quote(repo)}/{path}"

    def _request(self, method: str, url: str, scopes: tuple[str, ...], headers=None, body=None,
                 progress=None) -> _Response:
        """A request with the auth it needs (one retry after a 401 taught what that is) and
        its redirects followed: to another host without our Authorization (blob storage with
        a signed URL must not see the registry's token)."""
        headers = dict(headers or {})
        for attempt in (0, 1):
            authorization = self.auth.header(scopes)
            resp = self._follow(method, url, headers, authorization, body, progress)
            if resp.status != 401 or attempt == 1:
                return resp
            error = self._error(resp, f"{method} {url}")
            self.auth.unauthorized(resp.header("WWW-Authenticate"), scopes, error, authorization)
            if body is not None and not isinstance(body, bytes) and not hasattr(body, "seek"):
                raise error     # a stream cannot be sent twice (_follow rewinds a file)
        raise AssertionError("unreachable")

    def _follow(self, method, url, headers, authorization, body, progress) -> _Response:
        origin = urllib.parse.urlsplit(self.base)
        start = body.tell() if body is not None and hasattr(body, "seek") else None
        for _ in range(MAX_REDIRECTS + 1):
            if start is not None:
                body.seek(start)
            here = urllib.parse.urlsplit(url)
            same = (here.scheme, here.netloc) == (origin.scheme, origin.netloc)
            sent = {**headers, "Authorization": authorization} if authorization and same \
                else headers
            resp = self._send(method, url, sent, body, progress)
            location = resp.header("Location")
            if resp.status not in (301, 302, 303, 307, 308) or not location:
                return resp
            resp.read(ERROR_BODY_LIMIT)
            resp.close()
            url = urllib.parse.urljoin(url, location)
            there = urllib.parse.urlsplit(url)
            if there.scheme == "http" and origin.scheme == "https" \
                    and not self._insecure_host(there.netloc):
                raise RegistryError(resp.status, "", f"{self.host} redirected to plain http "
                                    f"({there.netloc}): refused", grpc_code="UNAVAILABLE")
            if resp.status == 303 and method != "HEAD":
                method, body = "GET", None
        raise RegistryError(0, "", f"{url}: more than {MAX_REDIRECTS} redirects",
                            grpc_code="UNAVAILABLE")

    def _error(self, resp: _Response, what: str) -> RegistryError:
        """The registry's error JSON ({"errors": [{"code", "message"}]}) as a RegistryError."""
        try:
            body = resp.raw.read(ERROR_BODY_LIMIT) if resp.raw else b""
        except (OSError, http.client.HTTPException):
            body = b""
        finally:
            resp.close()
        code, message = "", ""
        try:
            errors = json.loads(body).get("errors") or []
            first = errors[0]
            code, message = str(first.get("code") or ""), str(first.get("message") or "")
            if len(errors) > 1:
                message += "".join(f"; {e.get('code', '').lower().replace('_', ' ')}: "
                                   f"{e.get('message', '')}" for e in errors[1:]
                                   if isinstance(e, dict))
        except (ValueError, AttributeError, IndexError, TypeError):
            pass
        if not code:
            code = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
                    429: "TOOMANYREQUESTS"}.get(resp.status, "")
            message = {401: "authentication required", 403: "requested access to the "
                       "resource is denied"}.get(resp.status, "")
            message = message or f"{what}: {resp.status} {resp.raw.reason}".rstrip()
        return RegistryError(resp.status, code, message)

    # -- the API -----------------------------------------------------------------------------
    def login(self) -> None:
        """Check the credentials as `docker login` does: GET /v2/ with them (a token for no
        scope, on a token registry); RegistryError (UNAUTHENTICATED) when they are refused."""
        resp = self._request("GET", f"{self.base}/v2/", ())
        try:
            if resp.status != 200:
                raise self._error(resp, f"{self.host}/v2/")
            resp.read(ERROR_BODY_LIMIT)
        finally:
            resp.close()

    def get_manifest(self, repo: str, reference: str, accept=None) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest or an index by tag or digest; the digest is
        the body's, checked against the one asked for and the registry's own."""
        accept = ", ".join(accept) if isinstance(accept, (list, tuple)) else accept
        url = self._url(repo, f"manifests/{urllib.parse.quote(reference, safe=':')}")
        resp = self._request("GET", url, (scope_for(repo),),
                             {"Accept": accept or ACCEPT_MANIFESTS})
        try:
            if resp.status != 200:
                raise self._error(resp, f"manifest {repo}:{reference}")
            body = resp.read(mf.MAX_DOCUMENT)
        finally:
            resp.close()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        what = f"manifest {self.domain}/{repo}@{reference}"
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(200, "DIGEST_INVALID", f"{what}: the registry sent one whose "
                                f"digest is {digest}")
        claimed = resp.header("Docker-Content-Digest")
        if claimed.startswith("sha256:") and claimed != digest:
            raise RegistryError(200, "DIGEST_INVALID", f"{what}: the registry says its digest "
                                f"is {claimed}, its body's is {digest}")
        return body, _media_type(resp.header("Content-Type"), body), digest

    def blob_exists(self, repo: str, digest: str, push: bool = False) -> int | None:
        """The blob's size when the repository has it, None when not (HEAD). push: ask for a
        token that also allows pushing (one token for all of a push)."""
        check_digest(digest)
        resp = self._request("HEAD", self._url(repo, f"blobs/{digest}"),
                             (scope_for(repo, push),))
        try:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise self._error(resp, f"blob {repo}@{digest}")
            length = resp.header("Content-Length")
            return int(length) if length.isdigit() else -1
        finally:
            resp.close()

    def fetch_blob(self, repo: str, digest: str, size: int, writer, progress=None) -> str:
        """Stream a blob into a content-store Writer and commit it (verified); its digest.
        A writer with bytes already (a named ingest a broken pull left) is resumed with
        Range; a registry that ignores Range sends it all again, and a broken transfer is
        tried again from where it stopped. progress(current, total) as bytes arrive."""
        check_digest(digest)
        if writer.exists:
            return writer.commit()
        resumed = writer.offset > 0
        self._download(repo, digest, size, writer, progress)
        if resumed and _whole(writer, digest) is False:
            # the bytes left by an earlier pull were not this blob's beginning (a crash
            # before they reached the disk, a registry that changed): once more, whole
            writer.restart()
            self._download(repo, digest, size, writer, progress)
        try:
            return writer.commit()
        except DigestMismatch as e:
            raise RegistryError(200, "DIGEST_INVALID", f"blob {digest} from {self.domain}: "
                                f"{e}") from None

    def _download(self, repo: str, digest: str, size: int, writer, progress) -> None:
        """From writer.offset to the end, with up to BLOB_RETRIES new tries after a break."""
        url = self._url(repo, f"blobs/{digest}")
        failures, last = 0, None
        while True:
            if failures > BLOB_RETRIES:
                raise RegistryError(0, "", f"blob {digest}: the download broke {failures} "
                                    f"times ({last})", grpc_code="UNAVAILABLE")
            if 0 <= size < writer.offset:
                writer.restart()
            if writer.offset and writer.offset == size:
                return      # all there: the commit checks it
            headers = {"Range": f"bytes={writer.offset}-"} if writer.offset else {}
            try:
                resp = self._request("GET", url, (scope_for(repo),), headers)
            except RegistryError as e:
                if e.status or e.grpc_code != "UNAVAILABLE":
                    raise
                failures, last = failures + 1, e
                time.sleep(0.2 * failures)
                continue
            try:
                if resp.status in (206, 416) and writer.offset \
                        and _range_start(resp.header("Content-Range")) != writer.offset:
                    # not the range asked for (416: the ingest is longer than the blob)
                    writer.restart()
                    failures, last = failures + 1, f"{resp.status} to a Range request"
                    continue
                if resp.status == 200 and writer.offset:
                    writer.restart()    # the registry ignores Range: it sends it all
                elif resp.status not in (200, 206):
                    raise self._error(resp, f"blob {repo}@{digest}")
                last = self._copy(resp, writer, digest, size, progress)
            finally:
                resp.close()
            if last is None:
                return
            failures += 1

    @staticmethod
    def _copy(resp: _Response, writer, digest: str, size: int, progress) -> str | None:
        """Body into writer; None when it came whole, else why it broke."""
        length = resp.header("Content-Length")
        end = size if size >= 0 else writer.offset + int(length) if length.isdigit() else -1
        if length.isdigit() and size >= 0 and writer.offset + int(length) != size:
            raise RegistryError(resp.status, "SIZE_INVALID", f"blob {digest}: the registry "
                                f"sends {writer.offset + int(length)} bytes, its descriptor "
                                f"says {size}", grpc_code="INVALID_ARGUMENT")
        try:
            while end < 0 or writer.offset < end:
                want = CHUNK if end < 0 else min(CHUNK, end - writer.offset)
                chunk = resp.raw.read(want)
                if not chunk:
                    break
                writer.write(chunk)
                if progress is not None:
                    progress(writer.offset, size)
        except (OSError, http.client.HTTPException) as e:
            resp.raw.close()
            return f"{type(e).__name__}: {e}"
        if end >= 0 and writer.offset < end:
            resp.raw.close()
            return f"the connection closed after {writer.offset} of {end} bytes"
        if end >= 0 and not resp.raw.isclosed():
            # the registry sends more than the descriptor's size: a wrong blob
            if resp.raw.read(1):
                raise RegistryError(resp.status, "SIZE_INVALID", f"blob {digest}: the registry "
                                    f"sends more than its {size} bytes",
                                    grpc_code="INVALID_ARGUMENT")
        return None

    def upload_blob(self, repo: str, digest: str, size: int, fileobj, progress=None,
                    mount_from: str | None = None) -> bool:
        """Upload a blob: POST to start, then ONE PUT with the whole body and ?digest= (no
        chunked PATCH: registries and proxies disagree on those). With mount_from (a repository
        of the same registry) the registry is first asked to mount it from there. True when
        it was mounted (nothing sent). progress(sent bytes)."""
        check_digest(digest)
        scopes = (scope_for(repo, push=True),)
        url = self._url(repo, "blobs/uploads/")
        if mount_from:
            scopes += (scope_for(mount_from),)
            url += "?" + urllib.parse.urlencode({"mount": digest, "from": mount_from})
        resp = self._request("POST", url, scopes, {"Content-Length": "0"}, body=b"")
        try:
            if resp.status == 201 and mount_from:
                resp.read(ERROR_BODY_LIMIT)
                return True
            if resp.status != 202 or not resp.header("Location"):
                raise self._error(resp, f"upload of {digest} to {repo}")
            resp.read(ERROR_BODY_LIMIT)
            location = urllib.parse.urljoin(url, resp.header("Location"))
        finally:
            resp.close()
        put = location + ("&" if urllib.parse.urlsplit(location).query else "?") \
            + urllib.parse.urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        resp = self._request("PUT", put, scopes, headers, body=fileobj, progress=progress)
        try:
            if resp.status not in (201, 204):
                raise self._error(resp, f"upload of {digest} to {repo}")
            resp.read(ERROR_BODY_LIMIT)
            claimed = resp.header("Docker-Content-Digest")
            if claimed.startswith("sha256:") and claimed != digest:
                raise RegistryError(resp.status, "DIGEST_INVALID", f"upload of {digest}: the "
                                    f"registry stored {claimed}")
        finally:
            resp.close()
        return False

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest or an index under a tag (or its digest); its digest."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(0, "DIGEST_INVALID", f"manifest {digest} pushed as {reference}",
                                grpc_code="INVALID_ARGUMENT")
        url = self._url(repo, f"manifests/{urllib.parse.quote(reference, safe=':')}")
        resp = self._request("PUT", url, (scope_for(repo, push=True),),
                             {"Content-Type": media_type}, body=body)
        try:
            if resp.status not in (200, 201, 202):
                raise self._error(resp, f"manifest {repo}:{reference}")
            resp.read(ERROR_BODY_LIMIT)
            claimed = resp.header("Docker-Content-Digest")
        finally:
            resp.close()
        if claimed.startswith("sha256:") and claimed != digest:
            raise RegistryError(201, "DIGEST_INVALID", f"manifest {repo}:{reference}: the "
                                f"registry stored {claimed}, we sent {digest}")
        return digest


def _unavailable(url: str, e: Exception) -> RegistryError:
    """No answer: why, in the words a user knows (the host, "connection refused")."""
    if isinstance(e, socket.timeout):
        why = "timed out"
    elif isinstance(e, ssl.SSLCertVerificationError):
        why = f"TLS: certificate verify failed: {e.verify_message}"
    elif isinstance(e, ssl.SSLError):
        why = f"TLS: {e.reason or e}"
    elif isinstance(e, OSError) and e.strerror:
        why = e.strerror.lower()
    else:
        why = str(e) or type(e).__name__
    netloc = urllib.parse.urlsplit(url).netloc
    return RegistryError(0, "", f"{netloc}: {why}", grpc_code="UNAVAILABLE")


def _media_type(content_type: str, body: bytes) -> str:
    """The registry's Content-Type when it names a manifest type, else the document's own
    mediaType ("" when it has none: the fields tell, manifest.kind_of)."""
    mt = content_type.partition(";")[0].strip()
    if mt in mf.INDEXES or mt in mf.MANIFESTS or mt in mf.DOCKER_SCHEMA1:
        return mt
    try:
        doc = json.loads(body)
        own = doc.get("mediaType") if isinstance(doc, dict) else None
    except (ValueError, UnicodeDecodeError):
        own = None
    return own if isinstance(own, str) else ""


def _range_start(content_range: str) -> int:
    """`bytes 100-199/200` -> 100 (-1 when it is not that form)."""
    unit, _, rest = content_range.strip().partition(" ")
    first = rest.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else -1


def _whole(writer, digest: str) -> bool | None:
    """Whether a writer holds the blob, checked before a commit (which would drop the ingest
    on a mismatch, where downloading again is the cure); None for a writer that does not
    say (no running hash)."""
    running = getattr(writer, "hash", None)
    if running is None:
        return None
    return f"sha256:{running.hexdigest()}" == digest
