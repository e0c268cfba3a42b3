"""A registry's authentication, as docker's client does it: a 401 names a scheme in its
WWW-Authenticate header. Basic: the credentials go with every request to that host. Bearer:
a token is asked from the realm (GET with Basic credentials, or POST of an identity/refresh
token: OAuth2), for the scopes the request needs, and kept per scope until it expires."""
import base64
import json
import threading
import time
import urllib.parse

from supervisor.registry import RegistryError

# A token is dropped this long before its expiry: a request must not carry one that lapses
# on its way.
EXPIRY_MARGIN = 10.0
# RFC 6750 and docker: a token without expires_in lasts 60 s.
DEFAULT_EXPIRY = 60.0
CLIENT_ID = "hawser"


class Credentials:
    """What a user gave for a registry: username/password, or an identity (refresh) token."""
    __slots__ = ("username", "password", "identity_token")

    def __init__(self, username: str = "", password: str = "", identity_token: str = ""):
        self.username, self.password = username or "", password or ""
        self.identity_token = identity_token or ""

    @classmethod
    def of(cls, auth) -> "Credentials | None":
        """From a dict (hawserd's Images service), a (user, password, token) tuple or an object
        with those attributes; None when it holds nothing."""
        if auth is None:
            return None
        if isinstance(auth, Credentials):
            creds = auth
        elif isinstance(auth, dict):
            creds = cls(auth.get("username"), auth.get("password"), auth.get("identity_token"))
        elif isinstance(auth, (tuple, list)):
            creds = cls(*auth)
        else:
            creds = cls(getattr(auth, "username", ""), getattr(auth, "password", ""),
                        getattr(auth, "identity_token", ""))
        return creds if creds.username or creds.password or creds.identity_token else None

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def parse_challenges(header: str) -> list[tuple[str, dict]]:
    """`Bearer realm="https://auth/token",service="reg",scope="repository:a:pull,push"` ->
    [("bearer", {"realm": ..., ...})]. Several challenges may share one header (RFC 7235): a
    word not followed by "=" starts the next one."""
    out: list[tuple[str, dict]] = []
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        start = i
        while i < n and header[i] not in " \t,=":
            i += 1
        word = header[start:i]
        if not word:
            break
        while i < n and header[i] in " \t":
            i += 1
        if i < n and header[i] == "=":
            i, value = _value(header, i + 1)
            if out:
                out[-1][1][word.lower()] = value
        else:
            out.append((word.lower(), {}))
    return out


def _value(header: str, i: int) -> tuple[int, str]:
    n = len(header)
    while i < n and header[i] in " \t":
        i += 1
    if i < n and header[i] == '"':
        i += 1
        chars = []
        while i < n and header[i] != '"':
            if header[i] == "\\" and i + 1 < n:
                i += 1
            chars.append(header[i])
            i += 1
        return i + 1, "".join(chars)
    start = i
    while i < n and header[i] not in ",":
        i += 1
    return i, header[start:i].strip()


def scope_for(repo: str, push: bool = False) -> str:
    return f"repository:{repo}:{'pull,push' if push else 'pull'}"


class Authorizer:
    """The Authorization header for a request to the registry, and what to do on its 401.
    Shared by the threads of one RegistryClient: the token cache has a lock, and a token is
    fetched once for all the requests that wait for it."""

    def __init__(self, credentials: Credentials | None, fetch, insecure_host):
        # fetch(method, url, headers, body) -> (status, headers, body): the client's transport
        self.credentials, self._fetch, self._insecure_host = credentials, fetch, insecure_host
        self._challenge: tuple[str, dict] | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._fetching: dict[tuple[str, ...], threading.Lock] = {}

    def header(self, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge[0] == "basic":
                return self.credentials.basic() if self.credentials else None
            token = self._cached(scopes)
        return f"Bearer {token}" if token else None

    def _cached(self, scopes: tuple[str, ...]) -> str | None:
        now = time.monotonic()
        for key, (token, expires) in list(self._tokens.items()):
            if expires <= now:
                del self._tokens[key]
            elif key == scopes or _covers(key, scopes):
                return token
        return None

    def unauthorized(self, www_authenticate: str, scopes: tuple[str, ...], error,
                     sent: str | None = None) -> None:
        """After a 401 to a request that carried `sent` (its Authorization): learn the scheme
        and get what the next try needs, or raise `error` (the registry's own) when there is
        nothing more to try."""
        challenges = parse_challenges(www_authenticate or "")
        chosen = next((c for c in challenges if c[0] == "bearer" and c[1].get("realm")), None) \
            or next((c for c in challenges if c[0] == "basic"), None)
        if chosen is None:
            raise error
        with self._lock:
            self._challenge = chosen
        if chosen[0] == "basic":
            if self.credentials is None or not self.credentials.username \
                    or (sent or "").startswith("Basic "):
                raise error     # no credentials, or these very ones were refused
            return
        if sent and sent.startswith("Bearer "):
            self.forget(sent[len("Bearer "):])
        with self._lock:
            gate = self._fetching.setdefault(scopes, threading.Lock())
        with gate:
            with self._lock:
                if self._cached(scopes) is not None:
                    return      # another thread fetched it while this one waited
            token, lifetime = self._token(chosen[1], scopes)
            with self._lock:
                self._tokens[scopes] = (token, time.monotonic() + lifetime - EXPIRY_MARGIN)

    def forget(self, token: str) -> None:
        """A token the registry refused (expired early, revoked): not offered again."""
        with self._lock:
            for key, (cached, _) in list(self._tokens.items()):
                if cached == token:
                    del self._tokens[key]

    def _token(self, params: dict, scopes: tuple[str, ...]) -> tuple[str, float]:
        realm = params["realm"]
        url = urllib.parse.urlsplit(realm)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise RegistryError(0, "UNAUTHORIZED", f"token realm {realm!r} is not an http(s) URL",
                                grpc_code="UNAVAILABLE")
        creds = self.credentials
        if creds is not None and url.scheme == "http" and not self._insecure_host(url.netloc):
            # credentials in clear text only to a registry the user called insecure
            raise RegistryError(0, "UNAUTHORIZED", f"token realm {realm} is plain http: "
                                "credentials are sent only over https (or to an insecure "
                                "registry's host)", grpc_code="UNAUTHENTICATED")
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", s) for s in scopes]
        if creds is not None and creds.identity_token:
            form = query + [("grant_type", "refresh_token"), ("client_id", CLIENT_ID),
                            ("refresh_token", creds.identity_token)]
            status, _, body = self._fetch(
                "POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                urllib.parse.urlencode(form).encode())
            if status not in (404, 405):
                return _token_reply(realm, status, body, creds)
            # a realm without OAuth2 POST: docker falls back to the GET form
        sep = "&" if url.query else "?"
        get_url = realm + (sep + urllib.parse.urlencode(query) if query else "")
        headers = {"Authorization": creds.basic()} if creds and creds.username else {}
        if creds is not None and creds.username:
            query.append(("account", creds.username))
            get_url = realm + sep + urllib.parse.urlencode(query)
        status, _, body = self._fetch("GET", get_url, headers, None)
        return _token_reply(realm, status, body, creds)


def _covers(have: tuple[str, ...], want: tuple[str, ...]) -> bool:
    """A token for repository:a:pull,push serves a request that needs repository:a:pull."""
    granted = {}
    for s in have:
        kind, _, rest = s.partition(":")
        name, _, actions = rest.rpartition(":")
        granted.setdefault((kind, name), set()).update(actions.split(","))
    for s in want:
        kind, _, rest = s.partition(":")
        name, _, actions = rest.rpartition(":")
        if not set(actions.split(",")) <= granted.get((kind, name), set()):
            return False
    return True


def _token_reply(realm: str, status: int, body: bytes, creds) -> tuple[str, float]:
    who = f" for user {creds.username!r}" if creds and creds.username else ""
    if status in (401, 403):
        raise RegistryError(401, "UNAUTHORIZED", f"the token server {realm} refused the "
                            f"credentials{who} ({status}): authentication required")
    if status != 200:
        raise RegistryError(status, "UNAUTHORIZED", f"token server {realm} answered {status}",
                            grpc_code="UNAVAILABLE" if status >= 500 else "UNAUTHENTICATED")
    try:
        doc = json.loads(body)
        token = doc.get("token") or doc.get("access_token")
        lifetime = float(doc.get("expires_in") or DEFAULT_EXPIRY)
    except (ValueError, AttributeError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise RegistryError(status, "UNAUTHORIZED", f"token server {realm}: no token in its "
                            "answer", grpc_code="UNAVAILABLE")
    return token, max(lifetime, EXPIRY_MARGIN + 1.0)
