"""Image references, docker's grammar and normalization (distribution/reference):
"busybox" is docker.io/library/busybox:latest, "localhost:5000/a/b@sha256:..." keeps its
digest, and what scripts written for docker type means here what it means there."""
import re

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
                    r"(?::[0-9]+)?")
TAG = re.compile(r"[\w][\w.-]{0,127}")
DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
# go-digest's algorithms, with the length of their (lowercase) hex
DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}
ID = re.compile(r"[a-f0-9]{64}")


class ReferenceError(ValueError):
    pass


class Reference:
    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str, path: str, tag: str = "", digest: str = ""):
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def name(self) -> str:
        return self.repository + self._suffix()

    @property
    def familiar_repository(self) -> str:
        """docker's short form: docker.io and library/ dropped where docker drops them."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        rest = self.path[len(OFFICIAL_PREFIX):]
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in rest:
            return rest
        return self.path

    @property
    def familiar(self) -> str:
        return self.familiar_repository + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def with_tag(self, tag: str) -> "Reference":
        return parse(f"{self.repository}:{tag}")

    def __eq__(self, other) -> bool:
        return isinstance(other, Reference) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Reference({self.name!r})"


def split_domain(name: str) -> tuple[str, str]:
    """docker's rule: the first component is a domain when it has a "." or a ":", is
    "localhost", or has an uppercase letter (no repository path may)."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse(text: str, default_tag: bool = True) -> Reference:
    """A reference normalized as docker does; the tag "latest" when neither a tag nor a digest
    is given (unless default_tag is False). ReferenceError says what is wrong."""
    if not isinstance(text, str) or not text:
        raise ReferenceError("invalid reference: empty name")
    if ID.fullmatch(text):
        raise ReferenceError(f"invalid repository name ({text}): a 64-hex string is an image "
                             "id, not a name")
    rest, at, digest = text.partition("@")
    if at:
        _check_digest(digest, text)
    name, tag = _split_tag(rest)
    if tag is not None and not TAG.fullmatch(tag):
        raise ReferenceError(f"invalid reference {text!r}: tag {tag!r} must be 1 to 128 of "
                             "[A-Za-z0-9_.-], not starting with '.' or '-'")
    if not name:
        raise ReferenceError(f"invalid reference {text!r}: no repository name")
    domain, path = split_domain(name)
    if path.lower() != path:
        raise ReferenceError(f"invalid reference {text!r}: repository name ({path}) must be "
                             "lowercase")
    if not DOMAIN.fullmatch(domain):
        raise ReferenceError(f"invalid reference {text!r}: {domain!r} is not a registry host"
                             "[:port]")
    for component in path.split("/"):
        if not component:
            raise ReferenceError(f"invalid reference {text!r}: empty path component")
        if not PATH_COMPONENT.fullmatch(component):
            raise ReferenceError(f"invalid reference {text!r}: path component {component!r} "
                                 "must be lowercase letters and digits, separated by '.', '_', "
                                 "'__' or dashes")
    if len(f"{domain}/{path}") > NAME_MAX:     # docker counts the normalized name
        raise ReferenceError(f"invalid reference {text!r}: repository name must not be more "
                             f"than {NAME_MAX} characters")
    if tag is None and not digest and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag or "", digest)


def _split_tag(rest: str) -> tuple[str, str | None]:
    """name[:tag]: a ":" after the last "/" starts a tag (before it, it is a port)."""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        return rest[:colon], rest[colon + 1:]
    return rest, None


def _check_digest(digest: str, text: str) -> None:
    if not DIGEST.fullmatch(digest):
        raise ReferenceError(f"invalid reference {text!r}: {digest!r} is not a digest "
                             "(algorithm:hex)")
    algo, _, hexpart = digest.partition(":")
    if algo not in DIGEST_HEX:
        raise ReferenceError(f"invalid reference {text!r}: unsupported digest algorithm {algo!r}")
    if len(hexpart) != DIGEST_HEX[algo] or hexpart != hexpart.lower():
        raise ReferenceError(f"invalid reference {text!r}: a {algo} digest is "
                             f"{DIGEST_HEX[algo]} lowercase hex digits")


def is_id(text: str) -> bool:
    """A full image id (64 hex, or sha256:<64 hex>): callers look it up as an id, not a name."""
    return bool(ID.fullmatch(text.removeprefix("sha256:")))
