"""docker's list filters as the services receive them (field==value), shared by the images,
networks and volumes services."""
from supervisor.errors import ApiError


def split(flt: str, loose: bool = False) -> tuple[str, str]:
    """(field, value) of field==value (field=value too when loose)."""
    key, sep, value = flt.partition("==")
    if not sep and loose:
        key, sep, value = flt.partition("=")
    if not sep:
        raise ApiError("INVALID_ARGUMENT", f"filter {flt!r}: use field==value")
    return key, value


def label_matches(labels: dict, value: str) -> bool:
    """label=KEY (present) or label=KEY=VALUE (equal)."""
    k, eq, v = value.partition("=")
    return k in labels and (not eq or labels[k] == v)
