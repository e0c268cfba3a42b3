"""hawserctl's registry credentials in docker's config.json, so that `docker login` and
`hawserctl login` share them: `auths` maps a registry to {"auth": base64("user:password")} or
{"identitytoken": ...}; Docker Hub's key is "https://index.docker.io/v1/" as docker writes it.
The file is $HAWSER_CONFIG (a file, or a directory holding config.json) or
~/.docker/config.json, written atomically with mode 0600. Credential helpers (credsStore,
credHelpers) are not run. Only os, binascii and runtime.jsonlite at import: hawserctl starts
fast (json would pull re and enum)."""
import binascii
import os

from runtime import jsonlite

HUB_KEY = "https://index.docker.io/v1/"
HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")


class CredentialsError(ValueError):
    pass


def config_path() -> str:
    override = os.environ.get("HAWSER_CONFIG")
    if override:
        return os.path.join(override, "config.json") if os.path.isdir(override) else override
    return os.path.join(os.path.expanduser("~"), ".docker", "config.json")


def key_for(domain: str) -> str:
    """The `auths` key docker uses for a registry."""
    return HUB_KEY if _hostname(domain) in HUB_NAMES else domain


def _hostname(key: str) -> str:
    """docker's ConvertToHostname: "https://host:5000/v2/" -> "host:5000"."""
    for scheme in ("http://", "https://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
    return key.partition("/")[0]


def _read(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CredentialsError(f"{path}: {e.strerror}") from None
    if not data.strip():
        return {}
    try:
        doc = jsonlite.loads(data)
    except ValueError as e:
        raise CredentialsError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("auths", {}), dict):
        raise CredentialsError(f"{path}: not a docker config (\"auths\" must be an object)")
    return doc


def _entry(auths: dict, domain: str) -> tuple[str, dict] | None:
    want = _hostname(key_for(domain))
    if key_for(domain) in auths:
        return key_for(domain), auths[key_for(domain)]
    for key, value in auths.items():
        if _hostname(key) == want or (want == _hostname(HUB_KEY) and _hostname(key) in HUB_NAMES):
            return key, value
    return None


def lookup(domain: str) -> tuple[str, str, str] | None:
    """(username, password, identity_token) stored for a registry domain, or None."""
    path = config_path()
    found = _entry(_read(path).get("auths") or {}, domain)
    if found is None or not isinstance(found[1], dict):
        return None
    key, entry = found
    user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            raw = binascii.a2b_base64(str(entry["auth"])).decode()
        except (binascii.Error, ValueError):
            raise CredentialsError(f"{path}: the auth of {key} is not base64") from None
        user, sep, password = raw.partition(":")
        if not sep:
            raise CredentialsError(f"{path}: the auth of {key} is not base64 of user:password")
    token = str(entry.get("identitytoken") or "")
    if not (user or password or token):
        return None
    return user, password, token


def store(domain: str, username: str, password: str, identity_token: str = "") -> str:
    """Save credentials for a registry (`hawserctl login`); the file's path."""
    if not username or ":" in username:
        raise CredentialsError(f"invalid username {username!r}: empty or with a ':'")
    path = config_path()
    doc = _read(path)
    auths = doc.setdefault("auths", {})
    found = _entry(auths, domain)
    if found is not None:
        del auths[found[0]]
    entry = {"auth": binascii.b2a_base64(f"{username}:{password}".encode(),
                                         newline=False).decode()}
    if identity_token:
        entry = {"auth": binascii.b2a_base64(f"{username}:".encode(), newline=False).decode(),
                 "identitytoken": identity_token}
    auths[key_for(domain)] = entry
    _write(path, doc)
    return path


def erase(domain: str) -> bool:
    """Forget a registry's credentials (`hawserctl logout`); whether there were any."""
    path = config_path()
    doc = _read(path)
    found = _entry(doc.get("auths") or {}, domain)
    if found is None:
        return False
    del doc["auths"][found[0]]
    _write(path, doc)
    return True


def _write(path: str, doc: dict) -> None:
    """Atomically, 0600 from the start (a symlink at `path` is replaced, never followed)."""
    from supervisor.client.atomic import ReplacingFile
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    with ReplacingFile(path, 0o600) as f:
        f.write((jsonlite.dumps(doc, indent="\t") + "\n").encode())
